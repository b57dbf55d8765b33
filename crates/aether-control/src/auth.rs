//! Which token opens which route: the admin token the management API, the
//! node token edge traffic; blob pulls accept either. Reading and comparing
//! tokens (constant time, never logged) is `aether_http::auth`.

use aether_http::ApiError;
use aether_http::auth::{Token, bearer_token};
use aether_http::config::Secret;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

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
    admin: Option<Token>,
    node: Option<Token>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Auth {
    /// Auth with these tokens; with neither, every request is admitted.
    pub fn new(admin: Option<&Secret>, node: Option<&Secret>) -> Self {
        Auth {
            admin: admin.map(Token::new),
            node: node.map(Token::new),
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
        let token = bearer_token(headers)?;
        let matches =
            |expected: &Option<Token>| expected.as_ref().is_some_and(|e| e.matches(token));
        let admitted = match access {
            Access::Admin => matches(&self.admin),
            Access::Node => matches(&self.node),
            Access::Pull => matches(&self.admin) | matches(&self.node),
        };
        if admitted {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid token for this endpoint"))
        }
    }
}

/// Middleware admitting requests with a token `access` allows
/// (`from_fn_with_state((auth, access), require)`).
pub async fn require(
    State((auth, access)): State<(Auth, Access)>,
    request: Request,
    next: Next,
) -> Response {
    match auth.check(request.headers(), access) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::debug!(path = %request.uri().path(), ?access, "request refused: {}", e.message);
            axum::response::IntoResponse::into_response(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

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
