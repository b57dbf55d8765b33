//! The HTTP routes of the control plane and the [`app`] that assembles them.

mod access;
mod events;
mod functions;
mod health;
mod nodes;
mod ui;

use std::convert::Infallible;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};

use aether_http::ApiError;
use aether_http::guard::reject_oversized;
use aether_proto::ErrorCode;

use crate::auth::Access;
use crate::state::AppState;
use access::require;

aether_http::request_log!(
    /// The control plane's request span and access line, under
    /// `aether_control::request`.
    ControlRequests,
    "aether_control::request"
);

/// Limit for bodies other than modules (registrations, callback batches,
/// rollbacks): a batch of a thousand stats events fits comfortably.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Most events accepted in one `POST /callback`.
pub const MAX_EVENTS_PER_CALLBACK: usize = 1000;

/// The router of every control-plane endpoint (README.md's API section), inside the
/// request context (request ids, the debug request span).
pub fn app(state: AppState) -> aether_http::RequestContext<Router> {
    let settings = state.settings().clone();
    let json_limit = usize::try_from(settings.max_json_body).unwrap_or(usize::MAX);
    let raw_limit = usize::try_from(settings.max_module_size).unwrap_or(usize::MAX);

    let admin = Router::new()
        .route(
            "/api/functions",
            post(functions::deploy_json)
                .layer::<_, Infallible>(from_fn_with_state(
                    settings.max_json_body,
                    reject_oversized,
                ))
                .layer(DefaultBodyLimit::max(json_limit))
                .get(functions::list),
        )
        .route(
            "/api/functions/{name}",
            put(functions::deploy_raw)
                .layer::<_, Infallible>(from_fn_with_state(
                    settings.max_module_size,
                    reject_oversized,
                ))
                .layer(DefaultBodyLimit::max(raw_limit))
                .get(functions::show)
                .delete(functions::delete),
        )
        .route("/api/functions/{name}/rollback", post(functions::rollback))
        .route("/api/functions/{name}/stats", get(functions::stats))
        .route("/api/nodes", get(nodes::list))
        .route("/api/nodes/{id}", delete(nodes::remove))
        .route("/api/events", get(events::list))
        .route("/api/overview", get(ui::overview))
        .route_layer(from_fn_with_state((state.clone(), Access::Admin), require));

    let pull = Router::new()
        .route("/api/functions/manifest", get(functions::manifest))
        .route("/api/functions/{name}/wasm", get(functions::wasm))
        .route_layer(from_fn_with_state((state.clone(), Access::Pull), require));

    let join = Router::new()
        .route("/api/nodes/join", post(nodes::join))
        .route_layer(from_fn_with_state(
            DEFAULT_BODY_LIMIT as u64,
            reject_oversized,
        ))
        .route_layer(from_fn_with_state((state.clone(), Access::Join), require));

    let node = Router::new()
        .route("/register", post(nodes::register))
        .route("/callback", post(events::callback))
        .route_layer(from_fn_with_state(
            DEFAULT_BODY_LIMIT as u64,
            reject_oversized,
        ))
        .route_layer(from_fn_with_state((state.clone(), Access::Node), require));

    let open = Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/{file}", get(ui::asset));

    let router = Router::new()
        .merge(admin)
        .merge(join)
        .merge(pull)
        .merge(node)
        .merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(from_fn_with_state(
            state.metrics().clone(),
            crate::metrics::http_metrics,
        ))
        .with_state(state);
    aether_http::RequestContext::new(router, Some(&ControlRequests))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Parses a JSON body, answering 400 with serde's explanation.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))
}
