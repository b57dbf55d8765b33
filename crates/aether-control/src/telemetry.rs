//! Observability of the control plane: the Prometheus recorder behind
//! `GET /metrics` and HTTP metrics by matched route.
//!
//! Each [`AppState`] owns its own [`PrometheusRecorder`], never installed
//! as the global `metrics` recorder: tests start several servers in one
//! process and each must count only its own requests. The business
//! counters stay plain atomics in [`Metrics`](crate::state::Metrics)
//! (bumped by the handlers) and are copied into the exporter when
//! `/metrics` is scraped; HTTP requests are counted by the
//! [`http_metrics`] middleware under the route *template*
//! (`/api/functions/:name`), never the raw path, so clients cannot create
//! series.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder as _, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::state::AppState;

/// How often histogram samples are folded into their buckets.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Route label of requests no route matched (404s).
pub const UNMATCHED_ROUTE: &str = "unmatched";

const HTTP_REQUESTS: &str = "aether_control_http_requests_total";
const HTTP_SECONDS: &str = "aether_control_http_request_duration_seconds";

/// Request-time buckets, seconds: reads take well under a millisecond, a
/// durable deploy of a large module up to seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("aether_control", metrics::Level::INFO, Some(module_path!()));

/// The control plane's Prometheus recorder and the handles copied from
/// [`Metrics`](crate::state::Metrics) at scrape time.
pub struct ControlMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    deploys: [Counter; 3],
    deploy_bytes: Counter,
    rollbacks: Counter,
    deletes: Counter,
    heartbeats: Counter,
    events_received: Counter,
    functions: Gauge,
    nodes: [Gauge; 2],
    uptime: Gauge,
}

impl std::fmt::Debug for ControlMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlMetrics").finish_non_exhaustive()
    }
}

impl Default for ControlMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControlMetrics {
    /// A fresh recorder with the control plane's buckets and descriptions.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_SECONDS.into()), HTTP_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        describe(&recorder);
        let counter = |key: Key| recorder.register_counter(&key, &METADATA);
        let gauge = |key: Key| recorder.register_gauge(&key, &METADATA);
        static CREATED: [Label; 1] = [Label::from_static_parts("result", "created")];
        static UNCHANGED: [Label; 1] = [Label::from_static_parts("result", "unchanged")];
        static REJECTED: [Label; 1] = [Label::from_static_parts("result", "rejected")];
        static ONLINE: [Label; 1] = [Label::from_static_parts("status", "online")];
        static OFFLINE: [Label; 1] = [Label::from_static_parts("status", "offline")];
        let deploys = |labels: &'static [Label]| {
            counter(Key::from_static_parts(
                "aether_control_deploys_total",
                labels,
            ))
        };
        let nodes = |labels: &'static [Label]| {
            gauge(Key::from_static_parts("aether_control_nodes", labels))
        };
        ControlMetrics {
            deploys: [deploys(&CREATED), deploys(&UNCHANGED), deploys(&REJECTED)],
            deploy_bytes: counter(Key::from_static_name("aether_control_deploy_bytes_total")),
            rollbacks: counter(Key::from_static_name("aether_control_rollbacks_total")),
            deletes: counter(Key::from_static_name("aether_control_deletes_total")),
            heartbeats: counter(Key::from_static_name("aether_control_heartbeats_total")),
            events_received: counter(Key::from_static_name(
                "aether_control_events_received_total",
            )),
            functions: gauge(Key::from_static_name("aether_control_functions")),
            nodes: [nodes(&ONLINE), nodes(&OFFLINE)],
            uptime: gauge(Key::from_static_name("aether_control_uptime_seconds")),
            handle: recorder.handle(),
            recorder,
        }
    }

    /// Counts one answered request.
    fn http_request(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let route: metrics::SharedString = route.to_owned().into();
        let labels = vec![
            Label::from_static_parts("method", method),
            Label::new("route", route.clone()),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(&Key::from_parts(HTTP_REQUESTS, labels), &METADATA)
            .increment(1);
        let labels = vec![
            Label::from_static_parts("method", method),
            Label::new("route", route),
        ];
        self.recorder
            .register_histogram(&Key::from_parts(HTTP_SECONDS, labels), &METADATA)
            .record(elapsed.as_secs_f64());
    }

    /// Folds buffered histogram samples into their buckets.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text, after copying in the handlers' counters and
    /// the given function and node counts.
    pub fn render(&self, state: &AppState, functions: u64, online: u64, known: u64) -> String {
        let m = state.metrics();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        self.deploys[0].absolute(load(&m.deploys_created));
        self.deploys[1].absolute(load(&m.deploys_unchanged));
        self.deploys[2].absolute(load(&m.deploys_rejected));
        self.deploy_bytes.absolute(load(&m.deploy_bytes));
        self.rollbacks.absolute(load(&m.rollbacks));
        self.deletes.absolute(load(&m.deletes));
        self.heartbeats.absolute(load(&m.heartbeats));
        self.events_received.absolute(load(&m.events_received));
        self.functions.set(functions as f64);
        self.nodes[0].set(online as f64);
        self.nodes[1].set(known.saturating_sub(online) as f64);
        self.uptime.set(state.uptime().as_secs_f64());
        self.handle.render()
    }
}

fn describe(recorder: &PrometheusRecorder) {
    let counters: &[(&'static str, &'static str)] = &[
        ("aether_control_deploys_total", "Deploy requests by result."),
        (
            "aether_control_deploy_bytes_total",
            "Bytes of modules stored by deploys that created a version.",
        ),
        ("aether_control_rollbacks_total", "Rollbacks."),
        ("aether_control_deletes_total", "Function deletions."),
        (
            "aether_control_heartbeats_total",
            "Node registrations and heartbeats.",
        ),
        (
            "aether_control_events_received_total",
            "Events stored from edges.",
        ),
        (
            HTTP_REQUESTS,
            "HTTP requests by method, route template and status.",
        ),
    ];
    for (name, help) in counters {
        recorder.describe_counter((*name).into(), None, (*help).into());
    }
    let gauges: &[(&'static str, &'static str)] = &[
        ("aether_control_functions", "Registered functions."),
        ("aether_control_nodes", "Known edge nodes by status."),
        ("aether_control_uptime_seconds", "Seconds since start."),
    ];
    for (name, help) in gauges {
        recorder.describe_gauge((*name).into(), None, (*help).into());
    }
    recorder.describe_histogram(
        HTTP_SECONDS.into(),
        Some(Unit::Seconds),
        "HTTP request time by method and route template.".into(),
    );
}

/// Folds histogram samples into buckets every [`UPKEEP_INTERVAL`], so
/// memory stays bounded between scrapes.
pub async fn upkeep_loop(state: AppState) {
    let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        state.telemetry().upkeep();
    }
}

/// The method as a label: the standard ones, else `other` (a client can
/// send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A route template as a label value: `/api/functions/{name}` becomes
/// `/api/functions/:name`, since braces inside label values trip up simple
/// parsers of the text format.
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// Counts each request by route template and status. Added with
/// `Router::layer`, so it wraps each route after routing and sees its
/// [`MatchedPath`]; the fallback (no route) is `unmatched`. Request ids,
/// the request span and the access line come from the
/// [`aether_http::RequestContext`] around the whole router.
pub async fn http_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| route_label(p.as_str()));
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state.telemetry().http_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            route_label("/api/functions/{name}/wasm"),
            "/api/functions/:name/wasm"
        );
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
