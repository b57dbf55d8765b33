//! `GET /metrics` parsed as Prometheus text: invocations, errors by code,
//! the execution-time histogram and cache loads move with the requests
//! that cause them, and each edge in the process counts only its own.

use std::time::Duration;

use aether_fixtures::prometheus::{self, assert_absent, value, value_or_zero};
use prometheus_parse::{Scrape, Value};

use crate::{ECHO, LOOP, TestEdge};

/// Scrapes and parses `/metrics`.
pub async fn scrape(edge: &TestEdge) -> Scrape {
    prometheus::scrape(&edge.client, &format!("{}/metrics", edge.url)).await
}

/// The buckets of histogram `name` with `labels`; panics when there is no
/// such histogram.
#[track_caller]
fn buckets(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match &s.value {
            Value::Histogram(b) => Some(b.iter().map(|b| (b.less_than, b.count)).collect()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no histogram {name} with labels {labels:?} in /metrics"))
}

#[tokio::test]
async fn invocations_errors_and_latency_are_counted_per_function() {
    let edge = TestEdge::start_with(|c| c.limits.timeout = Duration::from_millis(200)).await;
    let other = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    edge.install_wat("spin", LOOP);
    for i in 0..3 {
        let (status, _) = edge
            .execute(serde_json::json!({"function": "echo", "stdin": format!("hi {i}")}))
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = edge.execute(serde_json::json!({"function": "spin"})).await;
    assert_eq!(status, 504);
    let (status, _) = edge
        .execute(serde_json::json!({"function": "never-deployed"}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = edge.execute(serde_json::json!({"nope": 1})).await;
    assert_eq!(status, 400);

    let m = scrape(&edge).await;
    let echo = [("function", "echo")];
    assert_eq!(value(&m, "aether_edge_invocations_total", &echo), 3.0);
    assert_eq!(
        value(&m, "aether_edge_invocations_total", &[("function", "spin")]),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "aether_edge_errors_total",
            &[("function", "spin"), ("code", "timeout")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "aether_edge_errors_total",
            &[("function", "_unknown"), ("code", "function_not_found")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "aether_edge_errors_total",
            &[("function", "_unknown"), ("code", "invalid_request")]
        ),
        1.0
    );
    // Error series appear with their first error: echo has none.
    assert_eq!(value_or_zero(&m, "aether_edge_errors_total", &echo), 0.0);
    assert!(
        !m.samples
            .iter()
            .any(|s| s.labels.values().any(|v| v == "never-deployed")),
        "unknown names never become label values"
    );

    // Execution time: a real histogram with buckets, counting all four
    // executions; the timed-out one lands above 0.1 s.
    let spin = buckets(
        &m,
        "aether_edge_execution_duration_seconds",
        &[("function", "spin")],
    );
    assert!(spin.len() > 5, "buckets, not a summary: {spin:?}");
    let below = |b: &[(f64, f64)], le: f64| b.iter().find(|(l, _)| *l == le).map(|(_, c)| *c);
    assert_eq!(below(&spin, 0.1), Some(0.0));
    assert_eq!(spin.last().unwrap().1, 1.0);
    assert_eq!(
        value(&m, "aether_edge_execution_duration_seconds", &echo),
        3.0
    );
    assert_eq!(value(&m, "aether_edge_memory_used_bytes", &echo), 3.0);

    // The other edge in this process saw none of it: no invocation or
    // error series at all (they appear with the first one; not even at 0,
    // which would show this edge's function names), and its module load
    // counter (there from the start) still at 0.
    let quiet = scrape(&other).await;
    assert_absent(&quiet, "aether_edge_invocations_total", &[]);
    assert_absent(&quiet, "aether_edge_errors_total", &[]);
    assert_eq!(value(&quiet, "aether_edge_module_loads_total", &[]), 0.0);
    edge.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn cache_loads_and_compile_time_follow_misses_and_hits() {
    let edge = TestEdge::start_with(|c| c.scan_interval = Duration::from_secs(3600)).await;
    let before = scrape(&edge).await;
    assert_eq!(value(&before, "aether_edge_module_loads_total", &[]), 0.0);
    edge.install_wat("echo", ECHO);
    let (status, body) = edge
        .execute(serde_json::json!({"function": "echo", "stdin": "x"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["cache"], "compiled", "the first call compiles");
    for _ in 0..2 {
        let (_, body) = edge
            .execute(serde_json::json!({"function": "echo", "stdin": "x"}))
            .await;
        assert_eq!(body["cache"], "memory");
    }
    let m = scrape(&edge).await;
    let loads = |source| value(&m, "aether_edge_module_loads_total", &[("source", source)]);
    assert_eq!(loads("compiled"), 1.0);
    assert_eq!(loads("memory"), 2.0);
    assert_eq!(loads("disk"), 0.0);
    assert_eq!(
        value(
            &m,
            "aether_edge_module_load_duration_seconds",
            &[("source", "compiled")]
        ),
        1.0
    );
    assert_eq!(value(&m, "aether_edge_cached_modules", &[]), 1.0);
    assert_eq!(value(&m, "aether_edge_cache_evictions_total", &[]), 0.0);
    assert_eq!(value(&m, "aether_edge_executions_in_flight", &[]), 0.0);
    assert_eq!(value(&m, "aether_edge_queue_depth", &[]), 0.0);
    assert_eq!(value(&m, "aether_edge_events_dropped_total", &[]), 0.0);
    assert_eq!(value(&m, "aether_edge_functions", &[]), 1.0);

    // Evicted from memory: the next call loads the disk artifact.
    edge.state.runtime().evict(&aether_runtime::ModuleHash::of(
        &wat::parse_str(ECHO).unwrap(),
    ));
    let (_, body) = edge
        .execute(serde_json::json!({"function": "echo", "stdin": "x"}))
        .await;
    assert_eq!(body["cache"], "disk");
    let m = scrape(&edge).await;
    assert_eq!(
        value(&m, "aether_edge_module_loads_total", &[("source", "disk")]),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "aether_edge_module_load_duration_seconds",
            &[("source", "disk")]
        ),
        1.0
    );
    assert_eq!(value(&m, "aether_edge_cache_evictions_total", &[]), 1.0);
    edge.stop().await;
}

#[tokio::test]
async fn responses_carry_the_request_id() {
    let edge = TestEdge::start().await;
    let r = edge
        .execute_with_id(serde_json::json!({"function": "missing"}), "client-id-7")
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "client-id-7");
    let r = edge.get("/health").await;
    assert_eq!(
        r.headers()["x-request-id"].len(),
        32,
        "generated when absent"
    );
    edge.stop().await;
}

/// Metric names (`aether_…`) in `text`, without histogram suffixes.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("aether_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        if base.starts_with("aether_edge_") || base.starts_with("aether_control_") {
            names.insert(base.to_owned());
        }
        i = end.max(start + 1);
    }
    names
}

#[tokio::test]
async fn every_exported_and_dashboard_metric_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/observability.md")).unwrap();
    let documented = metric_names(&docs);
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    edge.execute(serde_json::json!({"function": "echo"})).await;
    edge.execute(serde_json::json!({"function": "nope"})).await;
    let text = edge.get("/metrics").await.text().await.unwrap();
    let exported = metric_names(&text);
    assert!(exported.len() >= 10, "{exported:?}");
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/observability.md: {undocumented:?}"
    );
    let dashboard =
        std::fs::read_to_string(root.join("deploy/grafana/aether-dashboard.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let unknown: Vec<_> = metric_names(&dashboard)
        .into_iter()
        .filter(|n| !documented.contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "dashboard uses unknown metrics: {unknown:?}"
    );
    edge.stop().await;
}

#[tokio::test]
async fn with_telemetry_off_functions_run_and_there_are_no_metrics_or_request_ids() {
    let edge = TestEdge::start_with(|c| c.telemetry = false).await;
    edge.install_wat("echo", ECHO);
    let r = edge
        .client
        .post(format!("{}/execute", edge.url))
        .json(&serde_json::json!({"function": "echo", "stdin": "still served"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_none());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["output"], "still served");
    let r = edge.get("/metrics").await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}
