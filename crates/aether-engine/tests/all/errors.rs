//! Every error status, each answered with the JSON error body, and the edge
//! serving normally right after.

use std::time::Duration;

use aether_e2e::code;
use serde_json::json;

use crate::{ECHO, LOOP, TestEdge};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_with_a_reason() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let json_ct = Some("application/json");
    for (body, needle) in [
        (&b"{not json"[..], "invalid request body"),
        (br#"{"function": 5}"#, "invalid type"),
        (br#"{"input": {}}"#, "missing field `function`"),
        (br#"{"function":"echo","inputs":{}}"#, "unknown field"),
        (br#"{"function":"echo","input":1,"stdin":"x"}"#, "not both"),
        (br#"{"function":"../etc/passwd"}"#, "invalid"),
        (br#"{"function":"Hello"}"#, "invalid"),
        (br#"{"function":""}"#, "empty"),
        ("{\"function\":\"h\u{e9}llo\"}".as_bytes(), "invalid"),
    ] {
        let (status, resp) = edge.post_raw(json_ct, body.to_vec()).await;
        assert_eq!(status, 400, "{}: {resp}", String::from_utf8_lossy(body));
        assert_eq!(code(&resp), "invalid_request");
        let message = resp["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    let long = format!(r#"{{"function":"{}"}}"#, "a".repeat(64));
    let (status, _) = edge.post_raw(json_ct, long.into_bytes()).await;
    assert_eq!(status, 400);
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_415_and_missing_one_is_accepted() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let body = br#"{"function":"echo","stdin":"x"}"#.to_vec();
    let (status, resp) = edge.post_raw(Some("text/plain"), body.clone()).await;
    assert_eq!((status, code(&resp)), (415, "unsupported_media_type"));
    let (status, resp) = edge.post_raw(None, body.clone()).await;
    assert_eq!((status, resp["output"].as_str()), (200, Some("x")));
    let (status, _) = edge
        .post_raw(Some("application/json; charset=utf-8"), body)
        .await;
    assert_eq!(status, 200);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_function_route_and_method_are_404_404_405() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let (status, resp) = edge.execute(json!({"function":"nope"})).await;
    assert_eq!((status, code(&resp)), (404, "function_not_found"));
    assert!(resp["error"]["message"].as_str().unwrap().contains("nope"));

    let resp = edge.get("/nothing").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(code(&resp.json().await.unwrap()), "not_found");

    let resp = edge.get("/execute").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(code(&resp.json().await.unwrap()), "method_not_allowed");
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_body_and_input_are_413() {
    let edge = TestEdge::start_with(|c| c.max_input = 1000).await;
    edge.install_wat("echo", ECHO);
    // Body far over the limit: refused before being buffered.
    let huge = format!(r#"{{"function":"echo","stdin":"{}"}}"#, "x".repeat(500_000));
    let resp = edge
        .client
        .post(format!("{}/execute", edge.url))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // The unread body is still on the connection: the client is told not
    // to reuse it (and its next request below must not fail on it).
    assert_eq!(resp.headers()["connection"], "close");
    assert_eq!(code(&resp.json().await.unwrap()), "payload_too_large");
    // Body within the transport limit, but the input is over max_input.
    let (status, resp) = edge
        .execute(json!({"function":"echo","stdin":"y".repeat(1001)}))
        .await;
    assert_eq!((status, code(&resp)), (413, "payload_too_large"));
    let (status, _) = edge
        .execute(json!({"function":"echo","stdin":"y".repeat(1000)}))
        .await;
    assert_eq!(status, 200, "exactly at the limit is fine");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_413_and_the_connection_is_not_reused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let edge = TestEdge::start_with(|c| c.max_input = 1000).await;
    let addr = edge.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // No Content-Length: refused while streaming, the rest never read.
    let head = format!(
        "POST /execute HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = [b"1000\r\n".as_slice(), &[b'x'; 4096], b"\r\n"].concat();
    for _ in 0..64 {
        // The edge may answer and close before all of it is sent.
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 413"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_failures_map_to_distinct_codes_with_stderr() {
    let edge = TestEdge::start_with(|c| {
        c.limits.timeout = Duration::from_millis(300);
        c.limits.max_stdout_bytes = 10_000;
    })
    .await;
    edge.install_wat("echo", ECHO);
    edge.install_wat(
        "trap",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "about to fail")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 13))
            (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
            unreachable))"#,
    );
    edge.install_wat("spin", LOOP);
    edge.install_wat(
        "bomb",
        r#"(module (memory 1) (func (export "_start")
            (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable))"#,
    );
    edge.install_wat(
        "flood",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 4096))
            (loop (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))) (br 0))))"#,
    );
    edge.install_wat(
        "recurse",
        r#"(module (func $r (call $r)) (func (export "_start") (call $r)))"#,
    );
    edge.install("garbage", b"\0asmthis is not a module");
    edge.install_wat("reactor", r#"(module (func (export "_initialize")))"#);

    for (function, status, expected) in [
        ("trap", 500, "trap"),
        ("recurse", 500, "trap"),
        ("spin", 504, "timeout"),
        ("bomb", 507, "memory_limit_exceeded"),
        ("flood", 502, "output_limit_exceeded"),
        ("garbage", 422, "invalid_wasm"),
        ("reactor", 422, "invalid_wasm"),
    ] {
        let (got, resp) = edge.execute(json!({ "function": function })).await;
        assert_eq!((got, code(&resp)), (status, expected), "{function}: {resp}");
        edge.assert_serves().await;
    }
    let (_, resp) = edge.execute(json!({"function":"trap"})).await;
    assert_eq!(resp["error"]["stderr"], "about to fail");
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_queue_are_shed_with_503() {
    let edge = TestEdge::start_with(|c| {
        c.max_concurrency = 1;
        c.max_queue = 0;
        c.limits.timeout = Duration::from_millis(1500);
    })
    .await;
    edge.install_wat("spin", LOOP);
    edge.install_wat("echo", ECHO);
    // Warm both so the slot is taken by execution, not compilation.
    edge.execute(json!({"function":"echo"})).await;
    let busy = {
        let (client, url) = (edge.client.clone(), edge.url.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/execute"))
                .json(&json!({"function":"spin"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // Wait until the spin occupies the only slot, then overflow.
    let mut shed = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, resp) = edge.execute(json!({"function":"echo"})).await;
        if status == 503 {
            shed = Some(resp);
            break;
        }
    }
    let resp = shed.expect("a request was shed while the slot was busy");
    assert_eq!(code(&resp), "overloaded");
    assert_eq!(busy.await.unwrap(), 504);
    edge.assert_serves().await;
    edge.stop().await;
}

/// Past `module_memory_budget` the edge refuses to load one more module:
/// 503 `memory_budget_exceeded` with a message naming the budget, the
/// functions already held keep serving, and /health and /metrics show
/// what is held against the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_module_memory_budget_a_function_is_refused_with_503_and_the_rest_serve() {
    let root = tempfile::tempdir().unwrap();
    // One module's size, from an edge with no budget to speak of.
    let size = {
        let edge = TestEdge::start_in(root.path(), |_| {}).await;
        edge.install_wat("echo", ECHO);
        let (status, _) = edge
            .execute(json!({"function": "echo", "stdin": "x"}))
            .await;
        assert_eq!(status, 200);
        let health = health(&edge).await;
        edge.stop().await;
        health["module_memory_bytes"].as_u64().unwrap()
    };
    assert!(size > 0);
    // Room for echo, not for a second module as big.
    let edge = TestEdge::start_in(root.path(), |c| c.module_memory_budget = size + size / 2).await;
    let (status, body) = edge
        .execute(json!({"function": "echo", "stdin": "x"}))
        .await;
    assert_eq!((status, body["output"].as_str()), (200, Some("x")));
    let mut second = wat::parse_str(ECHO).unwrap();
    second.extend_from_slice(&[0, 3, 1, b'x', 2]); // a custom section: other bytes
    edge.install("second", &second);
    let (status, body) = edge
        .execute(json!({"function": "second", "stdin": "x"}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), "memory_budget_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("budget"), "{message}");
    let (status, _) = edge
        .execute(json!({"function": "echo", "stdin": "y"}))
        .await;
    assert_eq!(status, 200, "the functions held keep serving");
    let health = health(&edge).await;
    assert_eq!(health["held_modules"], 1);
    assert_eq!(health["module_memory_bytes"], size);
    assert_eq!(health["module_memory_budget_bytes"], size + size / 2);
    let metrics =
        aether_fixtures::prometheus::parse(&edge.get("/metrics").await.text().await.unwrap());
    let gauge = |name| aether_fixtures::prometheus::value(&metrics, name, &[]);
    assert_eq!(gauge("aether_edge_held_modules"), 1.0);
    assert_eq!(gauge("aether_edge_module_memory_bytes"), size as f64);
    assert_eq!(
        gauge("aether_edge_module_memory_budget_bytes"),
        (size + size / 2) as f64
    );
    edge.stop().await;
}

async fn health(edge: &TestEdge) -> serde_json::Value {
    edge.get("/health").await.json().await.unwrap()
}
