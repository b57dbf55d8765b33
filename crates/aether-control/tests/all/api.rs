//! The function registry over HTTP: deploys, versions, rollback, manifest,
//! downloads, and every way a request can be refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestControl, assert_error, b64, command, reactor, sha256_hex};

#[tokio::test]
async fn original_curl_deploy_and_manifest_work_as_written() {
    let s = TestControl::start().await;
    let wasm = command("hello");
    // curl -X POST .../api/functions -H 'Content-Type: application/json' -d '{...}'
    let r = s
        .client
        .post(s.at("/api/functions"))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"name":"hello_world","wasm_b64":"{}"}}"#,
            b64(&wasm)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["function_id"], "hello_world");
    assert_eq!(body["version"], 1);
    assert_eq!(body["sha256"], sha256_hex(&wasm));
    assert_eq!(body["size_kb"], 1);
    assert!(body["deployed_at"].as_str().unwrap().ends_with('Z'));

    // curl .../api/functions/manifest
    let manifest: Value = s
        .client
        .get(s.at("/api/functions/manifest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let functions = manifest["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 1);
    let entry = &functions[0];
    for key in ["name", "size_kb", "uploaded_at", "version", "sha256"] {
        assert!(
            entry.get(key).is_some(),
            "manifest entry lacks {key}: {entry}"
        );
    }
    assert_eq!(entry["name"], "hello_world");
    assert_eq!(entry["sha256"], sha256_hex(&wasm));
    s.stop().await;
}

