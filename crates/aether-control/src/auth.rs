//! Bearer-token checks: the admin token for the management API, the node
//! token for edge traffic; blob pulls accept either. Tokens are compared in
//! constant time (on their sha256, so the length does not leak either) and
//! never logged.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use aether_proto::ErrorCode;

use crate::config::Secret;
use crate::error::ApiError;
use crate::state::AppState;

/// Which callers a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Operators: deploy, delete, rollback, nodes, events.
    Admin,
    /// Edges: register, callback.
    Node,
    /// Manifest and blob download: edges pull them, operators may read them.
    Pull,
}

/// The configured tokens, as digests.
#[derive(Clone, Default)]
pub struct Auth {
    admin: Option<[u8; 32]>,
    node: Option<[u8; 32]>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled())
            .finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Auth {
    /// Auth with these tokens; with neither, every request is admitted.
    pub fn new(admin: Option<&Secret>, node: Option<&Secret>) -> Self {
        Auth {
            admin: admin.map(|s| digest(s.expose())),
            node: node.map(|s| digest(s.expose())),
        }
    }

    /// Whether any token is required.
    pub fn enabled(&self) -> bool {
        self.admin.is_some() || self.node.is_some()
    }

    /// Admits or refuses a request with these headers.
    pub fn check(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "missing bearer token (Authorization: Bearer <token>)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "malformed Authorization header; expected `Bearer <token>`",
                )
            })?;
        let presented = digest(token.as_bytes());
        let matches = |expected: &Option<[u8; 32]>| {
            expected.is_some_and(|e| bool::from(e.ct_eq(&presented))) && !token.is_empty()
        };
        let admitted = match access {
            Access::Admin => matches(&self.admin),
            Access::Node => matches(&self.node),
            Access::Pull => matches(&self.admin) | matches(&self.node),
        };
        if admitted {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Unauthorized,
                "invalid token for this endpoint",
            ))
        }
    }
}

async fn require(state: &AppState, access: Access, request: Request, next: Next) -> Response {
    match state.auth().check(request.headers(), access) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::debug!(path = %request.uri().path(), ?access, "request refused: {}", e.message);
            axum::response::IntoResponse::into_response(e)
        }
    }
}

/// Middleware admitting only the admin token.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    require(&state, Access::Admin, request, next).await
}

/// Middleware admitting only the node token.
pub async fn require_node(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Access::Node, request, next).await
}

/// Middleware admitting the admin or the node token.
pub async fn require_pull(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Access::Pull, request, next).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn each_token_opens_only_its_endpoints() {
        let admin = Secret::new("admin-token");
        let node = Secret::new("node-token");
        let auth = Auth::new(admin.as_ref(), node.as_ref());
        assert!(
            auth.check(&headers("Bearer admin-token"), Access::Admin)
                .is_ok()
        );
        assert!(
            auth.check(&headers("bearer admin-token"), Access::Pull)
                .is_ok()
        );
        assert!(
            auth.check(&headers("Bearer node-token"), Access::Pull)
                .is_ok()
        );
        assert!(
            auth.check(&headers("Bearer node-token"), Access::Node)
                .is_ok()
        );
        assert!(
            auth.check(&headers("Bearer node-token"), Access::Admin)
                .is_err()
        );
        assert!(
            auth.check(&headers("Bearer admin-token"), Access::Node)
                .is_err()
        );
        assert!(auth.check(&headers("Bearer "), Access::Pull).is_err());
        assert!(
            auth.check(&headers("Basic admin-token"), Access::Admin)
                .is_err()
        );
        assert!(auth.check(&HeaderMap::new(), Access::Admin).is_err());
    }

    #[test]
    fn without_tokens_everything_is_admitted() {
        let auth = Auth::new(None, None);
        assert!(auth.check(&HeaderMap::new(), Access::Admin).is_ok());
    }
}
