//! The router and the serving loop (with graceful shutdown and the
//! background rescan of `func_dir`).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::api;
use crate::registry::FunctionEntry;
use crate::state::AppState;

/// Room for JSON syntax and escaping around the input: the body may be up
/// to twice `max_input` (every byte escaped) plus this.
const BODY_OVERHEAD: usize = 64 << 10;

/// The edge's routes.
pub fn app(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config().max_input)
        .unwrap_or(usize::MAX / 4)
        .saturating_mul(2)
        .saturating_add(BODY_OVERHEAD);
    Router::new()
        .route(
            "/execute",
            post(api::execute).fallback(api::method_not_allowed),
        )
        .route(
            "/health",
            get(api::health).fallback(api::method_not_allowed),
        )
        .fallback(api::not_found_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scanner = tokio::spawn(scan_loop(state.clone()));
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    scanner.abort();
    result
}

/// Rescans `func_dir` every `scan_interval` and compiles new or changed
/// modules ahead of their first request.
async fn scan_loop(state: AppState) {
    let mut interval = tokio::time::interval(state.config().scan_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let s = state.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            let report = s.registry().scan()?;
            for entry in &report.updated {
                precompile(&s, entry);
            }
            Ok::<_, std::io::Error>(report)
        })
        .await;
        match scanned {
            Ok(Ok(report)) => {
                for name in &report.removed {
                    tracing::info!(function = %name, "function removed");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, dir = %state.registry().func_dir().display(), "cannot scan the function directory")
            }
            Err(e) => tracing::error!(error = %e, "function directory scan failed"),
        }
    }
}

fn precompile(state: &AppState, entry: &Arc<FunctionEntry>) {
    match state
        .runtime()
        .load(entry.hash, || std::fs::read(&entry.path))
    {
        Ok((_, source)) => {
            tracing::info!(function = %entry.name, sha256 = %entry.hash, ?source, "function loaded")
        }
        Err(e) => tracing::warn!(function = %entry.name, error = %e, "function cannot be loaded"),
    }
}
