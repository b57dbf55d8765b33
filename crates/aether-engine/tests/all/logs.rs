//! Logs: the real binary with `--log-format json` writes one JSON object
//! per line, and a request's lines carry its request id; a function's
//! stderr reaches the caller and, bounded, the control plane's events.

use std::path::Path;
use std::time::{Duration, Instant};

use aether_e2e::{Process, TestControl, free_port};

use crate::{ECHO, TestEdge};

/// Writes `0123456789abcdef` to stderr 1000 times (16 000 bytes), then traps.
const NOISY_TRAP: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "0123456789abcdef")
  (func (export "_start")
    (local $i i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (loop $again
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
    unreachable))
"#;

/// The engine binary serving `funcs` with JSON logs filtered by
/// `rust_log`, and its URL once `/health` answers.
async fn start_json_engine(
    dir: &std::path::Path,
    funcs: &std::path::Path,
    rust_log: &str,
) -> (Process, String) {
    let port = free_port();
    let args = [
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--func-dir".into(),
        funcs.display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--standalone".into(),
    ];
    let envs = [
        ("AETHER_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", rust_log.to_owned()),
    ];
    let binary = Path::new(env!("CARGO_BIN_EXE_aether-engine"));
    let engine = Process::start(binary, &args, &envs, dir.join("engine.log"), port)
        .await
        .expect("the engine binary starts");
    let url = engine.url.clone();
    (engine, url)
}

/// Stops the engine and returns its output lines, each checked to be a
/// JSON object with a level and a timestamp.
async fn json_lines(mut engine: Process) -> Vec<serde_json::Value> {
    // Lines are written as they happen; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    engine.kill().expect("the engine was running");
    engine
        .log_text()
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(
                json["level"].is_string() && json["timestamp"].is_string(),
                "{line}"
            );
            json
        })
        .collect()
}

fn message(line: &serde_json::Value) -> String {
    line["fields"]["message"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let funcs = dir.path().join("functions");
    std::fs::create_dir_all(&funcs).unwrap();
    std::fs::write(funcs.join("echo.wasm"), wat::parse_str(ECHO).unwrap()).unwrap();
    std::fs::write(
        funcs.join("noisy.wasm"),
        wat::parse_str(NOISY_TRAP).unwrap(),
    )
    .unwrap();
    // Debug level: the per-request span and lines are on.
    let (child, url) = start_json_engine(dir.path(), &funcs, "info,aether_engine=debug").await;
    let client = reqwest::Client::new();
    for (id, function) in [("req-ok-1", "echo"), ("req-fail-2", "noisy")] {
        let r = client
            .post(format!("{url}/execute"))
            .header("x-request-id", id)
            .json(&serde_json::json!({"function": function, "stdin": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], id);
    }
    let r = client.get(format!("{url}/health")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let lines = json_lines(child).await;

    let of = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let ok: Vec<String> = of("req-ok-1").into_iter().map(message).collect();
    let failed: Vec<String> = of("req-fail-2").into_iter().map(message).collect();
    assert!(ok.iter().any(|m| m == "request finished"), "{ok:?}");
    assert!(
        failed.iter().any(|m| m == "execution failed"),
        "the guest's failure, logged inside the execution, carries the id: {failed:?}"
    );
    assert!(failed.iter().any(|m| m == "request finished"), "{failed:?}");
    assert_eq!(of(&generated).len(), 1, "a generated id is logged too");
    assert!(
        lines
            .iter()
            .any(|l| message(l).starts_with("aether-engine listening")),
        "start-up lines are JSON too"
    );
}

#[tokio::test]
async fn at_info_level_a_request_logs_only_its_errors_and_they_carry_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let funcs = dir.path().join("functions");
    std::fs::create_dir_all(&funcs).unwrap();
    std::fs::write(funcs.join("echo.wasm"), wat::parse_str(ECHO).unwrap()).unwrap();
    let (child, url) = start_json_engine(dir.path(), &funcs, "info").await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{url}/execute"))
        .header("x-request-id", "req-quiet-1")
        .json(&serde_json::json!({"function": "echo", "stdin": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The function directory turns into a file: looking up an unknown
    // function now fails on the server's side (ENOTDIR), a 500.
    std::fs::remove_dir_all(&funcs).unwrap();
    std::fs::write(&funcs, b"not a directory").unwrap();
    let r = client
        .post(format!("{url}/execute"))
        .header("x-request-id", "req-internal-2")
        .json(&serde_json::json!({"function": "ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    let lines = json_lines(child).await;

    let mentions = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["request_id"] == id || l["span"]["request_id"] == id)
            .collect()
    };
    assert!(
        mentions("req-quiet-1").is_empty(),
        "a successful request writes nothing at info level: {lines:?}"
    );
    let internal = mentions("req-internal-2");
    assert_eq!(internal.len(), 1, "{lines:?}");
    assert_eq!(internal[0]["level"], "ERROR");
    assert!(
        message(internal[0]).contains("function directory"),
        "{:?}",
        internal[0]
    );
}

#[tokio::test]
async fn function_stderr_is_returned_and_stored_in_failure_events_bounded() {
    // A control plane in this process, an edge managed by it.
    let control = TestControl::start().await;
    let control_url = control.url.clone();
    let client = reqwest::Client::new();
    let wasm = wat::parse_str(NOISY_TRAP).unwrap();
    let r = client
        .put(format!("{control_url}/api/functions/noisy"))
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let url = control_url.clone();
    let edge = TestEdge::start_with(move |c| c.control_url = Some(url)).await;
    let r = edge
        .execute_with_id(serde_json::json!({"function": "noisy"}), "stderr-test-1")
        .await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "trap");
    let stderr = body["error"]["stderr"].as_str().unwrap();
    assert_eq!(
        stderr.len(),
        16_000,
        "the caller gets all of it (under max_output)"
    );
    assert!(stderr.starts_with("0123456789abcdef0123"));

    // The control plane stores the failure with a bounded excerpt, the
    // request id, and serves it filtered by function.
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = loop {
        let events: serde_json::Value = client
            .get(format!("{control_url}/api/events?function=noisy"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = events
            .as_array()
            .or_else(|| events["events"].as_array())
            .cloned()
            .unwrap_or_default();
        if let Some(e) = list.into_iter().find(|e| e["event"] == "execution_failed") {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no execution_failed event: {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let data = &event["data"];
    assert_eq!(data["function"], "noisy");
    assert_eq!(data["code"], "trap");
    assert_eq!(data["request_id"], "stderr-test-1");
    let excerpt = data["stderr"].as_str().unwrap();
    assert_eq!(excerpt.len(), aether_engine::events::MAX_EVENT_STDERR);
    assert!(stderr.starts_with(excerpt));

    edge.stop().await;
    control.stop().await;
}
