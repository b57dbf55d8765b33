//! `GET /metrics` parsed as Prometheus text: deploy, node, event and HTTP
//! counters move with the requests that cause them, and each server in
//! the process counts only its own.

use aether_fixtures::prometheus::{self, value};
use prometheus_parse::Scrape;

use crate::support::{TestControl, command};

/// Scrapes and parses `/metrics`.
async fn scrape(s: &TestControl) -> Scrape {
    prometheus::scrape(&s.client, &s.at("/metrics")).await
}

#[tokio::test]
async fn deploys_bytes_events_and_nodes_move_the_counters() {
    let s = TestControl::start().await;
    let other = TestControl::start().await;
    let wasm = command("metrics");
    assert_eq!(s.deploy_as("f", &wasm, None).await.status(), 201);
    assert_eq!(s.deploy_as("f", &wasm, None).await.status(), 200);
    assert_eq!(s.deploy_as("f", b"junk", None).await.status(), 422);
    let r = s
        .client
        .post(s.at("/register"))
        .json(&serde_json::json!({"node_id": "edge-1", "url": "http://127.0.0.1:9"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = s
        .client
        .post(s.at("/callback"))
        .json(&serde_json::json!({"event": "node_started", "data": {"node_id": "edge-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let m = scrape(&s).await;
    let deploys = |result| value(&m, "aether_control_deploys_total", &[("result", result)]);
    assert_eq!(deploys("created"), 1.0);
    assert_eq!(deploys("unchanged"), 1.0);
    assert_eq!(deploys("rejected"), 1.0);
    assert_eq!(
        value(&m, "aether_control_deploy_bytes_total", &[]),
        wasm.len() as f64
    );
    assert_eq!(value(&m, "aether_control_heartbeats_total", &[]), 1.0);
    assert_eq!(value(&m, "aether_control_events_received_total", &[]), 1.0);
    assert_eq!(value(&m, "aether_control_functions", &[]), 1.0);
    assert_eq!(
        value(&m, "aether_control_nodes", &[("status", "online")]),
        1.0
    );
    assert_eq!(
        value(&m, "aether_control_nodes", &[("status", "offline")]),
        0.0
    );
    assert!(
        m.docs.contains_key("aether_control_deploys_total"),
        "HELP lines are kept"
    );

    // The other server in this process saw none of it.
    let quiet = scrape(&other).await;
    assert_eq!(value(&quiet, "aether_control_deploys_total", &[]), 0.0);
    assert_eq!(value(&quiet, "aether_control_functions", &[]), 0.0);
    s.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_and_status() {
    let s = TestControl::start().await;
    s.deploy_as("alpha", &command("a"), None).await;
    for name in ["alpha", "beta", "gamma"] {
        s.client
            .get(s.at(&format!("/api/functions/{name}")))
            .send()
            .await
            .unwrap();
    }
    s.client.get(s.at("/no/such/path")).send().await.unwrap();
    let m = scrape(&s).await;
    // Templates are written `:name`, not `{name}`: braces inside label
    // values trip up simple parsers of the text format.
    let route = "/api/functions/:name";
    let requests = |status| {
        value(
            &m,
            "aether_control_http_requests_total",
            &[("route", route), ("method", "GET"), ("status", status)],
        )
    };
    assert_eq!(requests("200"), 1.0);
    assert_eq!(requests("404"), 2.0);
    assert_eq!(
        value(
            &m,
            "aether_control_http_requests_total",
            &[
                ("route", "/api/functions"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "aether_control_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        !m.samples.iter().any(|s| s
            .labels
            .values()
            .any(|v| v.contains("beta") || v.contains("/no/such"))),
        "raw paths never become label values"
    );
    // The duration histogram has buckets (not a summary) and counts them.
    assert_eq!(
        value(
            &m,
            "aether_control_http_request_duration_seconds",
            &[("route", route), ("method", "GET")]
        ),
        3.0
    );
    s.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = TestControl::start().await;
    let r = s.client.get(s.at("/health")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32, "a generated id: {generated}");
    let r = s
        .client
        .get(s.at("/nope"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = s
        .client
        .get(s.at("/health"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"].len(),
        32,
        "an over-long client id is replaced"
    );
    s.stop().await;
}
