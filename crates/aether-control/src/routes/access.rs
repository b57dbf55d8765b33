//! The middleware in front of every authenticated route: it asks
//! [`crate::auth::Auth`] who is calling and, with a shared store, first
//! looks up a node credential that another replica issued.

use aether_http::auth::Token;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Access, Auth};
use crate::state::AppState;

/// Middleware admitting requests with a token `access` allows
/// (`from_fn_with_state((state, access), require)`); the [`Caller`] goes in
/// the request's extensions.
///
/// With a shared store (several replicas on one database), a node
/// credential unknown here may have been issued by another replica a
/// moment ago: it is looked up in the store before being refused.
pub async fn require(
    State((state, access)): State<(AppState, Access)>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = state.auth();
    let mut checked = auth.check(request.headers(), access);
    if checked.is_err()
        && state.store().is_shared()
        && let Some(node_id) = Auth::credential_node(request.headers())
    {
        match state.blocking(move |store| store.node(&node_id)).await {
            Ok(Some(node)) => {
                if let Some(digest) = node.credential_sha256.as_deref().and_then(Token::from_hex) {
                    auth.add_node(&node.node_id, digest);
                    checked = auth.check(request.headers(), access);
                }
            }
            Ok(None) => {}
            // The database is down: say so rather than "invalid".
            Err(e) => return e.into_response(),
        }
    }
    match checked {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => {
            tracing::debug!(path = %request.uri().path(), ?access, "request refused: {}", e.message);
            e.into_response()
        }
    }
}
