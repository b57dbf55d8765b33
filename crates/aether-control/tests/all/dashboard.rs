//! The dashboard's server side: its files with their security headers, and
//! the API it reads (`/api/overview`, per-minute stats, event filters). The
//! page itself is tested in a real browser (aether-e2e's `dashboard`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN, TestControl, assert_error, with_tokens};

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy_and_needs_no_token_to_load() {
    let s = TestControl::start_with(with_tokens).await;
    for (path, media) in [
        ("/ui", "text/html"),
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let r = s.client.get(s.at(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(media), "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    let r = s
        .client
        .get(s.at("/ui/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s.client.get(s.at("/ui/secrets.json")).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
    // The data is not public: the overview needs the admin token.
    let r = s.client.get(s.at("/api/overview")).send().await.unwrap();
    assert_error(r, 401, "unauthorized").await;
    s.stop().await;
}

async fn get(s: &TestControl, path: &str) -> Value {
    let r = s
        .client
        .get(s.at(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_overview_and_a_functions_stats_show_the_last_hour_minute_by_minute() {
    let s = TestControl::start().await;
    s.deploy("f", &crate::support::command("f")).await;
    let report = |node: &str, invocations: u64, errors: u64, p99: f64| json!({"event": "function_stats", "data": {"node_id": node, "function": "f", "invocations": invocations, "errors": errors, "p50_ms": 1.0, "p99_ms": p99}});
    for body in [
        json!({"event": "node_started", "data": {"node_id": "edge-1"}}),
        report("edge-1", 10, 1, 4.0),
        report("edge-2", 30, 0, 9.0),
    ] {
        let r = s
            .client
            .post(s.at("/callback"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let overview = get(&s, "/api/overview").await;
    assert_eq!(overview["functions"], 1);
    assert_eq!(overview["last_hour"]["invocations"], 40);
    assert_eq!(overview["last_hour"]["errors"], 1);
    assert_eq!(overview["last_hour"]["p99_ms"], 9.0);
    let minutes = overview["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert_eq!(
        minutes[59]["invocations"], 40,
        "this minute: {}",
        minutes[59]
    );
    assert_eq!(overview["node_stats"]["edge-1"]["invocations"], 10);
    assert_eq!(overview["node_stats"]["edge-2"]["invocations"], 30);
    for status in ["online", "offline", "stopped"] {
        assert!(overview["nodes"][status].is_u64(), "{overview}");
    }
    let stats = get(&s, "/api/functions/f/stats").await;
    assert_eq!(stats["minutes"].as_array().unwrap().len(), 60);
    assert_eq!(stats["minutes"][59]["invocations"], 40);
    assert_eq!(stats["invocations"], 40);
    let manifest = get(&s, "/api/functions").await;
    assert_eq!(manifest["functions"][0]["kind"], "command");
    s.stop().await;
}

#[tokio::test]
async fn events_filter_by_node_and_kind() {
    let s = TestControl::start().await;
    let batch = json!([
        {"event": "execution_failed", "data": {"node_id": "edge-1", "function": "f", "stderr": "boom"}},
        {"event": "execution_failed", "data": {"node_id": "edge-2", "function": "f"}},
        {"event": "node_started", "data": {"node_id": "edge-1"}},
    ]);
    let r = s
        .client
        .post(s.at("/callback"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ids = |page: &Value| -> Vec<u64> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&get(&s, "/api/events?node=edge-1").await), [1, 3]);
    assert_eq!(
        ids(&get(&s, "/api/events?kind=execution_failed").await),
        [1, 2]
    );
    assert_eq!(
        ids(&get(
            &s,
            "/api/events?kind=execution_failed&function=f&node=edge-2"
        )
        .await),
        [2]
    );
    // A tail starts at the newest matching events, and at the end of the
    // log when none matches.
    let tail = get(&s, "/api/events?newest=true&limit=1&kind=execution_failed").await;
    assert_eq!((ids(&tail), &tail["next_since"]), (vec![2], &json!(2)));
    let tail = get(&s, "/api/events?newest=true&limit=5&kind=never").await;
    assert_eq!((ids(&tail), &tail["next_since"]), (vec![], &json!(3)));
    let tail = get(&s, "/api/events?newest=true&limit=2").await;
    assert_eq!(ids(&tail), [2, 3]);
    for bad in [
        "?node=a%20b",
        "?kind=",
        &format!("?kind={}", "k".repeat(65)),
    ] {
        let r = s
            .client
            .get(s.at(&format!("/api/events{bad}")))
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "invalid_request").await;
    }
    s.stop().await;
}
