//! Successful executions.

use serde_json::json;

use crate::{ECHO, TestEdge, hello_world_wasm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_example_answers_hello_from_aether() {
    let edge = TestEdge::start().await;
    edge.install("hello_world", &hello_world_wasm());
    let (status, body) = edge
        .execute(json!({"function":"hello_world","input":{"msg":"Hello from Aether!"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "Hello from Aether!");
    assert_eq!(body["exit_code"], 0);
    assert_eq!(body["stderr"], "");
    assert!(body["execution_time_ms"].as_f64().unwrap() > 0.0);
    assert!(body["memory_used_kb"].as_u64().unwrap() >= 64);
    assert!(["compiled", "memory"].contains(&body["cache"].as_str().unwrap()));

    // The second call is served from the in-memory cache.
    let (status, body) = edge
        .execute(json!({"function":"hello_world","input":{"msg":"again"}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["output"], "again");
    assert_eq!(body["cache"], "memory");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_curl_command_works_byte_for_byte() {
    let edge = TestEdge::start().await;
    edge.install("hello_world", &hello_world_wasm());
    let resp = edge
        .client
        .post(format!("{}/execute", edge.url))
        .header("Content-Type", "application/json")
        .body(r#"{"function":"hello_world","input":{"msg":"Hello from Aether!"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["output"], "Hello from Aether!");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_stdin_and_compact_json_input_reach_the_function() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let (status, body) = edge
        .execute(json!({"function":"echo","stdin":"plain text\nline 2"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "plain text\nline 2");
    let (_, body) = edge
        .execute(json!({"function":"echo","input":{"a": [1, 2], "b": "x"}}))
        .await;
    assert_eq!(body["output"], r#"{"a":[1,2],"b":"x"}"#);
    let (_, body) = edge.execute(json!({"function":"echo"})).await;
    assert_eq!(body["output"], "", "no input means empty stdin");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_node_functions_and_cache() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let (status, answer) = edge.execute(json!({"function":"echo"})).await;
    assert_eq!(status, 200, "{answer}");
    let body: serde_json::Value = edge.get("/health").await.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(body["node_id"].as_str().unwrap().starts_with("edge-"));
    assert_eq!(body["functions"], 1);
    // Seen once per few CI runs as 0 under load, not reproduced alone or
    // in 12 runs of the whole suite: the messages carry what is needed.
    assert_eq!(
        body["cached_modules"], 1,
        "execute: {answer}; health: {body}"
    );
    assert!(body["uptime_s"].is_u64());
    edge.stop().await;
}

#[tokio::test]
async fn functions_already_in_func_dir_are_counted_from_the_first_request() {
    let dirs = tempfile::TempDir::new().unwrap();
    let func_dir = dirs.path().join("functions");
    std::fs::create_dir_all(&func_dir).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(
            func_dir.join(format!("{name}.wasm")),
            wat::parse_str(ECHO).unwrap(),
        )
        .unwrap();
    }
    let edge = TestEdge::start_in(dirs.path(), |_| {}).await;
    let body: serde_json::Value = edge.get("/health").await.json().await.unwrap();
    assert_eq!(body["functions"], 3, "{body}");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_get_their_own_outputs() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (client, url) = (edge.client.clone(), edge.url.clone());
        tasks.push(tokio::spawn(async move {
            let body: serde_json::Value = client
                .post(format!("{url}/execute"))
                .json(&json!({"function":"echo","stdin": format!("request {i}")}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(body["output"], format!("request {i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    edge.stop().await;
}
