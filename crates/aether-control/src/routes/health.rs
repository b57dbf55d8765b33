//! `GET /health` and `GET /metrics`: open, for load balancers and scrapers.

use axum::Json;
use axum::extract::State;
use axum::response::Response;

use aether_http::ApiError;
use aether_proto::control::{ControlHealth, NodeStatus};
use aether_store::now_ms;

use crate::metrics::Gauges;
use crate::state::AppState;
use crate::wire::node_status;

/// Counts of functions and online nodes.
async fn counts(state: &AppState) -> Result<(u64, u64, u64), ApiError> {
    let timeout_ms = u64::try_from(state.settings().node_timeout.as_millis()).unwrap_or(u64::MAX);
    state
        .blocking(move |store| {
            let functions = store.function_count()?;
            let nodes = store.nodes()?;
            let now = now_ms();
            let online = nodes
                .iter()
                .filter(|n| node_status(n, now, timeout_ms) == NodeStatus::Online)
                .count() as u64;
            Ok((functions, online, nodes.len() as u64))
        })
        .await
}

/// `GET /health`
pub async fn health(State(state): State<AppState>) -> Result<Json<ControlHealth>, ApiError> {
    let (functions, nodes_online, _) = counts(&state).await?;
    Ok(Json(ControlHealth {
        status: "ok".into(),
        functions,
        nodes_online,
        uptime_s: state.uptime().as_secs(),
    }))
}

/// `GET /metrics`, Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (functions, online, known) = counts(&state).await?;
    let gauges = Gauges {
        functions,
        online,
        known,
        uptime: state.uptime(),
    };
    Ok(aether_http::metrics::text_response(
        state.metrics().render(&gauges),
    ))
}