#[tokio::test]
async fn redeploy_creates_versions_and_identical_redeploy_keeps_version() {
    let s = TestControl::start().await;
    let v1 = command("one");
    let v2 = command("two");
    assert_eq!(
        s.deploy_as("f", &v1, None).await.status(),
        StatusCode::CREATED
    );
    let same = s.deploy_as("f", &v1, None).await;
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(same.json::<Value>().await.unwrap()["version"], 1);
    let r = s.deploy_as("f", &v2, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    // Same bytes with other settings is a new version.
    let r = s
        .deploy_json(
            json!({"name": "f", "wasm_b64": b64(&v2), "args": ["-v"], "env": {"K": "V"},
                   "limits": {"timeout": "1s", "memory": "8MB"}}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let info: Value = s
        .client
        .get(s.at("/api/functions/f"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "f");
    assert_eq!(info["current_version"], 3);
    let versions = info["versions"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(versions[2]["args"], json!(["-v"]));
    assert_eq!(versions[2]["env"], json!({"K": "V"}));
    assert_eq!(
        versions[2]["limits"],
        json!({"timeout": "1s", "memory": "8MB"})
    );
    s.stop().await;
}

#[tokio::test]
async fn rollback_makes_an_older_version_current_everywhere() {
    let s = TestControl::start().await;
    let mut changes = s.state.subscribe();
    let v1 = command("one");
    s.deploy_as("f", &v1, None).await;
    s.deploy_as("f", &command("two"), None).await;
    let r = s
        .client
        .post(s.at("/api/functions/f/rollback"))
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["version"].as_u64(), body["sha256"].as_str()),
        (Some(1), Some(sha256_hex(&v1).as_str()))
    );
    let manifest: Value = s
        .client
        .get(s.at("/api/functions/manifest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["functions"][0]["version"], 1);
    let current = s
        .client
        .get(s.at("/api/functions/f/wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(current.bytes().await.unwrap().as_ref(), v1.as_slice());

    // Deploy, deploy, rollback: three notifications for the distribution hook.
    let mut kinds = Vec::new();
    while let Ok(change) = changes.try_recv() {
        kinds.push(
            format!("{change:?}")
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(kinds, ["Deployed", "Deployed", "RolledBack"]);

    let r = s
        .client
        .post(s.at("/api/functions/f/rollback"))
        .json(&json!({"version": 9}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "conflict").await;
    let r = s
        .client
        .post(s.at("/api/functions/nope/rollback"))
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "function_not_found").await;
    let r = s
        .client
        .post(s.at("/api/functions/f/rollback"))
        .json(&json!({"version": "one"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    s.stop().await;
}

#[tokio::test]
async fn raw_put_deploys_large_modules_with_the_same_answer() {
    let s = TestControl::start().await;
    let wasm = command(&"x".repeat(200_000));
    let r = s
        .client
        .put(s.at("/api/functions/big?timeout=2s"))
        .header("Content-Type", "application/wasm")
        .body(wasm.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["function_id"], "big");
    assert_eq!(body["size_kb"], (wasm.len() as u64).div_ceil(1024));
    let info: Value = s
        .client
        .get(s.at("/api/functions/big"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["versions"][0]["limits"], json!({"timeout": "2s"}));
    let r = s
        .client
        .put(s.at("/api/functions/big"))
        .header("Content-Type", "text/plain")
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "unsupported_media_type").await;
    s.stop().await;
}

#[tokio::test]
async fn blob_download_has_the_sha256_etag_and_honours_if_none_match() {
    let s = TestControl::start().await;
    let v1 = command("one");
    let v2 = command("two");
    s.deploy_as("f", &v1, None).await;
    s.deploy_as("f", &v2, None).await;
    let r = s
        .client
        .get(s.at("/api/functions/f/wasm?version=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/wasm");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&v1)));
    assert_eq!(r.bytes().await.unwrap().as_ref(), v1.as_slice());

    let r = s
        .client
        .get(s.at("/api/functions/f/wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-aether-version"], "2");
    assert_eq!(r.bytes().await.unwrap().as_ref(), v2.as_slice());

    let r = s
        .client
        .get(s.at("/api/functions/f/wasm?version=1"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());

    assert_error(
        s.client
            .get(s.at("/api/functions/f/wasm?version=7"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_error(
        s.client
            .get(s.at("/api/functions/f/wasm?version=x"))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        s.client
            .get(s.at("/api/functions/g/wasm"))
            .send()
            .await
            .unwrap(),
        404,
        "function_not_found",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn list_show_and_delete_follow_the_registry() {
    let s = TestControl::start().await;
    let shared = command("shared");
    s.deploy_as("b", &shared, None).await;
    s.deploy_as("a", &shared, None).await;
    s.deploy_as("a", &command("a2"), None).await;
    let list: Value = s
        .client
        .get(s.at("/api/functions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<_> = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let r = s
        .client
        .delete(s.at("/api/functions/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "success", "function_id": "a", "versions_removed": 2})
    );
    assert_error(
        s.client.get(s.at("/api/functions/a")).send().await.unwrap(),
        404,
        "function_not_found",
    )
    .await;
    assert_error(
        s.client
            .delete(s.at("/api/functions/a"))
            .send()
            .await
            .unwrap(),
        404,
        "function_not_found",
    )
    .await;
    // The blob "b" still uses is kept.
    let r = s
        .client
        .get(s.at("/api/functions/b/wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), shared.as_slice());
    // A deleted name starts again at version 1.
    let r = s.deploy_as("a", &command("new"), None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 1);
    s.stop().await;
}

#[tokio::test]
async fn bad_names_are_refused_at_every_entry_point() {
    let s = TestControl::start().await;
    let wasm = command("x");
    let long = "a".repeat(64);
    for name in [
        "..",
        "A",
        long.as_str(),
        "héllo",
        "a b",
        "",
        "-x",
        "manifest",
    ] {
        let r = s.deploy_as(name, &wasm, None).await;
        assert_error(r, 400, "invalid_request").await;
    }
    for path in ["A", "a.wasm", "h%C3%A9llo", long.as_str(), "a%20b"] {
        assert_error(
            s.client
                .get(s.at(&format!("/api/functions/{path}")))
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
        assert_error(
            s.client
                .delete(s.at(&format!("/api/functions/{path}")))
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
        assert_error(
            s.client
                .get(s.at(&format!("/api/functions/{path}/wasm")))
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
        let r = s
            .client
            .put(s.at(&format!("/api/functions/{path}")))
            .body(wasm.clone())
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "invalid_request").await;
    }
    assert_error(
        s.client
            .get(s.at("/api/events?function=A"))
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
async fn malformed_bodies_are_refused_with_json_errors() {
    let s = TestControl::start().await;
    let post = |body: &'static str, content_type: &'static str| {
        s.client
            .post(s.at("/api/functions"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        post("{not json", "application/json").await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        post(r#"{"name":"f"}"#, "application/json").await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        post(
            r#"{"name":"f","wasm_b64":"AA==","extra":1}"#,
            "application/json",
        )
        .await
        .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let message = assert_error(
        post(
            r#"{"name":"f","wasm_b64":"not base64!"}"#,
            "application/json",
        )
        .await
        .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert!(message.contains("base64"), "{message}");
    assert_error(
        post(r#"{"name":"f","wasm_b64":"AA=="}"#, "text/plain")
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        s.client
            .post(s.at("/api/functions"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let r = s
        .deploy_json(
            json!({"name": "f", "wasm_b64": b64(&command("x")), "limits": {"timeout": "soon"}}),
            None,
        )
        .await;
    assert_error(r, 400, "invalid_request").await;
    let r = s
        .deploy_json(
            json!({"name": "f", "wasm_b64": b64(&command("x")), "env": {"A=B": "x"}}),
            None,
        )
        .await;
    assert_error(r, 400, "invalid_request").await;
    s.stop().await;
}

#[tokio::test]
async fn modules_that_are_not_wasi_commands_are_refused_with_the_reason() {
    let s = TestControl::start().await;
    let message = assert_error(
        s.deploy_as("f", b"definitely not wasm", None).await,
        422,
        "invalid_wasm",
    )
    .await;
    assert!(message.contains("invalid wasm"), "{message}");
    let message = assert_error(
        s.deploy_as("f", &reactor(), None).await,
        422,
        "invalid_wasm",
    )
    .await;
    assert!(message.contains("_start"), "{message}");
    let import =
        wat::parse_str(r#"(module (import "env" "f" (func)) (func (export "_start")))"#).unwrap();
    let message = assert_error(s.deploy_as("f", &import, None).await, 422, "invalid_wasm").await;
    assert!(message.contains("env::f"), "{message}");
    assert_error(s.deploy_as("f", b"", None).await, 422, "invalid_wasm").await;
    // Nothing was stored.
    assert_error(
        s.client.get(s.at("/api/functions/f")).send().await.unwrap(),
        404,
        "function_not_found",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn oversize_modules_are_refused_with_413_json() {
    let s = TestControl::start_with(|mut c| {
        c.max_module_size = 10_000;
        c
    })
    .await;
    let big = command(&"y".repeat(20_000));
    // Raw body: refused from its Content-Length.
    let r = s
        .client
        .put(s.at("/api/functions/f"))
        .header("Content-Type", "application/wasm")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    // Answered before the body was read: not a connection to reuse.
    assert_eq!(r.headers()["connection"], "close");
    assert_error(r, 413, "payload_too_large").await;
    // Raw body without Content-Length (chunked): refused while streaming.
    let (status, body) = put_chunked(&s.url, "/api/functions/f", &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // JSON whose module decodes past the limit, although the body is under
    // the JSON limit.
    let r = s.deploy_as("f", &big, None).await;
    assert_error(r, 413, "payload_too_large").await;
    // A module just under the limit is fine.
    let ok = command(&"z".repeat(9_000));
    assert!(ok.len() < 10_000);
    assert_eq!(
        s.deploy_as("f", &ok, None).await.status(),
        StatusCode::CREATED
    );
    s.stop().await;
}

/// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length) over
/// a raw connection; returns the status and the response text.
async fn put_chunked(url: &str, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/wasm\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(1024) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer and close before the whole body is sent.
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let s = TestControl::start().await;
    assert_error(
        s.client.get(s.at("/nope")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_error(
        s.client
            .get(s.at("/api/functions/a/b/c"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_error(
        s.client
            .delete(s.at("/api/functions"))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(
        s.client.post(s.at("/health")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(
        s.client.get(s.at("/register")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(
        s.client
            .put(s.at("/api/functions/manifest"))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn health_and_metrics_report_the_registry() {
    let s = TestControl::start().await;
    s.deploy_as("f", &command("x"), None).await;
    s.deploy_as("f", &command("x"), None).await;
    s.deploy_as("f", b"junk", None).await;
    let health: Value = s
        .client
        .get(s.at("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["functions"], 1);
    assert_eq!(health["nodes_online"], 0);
    let text = aether_fixtures::prometheus::text(&s.client, &s.at("/metrics")).await;
    for line in [
        "aether_control_deploys_total{result=\"created\"} 1",
        "aether_control_deploys_total{result=\"unchanged\"} 1",
        "aether_control_deploys_total{result=\"rejected\"} 1",
        "aether_control_functions 1",
        "aether_control_nodes{status=\"online\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    s.stop().await;
}
