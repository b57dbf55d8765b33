//! The router and the serving loop (with graceful shutdown and the
//! background rescan of `func_dir`).

use std::future::Future;
use std::sync::Arc;

use aether_proto::control::{NodeStarted, NodeStopping};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};
use tokio::net::TcpListener;

use crate::registry::FunctionEntry;
use crate::state::AppState;
use crate::{api, distribution, events, trigger};

aether_http::request_log!(
    /// The edge's request span and access line, under `aether_engine::request`.
    EdgeRequests,
    "aether_engine::request"
);

/// Room for JSON syntax and escaping around the input: the body may be up
/// to twice `max_input` (every byte escaped) plus this.
/// Time from the end of a request's headers to the end of its body: a
/// 1 MiB input at a slow 100 KiB/s (headers have
/// [`aether_http::connection::HEADER_READ_TIMEOUT`]).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const BODY_OVERHEAD: usize = 64 << 10;

/// The edge's routes, inside the request context (request ids, the debug
/// request span) unless telemetry is off.
pub fn app(state: AppState) -> aether_http::RequestContext<Router> {
    let telemetry = state.metrics().is_some();
    let body_limit = usize::try_from(state.config().max_input)
        .unwrap_or(usize::MAX / 4)
        .saturating_mul(2)
        .saturating_add(BODY_OVERHEAD);
    let router = Router::new()
        .route(
            "/execute",
            post(api::execute).fallback(api::method_not_allowed),
        )
        // Any method: the function decides what it answers.
        .route("/fn/{name}", any(trigger::function))
        .route("/fn/{name}/", any(trigger::function))
        .route("/fn/{name}/{*path}", any(trigger::function))
        .route(
            "/health",
            get(api::health).fallback(api::method_not_allowed),
        )
        .route(
            "/metrics",
            get(api::metrics).fallback(api::method_not_allowed),
        )
        .route(
            "/notify",
            post(api::notify).fallback(api::method_not_allowed),
        )
        .fallback(api::not_found_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(
            body_limit as u64,
            aether_http::guard::reject_oversized,
        ));
    let domain = state.config().http_domain.clone();
    let mut router = router.with_state(state);
    // Host-based function routing rewrites the path before the router
    // matches it: the router becomes the fallback of an outer one whose
    // layer runs first.
    if let Some(domain) = domain {
        router = Router::new()
            .fallback_service(router)
            .layer(from_fn_with_state(
                std::sync::Arc::<str>::from(domain),
                trigger::route_by_host,
            ));
    }
    // Around the whole router, so 413s and 404s get a request id too.
    aether_http::RequestContext::new(
        router,
        telemetry.then_some(&EdgeRequests as &'static dyn aether_http::RequestLog),
    )
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
/// With a control plane configured, also restores the last manifest,
/// registers, heartbeats, reconciles and reports events.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Register what func_dir holds before the first request (reading and
    // hashing files, no compiling), so /health counts them from the start
    // and a request never races the first scan; compiling them goes on in
    // the background.
    let (initial, _) = scan_func_dir(&state).await;
    let mut tasks = vec![tokio::spawn(scan_loop(state.clone(), initial))];
    let mut reporter = None;
    if let Some(metrics) = state.metrics() {
        tasks.push(tokio::spawn(metrics.upkeep()));
    }
    if let Some(dist) = state.distribution() {
        distribution::restore(dist).await;
    }
    // Artifacts of modules no function uses (from before a restart) go,
    // once every function held is registered.
    let s = state.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || {
        crate::loader::sweep_artifacts(s.runtime(), s.registry())
    })
    .await
    {
        tracing::error!(error = %e, "sweeping compiled artifacts failed");
    }
    if let Some(dist) = state.distribution() {
        let advertise = advertise_url(&state, listener.local_addr()?);
        if let Some(rx) = state.take_event_receiver() {
            reporter = Some(tokio::spawn(events::report(
                state.events().clone(),
                rx,
                dist.client().clone(),
            )));
        }
        state.events().report(&NodeStarted {
            url: advertise.clone(),
            functions: state.registry().len(),
        });
        tasks.push(tokio::spawn(distribution::heartbeat_loop(
            dist.clone(),
            advertise,
        )));
        tasks.push(tokio::spawn(distribution::reconcile_loop(dist.clone())));
        tasks.push(tokio::spawn(distribution::stats_loop(dist.clone())));
    }
    let result = aether_http::serve(
        listener,
        app(state.clone()),
        shutdown,
        aether_http::ServeOptions::new(BODY_READ_TIMEOUT).with_tls(state.tls().cloned()),
    )
    .await;
    // Heartbeats stop before the control plane hears `node_stopping`, so
    // none can mark this edge online again after it.
    for task in tasks {
        task.abort();
    }
    if let Some(reporter) = reporter {
        state.events().report(&NodeStopping {});
        // Give the reporter a moment to send the last batch.
        tokio::time::sleep(events::BATCH_DELAY + std::time::Duration::from_millis(200)).await;
        reporter.abort();
    }
    result
}

/// The URL the control plane should use for this edge.
fn advertise_url(state: &AppState, local: std::net::SocketAddr) -> String {
    if let Some(url) = &state.config().advertise_url {
        return url.trim_end_matches('/').to_owned();
    }
    let ip = if local.ip().is_unspecified() {
        tracing::warn!(
            "bound to all interfaces without --advertise-url; advertising 127.0.0.1, which other hosts cannot reach"
        );
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        local.ip()
    };
    let scheme = if state.tls().is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", std::net::SocketAddr::new(ip, local.port()))
}

/// One scan of `func_dir` (on a blocking thread); logs and returns the
/// new or changed functions, to be compiled, and whether any went away.
async fn scan_func_dir(state: &AppState) -> (Vec<Arc<FunctionEntry>>, bool) {
    let s = state.clone();
    match tokio::task::spawn_blocking(move || s.registry().scan()).await {
        Ok(Ok(report)) => {
            for name in &report.removed {
                tracing::info!(function = %name, "function removed");
            }
            (report.updated, !report.removed.is_empty())
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, dir = %state.registry().func_dir().display(), "cannot scan the function directory");
            (Vec::new(), false)
        }
        Err(e) => {
            tracing::error!(error = %e, "function directory scan failed");
            (Vec::new(), false)
        }
    }
}

/// Compiles `updated` (the start-up scan's finds), then rescans `func_dir`
/// every `scan_interval` and compiles new or changed modules ahead of
/// their first request; after a scan that changed or removed a file, the
/// artifacts no function uses any more go.
async fn scan_loop(state: AppState, mut updated: Vec<Arc<FunctionEntry>>) {
    let period = state.config().scan_interval;
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = false;
    loop {
        let s = state.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            for entry in &updated {
                precompile(&s, entry);
            }
            if sweep {
                crate::loader::sweep_artifacts(s.runtime(), s.registry());
            }
        })
        .await;
        if let Err(e) = compiled {
            tracing::error!(error = %e, "compiling scanned functions failed");
        }
        interval.tick().await;
        let (found, removed) = scan_func_dir(&state).await;
        sweep = removed || !found.is_empty();
        updated = found;
    }
}

fn precompile(state: &AppState, entry: &Arc<FunctionEntry>) {
    match crate::loader::load_module(state.runtime(), state.metrics(), entry.hash, &entry.path) {
        Ok((_, source)) => {
            tracing::info!(function = %entry.name, sha256 = %entry.hash, ?source, "function loaded")
        }
        Err(e) => tracing::warn!(function = %entry.name, error = %e, "function cannot be loaded"),
    }
}
