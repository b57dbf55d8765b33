//! `GET /health` and `GET /metrics`: open, for load balancers and scrapers.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use aether_proto::control::{ControlHealth, NodeStatus};
use aether_store::now_ms;

use crate::error::ApiError;
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
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (functions, online, known) = counts(&state).await?;
    let m = state.metrics();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    metric(
        "aether_control_deploys_total",
        "counter",
        "Deploy requests by result.",
        &[
            ("{result=\"created\"}", load(&m.deploys_created)),
            ("{result=\"unchanged\"}", load(&m.deploys_unchanged)),
            ("{result=\"rejected\"}", load(&m.deploys_rejected)),
        ],
    );
    metric(
        "aether_control_rollbacks_total",
        "counter",
        "Rollbacks.",
        &[("", load(&m.rollbacks))],
    );
    metric(
        "aether_control_deletes_total",
        "counter",
        "Function deletions.",
        &[("", load(&m.deletes))],
    );
    metric(
        "aether_control_heartbeats_total",
        "counter",
        "Node registrations and heartbeats.",
        &[("", load(&m.heartbeats))],
    );
    metric(
        "aether_control_events_received_total",
        "counter",
        "Events stored from edges.",
        &[("", load(&m.events_received))],
    );
    metric(
        "aether_control_functions",
        "gauge",
        "Registered functions.",
        &[("", functions)],
    );
    metric(
        "aether_control_nodes",
        "gauge",
        "Known edge nodes by status.",
        &[
            ("{status=\"online\"}", online),
            ("{status=\"offline\"}", known - online),
        ],
    );
    metric(
        "aether_control_uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[("", state.uptime().as_secs())],
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}
