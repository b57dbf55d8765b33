//! The node registry: registration, heartbeats, online/offline.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestControl, assert_error};

#[tokio::test]
async fn registered_nodes_go_offline_after_node_timeout_and_come_back_with_a_heartbeat() {
    let s = TestControl::start_with(|mut c| {
        c.node_timeout = Duration::from_millis(300);
        c
    })
    .await;
    let register =
        json!({"node_id": "edge-1", "url": "http://10.0.0.1:9091", "functions": {"hello": 2}});
    let r = s.post_json("/register", &register).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["status"], "online");

    let nodes: Value = s.get_json("/api/nodes").await;
    let node = &nodes.as_array().unwrap()[0];
    assert_eq!(node["node_id"], "edge-1");
    assert_eq!(node["url"], "http://10.0.0.1:9091");
    assert_eq!(node["status"], "online");
    assert_eq!(node["functions"], json!({"hello": 2}));
    let registered_at = node["registered_at"].clone();
    let health: Value = s.get_json("/health").await;
    assert_eq!(health["nodes_online"], 1);

    tokio::time::sleep(Duration::from_millis(450)).await;
    let nodes: Value = s.get_json("/api/nodes").await;
    assert_eq!(nodes[0]["status"], "offline");

    s.post_json("/register", &register).await;
    let nodes: Value = s.get_json("/api/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    assert_eq!(nodes[0]["status"], "online");
    assert_eq!(nodes[0]["registered_at"], registered_at);
    assert_ne!(nodes[0]["last_seen"], registered_at);
    s.stop().await;
}

#[tokio::test]
async fn registrations_with_bad_fields_are_refused() {
    let s = TestControl::start().await;
    for body in [
        json!({"node_id": "", "url": "http://a:1"}),
        json!({"node_id": "a b", "url": "http://a:1"}),
        json!({"node_id": "n", "url": "ftp://a"}),
        json!({"node_id": "n"}),
        json!({"node_id": "n", "url": "http://a:1", "functions": {"BAD": 1}}),
        json!({"node_id": "n", "url": "http://a:1", "functions": {"ok": "one"}}),
    ] {
        let r = s.post_json("/register", &body).await;
        assert_error(r, 400, "invalid_request").await;
    }
    let r = s
        .client
        .post(s.at("/register"))
        .body("node_id=n")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "unsupported_media_type").await;
    let nodes: Value = s.get_json("/api/nodes").await;
    assert_eq!(nodes, json!([]));
    s.stop().await;
}

#[tokio::test]
async fn an_edge_that_says_it_is_stopping_shows_stopped_at_once_until_it_registers_again() {
    let s = TestControl::start().await;
    let register = json!({"node_id": "edge-1", "url": "http://10.0.0.1:9091"});
    let status = || async {
        let nodes: Value = s.get_json("/api/nodes").await;
        nodes[0]["status"].clone()
    };
    let r = s.post_json("/register", &register).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status().await, "online");

    let stopping = json!({"event": "node_stopping", "data": {"node_id": "edge-1"}});
    let r = s.post_json("/callback", &stopping).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(status().await, "stopped", "well within node_timeout");
    let health: Value = s.get_json("/health").await;
    assert_eq!(health["nodes_online"], 0);

    s.post_json("/register", &register).await;
    assert_eq!(status().await, "online");
    s.stop().await;
}

#[tokio::test]
async fn a_node_silent_for_longer_than_node_retention_is_forgotten() {
    let s = TestControl::start_with(|mut c| {
        c.node_timeout = Duration::from_millis(100);
        c.node_retention = Duration::from_millis(400);
        c
    })
    .await;
    for id in ["gone", "alive"] {
        let register = json!({"node_id": id, "url": "http://10.0.0.1:9091"});
        let r = s.post_json("/register", &register).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // "alive" keeps heartbeating; "gone" falls silent. Pruning runs every
    // 100 ms here, so 1.5 s leaves it several chances on a loaded machine.
    let alive = json!({"node_id": "alive", "url": "http://10.0.0.2:9091"});
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        s.post_json("/register", &alive).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nodes = s.get_json("/api/nodes").await;
    let ids: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alive"]);
    s.stop().await;
}
