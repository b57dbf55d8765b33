//! The event log: callbacks in every accepted shape, paging, filtering,
//! retention.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestControl, assert_error};

async fn page(s: &TestControl, query: &str) -> Value {
    let r = s
        .client
        .get(s.at(&format!("/api/events{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn callback_accepts_one_event_a_batch_or_a_wrapped_batch() {
    let s = TestControl::start().await;
    let post = |body: Value| s.client.post(s.at("/callback")).json(&body).send();
    let r = post(json!({"event": "node_started", "data": {"node_id": "edge-1"}}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "last_id": 1})
    );
    let r = post(json!([{"event": "a", "data": {"function": "hello"}}, {"event": "b"}]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = post(
        json!({"events": [{"event": "c", "data": {"function": "hello", "node_id": "edge-2"}}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let all = page(&s, "").await;
    assert_eq!(ids(&all), [1, 2, 3, 4]);
    assert_eq!(all["next_since"], 4);
    let first = &all["events"][0];
    assert_eq!(first["event"], "node_started");
    assert_eq!(first["node_id"], "edge-1");
    assert!(first["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all["events"][1]["function"], "hello");

    let hello = page(&s, "?function=hello").await;
    assert_eq!(ids(&hello), [2, 4]);
    assert_eq!(hello["events"][1]["node_id"], "edge-2");
    s.stop().await;
}

#[tokio::test]
async fn events_page_with_since_and_limit_oldest_first() {
    let s = TestControl::start().await;
    let batch: Vec<Value> = (0..25)
        .map(|i| json!({"event": "tick", "data": {"i": i}}))
        .collect();
    s.client
        .post(s.at("/callback"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    let mut since = 0;
    let mut seen = Vec::new();
    loop {
        let p = page(&s, &format!("?since={since}&limit=10")).await;
        let got = ids(&p);
        if got.is_empty() {
            assert_eq!(p["next_since"], since, "an empty page repeats the position");
            break;
        }
        assert!(got.len() <= 10);
        since = p["next_since"].as_u64().unwrap();
        seen.extend(got);
    }
    assert_eq!(seen, (1..=25).collect::<Vec<u64>>());
    // Limits above the cap are capped, zero and garbage are refused.
    assert_eq!(ids(&page(&s, "?limit=1000000").await).len(), 25);
    assert_eq!(page(&s, "?since=999").await["events"], json!([]));
    assert_error(
        s.client
            .get(s.at("/api/events?limit=0"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        s.client
            .get(s.at("/api/events?since=-1"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        s.client
            .get(s.at("/api/events?sinse=1"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn the_oldest_events_are_dropped_beyond_retention() {
    let s = TestControl::start_with(|mut c| {
        c.event_retention = 10;
        c
    })
    .await;
    for i in 0..3 {
        let batch: Vec<Value> = (0..6)
            .map(|j| json!({"event": "tick", "data": {"i": i * 6 + j}}))
            .collect();
        s.client
            .post(s.at("/callback"))
            .json(&batch)
            .send()
            .await
            .unwrap();
    }
    let all = page(&s, "?limit=100").await;
    assert_eq!(ids(&all), (9..=18).collect::<Vec<u64>>());
    s.stop().await;
}

#[tokio::test]
async fn malformed_callbacks_are_refused() {
    let s = TestControl::start().await;
    for body in [
        json!({"data": {}}),
        json!({"event": ""}),
        json!({"event": "has space"}),
        json!({"event": "x", "data": {"function": "BAD"}}),
        json!(42),
    ] {
        let r = s
            .client
            .post(s.at("/callback"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "invalid_request").await;
    }
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"event": "x"})).collect();
    let r = s
        .client
        .post(s.at("/callback"))
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    let huge = json!({"event": "x", "data": {"blob": "a".repeat(2 << 20)}});
    let r = s
        .client
        .post(s.at("/callback"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large").await;
    assert_eq!(page(&s, "").await["events"], json!([]));
    s.stop().await;
}
