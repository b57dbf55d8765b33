//! The control plane's metrics (`GET /metrics`), on an
//! [`aether_http::metrics::Exporter`] of its own: the handlers' counters
//! (deploys, rollbacks, heartbeats, …), counts taken at scrape time, and
//! HTTP requests by matched route.
//!
//! HTTP requests are counted by the [`http_metrics`] middleware under the
//! route *template* (`/api/functions/:name`), never the raw path, so
//! clients cannot create series.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_http::metrics::{Exporter, Family};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Key, Label, Metadata};

/// Route label of requests no route matched (404s).
pub const UNMATCHED_ROUTE: &str = "unmatched";

const HTTP_REQUESTS: &str = "aether_control_http_requests_total";
const HTTP_SECONDS: &str = "aether_control_http_request_duration_seconds";
const DEPLOYS: &str = "aether_control_deploys_total";
const NODES: &str = "aether_control_nodes";

/// Request-time buckets, seconds: reads take well under a millisecond, a
/// durable deploy of a large module up to seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("aether_control", metrics::Level::INFO, Some(module_path!()));

const FAMILIES: &[Family] = &[
    Family::counter(DEPLOYS, "Deploy requests by result."),
    Family::counter(
        "aether_control_deploy_bytes_total",
        "Bytes of modules stored by deploys that created a version.",
    ),
    Family::counter("aether_control_rollbacks_total", "Rollbacks."),
    Family::counter("aether_control_deletes_total", "Function deletions."),
    Family::counter(
        "aether_control_heartbeats_total",
        "Node registrations and heartbeats.",
    ),
    Family::counter(
        "aether_control_events_received_total",
        "Events stored from edges.",
    ),
    Family::counter(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status.",
    ),
    Family::gauge("aether_control_functions", "Registered functions."),
    Family::gauge(NODES, "Known edge nodes by status."),
    Family::gauge("aether_control_uptime_seconds", "Seconds since start."),
    Family::seconds(
        HTTP_SECONDS,
        "HTTP request time by method and route template.",
        HTTP_BUCKETS,
    ),
];

/// The control plane's metrics. The counters are the exporter's own
/// handles (atomics), bumped by the handlers.
pub struct ControlMetrics {
    exporter: Exporter,
    /// Deploys that created a version.
    pub deploys_created: Counter,
    /// Deploys identical to the current version.
    pub deploys_unchanged: Counter,
    /// Deploys refused (bad name, base64, size, wasm).
    pub deploys_rejected: Counter,
    /// Module bytes stored by deploys that created a version.
    pub deploy_bytes: Counter,
    /// Rollbacks.
    pub rollbacks: Counter,
    /// Deletes.
    pub deletes: Counter,
    /// Registrations and heartbeats.
    pub heartbeats: Counter,
    /// Events stored.
    pub events_received: Counter,
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

/// Counts read from the store when `/metrics` is scraped.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// Registered functions.
    pub functions: u64,
    /// Nodes online now.
    pub online: u64,
    /// Nodes known.
    pub known: u64,
    /// Time since start.
    pub uptime: Duration,
}

impl ControlMetrics {
    /// A fresh exporter with the control plane's families.
    pub fn new() -> Self {
        let exporter = Exporter::new(&METADATA, FAMILIES);
        let counter = |name: &'static str| exporter.counter(&Key::from_static_name(name));
        let gauge = |name: &'static str| exporter.gauge(&Key::from_static_name(name));
        static CREATED: [Label; 1] = [Label::from_static_parts("result", "created")];
        static UNCHANGED: [Label; 1] = [Label::from_static_parts("result", "unchanged")];
        static REJECTED: [Label; 1] = [Label::from_static_parts("result", "rejected")];
        static ONLINE: [Label; 1] = [Label::from_static_parts("status", "online")];
        static OFFLINE: [Label; 1] = [Label::from_static_parts("status", "offline")];
        let deploys =
            |labels: &'static [Label]| exporter.counter(&Key::from_static_parts(DEPLOYS, labels));
        let nodes =
            |labels: &'static [Label]| exporter.gauge(&Key::from_static_parts(NODES, labels));
        ControlMetrics {
            deploys_created: deploys(&CREATED),
            deploys_unchanged: deploys(&UNCHANGED),
            deploys_rejected: deploys(&REJECTED),
            deploy_bytes: counter("aether_control_deploy_bytes_total"),
            rollbacks: counter("aether_control_rollbacks_total"),
            deletes: counter("aether_control_deletes_total"),
            heartbeats: counter("aether_control_heartbeats_total"),
            events_received: counter("aether_control_events_received_total"),
            functions: gauge("aether_control_functions"),
            nodes: [nodes(&ONLINE), nodes(&OFFLINE)],
            uptime: gauge("aether_control_uptime_seconds"),
            exporter,
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
        self.exporter
            .counter(&Key::from_parts(HTTP_REQUESTS, labels))
            .increment(1);
        let labels = vec![
            Label::from_static_parts("method", method),
            Label::new("route", route),
        ];
        self.exporter
            .histogram(&Key::from_parts(HTTP_SECONDS, labels))
            .record(elapsed.as_secs_f64());
    }

    /// The exporter's upkeep, to be spawned with the server.
    pub fn upkeep(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.exporter.upkeep()
    }

    /// The Prometheus text, after copying in `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        self.functions.set(gauges.functions as f64);
        self.nodes[0].set(gauges.online as f64);
        self.nodes[1].set(gauges.known.saturating_sub(gauges.online) as f64);
        self.uptime.set(gauges.uptime.as_secs_f64());
        self.exporter.render()
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
pub async fn http_metrics(
    State(metrics): State<Arc<ControlMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| route_label(p.as_str()));
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http_request(
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
