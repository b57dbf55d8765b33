//! The HTTP trigger (`/fn/{name}/…`) and preview-2 commands: real
//! components built from examples/ for wasm32-wasip2, real CGI programs.

use serde_json::{Value, json};

use crate::{ECHO, TestEdge};

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON error body");
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_http_component_answers_any_method_with_path_query_headers_and_body() {
    let edge = TestEdge::start().await;
    edge.install("http_hello", &aether_fixtures::http_hello_wasm());
    let resp = edge
        .client
        .post(format!("{}/fn/http_hello/some/path?x=1&y=two", edge.url))
        .header("x-demo", "hi there")
        .header("x-request-id", "req-http-1")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-http-1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/some/path");
    assert_eq!(body["query"], "x=1&y=two");
    assert_eq!(body["header"], "hi there");
    assert_eq!(body["body"], "the body");

    // No path after the name: the function sees `/`.
    for url in ["/fn/http_hello", "/fn/http_hello/"] {
        let resp = edge
            .client
            .get(format!("{}{url}", edge.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["method"], "GET");
        assert_eq!(body["path"], "/", "{url}");
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_a_function_the_wrong_way_names_the_right_way() {
    let edge = TestEdge::start().await;
    edge.install("http_hello", &aether_fixtures::http_hello_wasm());
    let (status, body) = edge
        .execute(json!({"function": "http_hello", "input": {}}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "wrong_kind");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("/fn/http_hello"), "{message}");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_2_command_runs_through_execute_like_a_preview_1_command() {
    let edge = TestEdge::start().await;
    edge.install("hello_p2", &aether_fixtures::hello_world_p2_wasm());
    edge.install("hello_p1", &aether_fixtures::hello_world_wasm());
    for name in ["hello_p1", "hello_p2"] {
        let (status, body) = edge
            .execute(json!({"function": name, "input": {"msg": "Hello from Aether!"}}))
            .await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["output"], "Hello from Aether!", "{name}");
        assert_eq!(body["exit_code"], 0, "{name}");
        assert!(body["memory_used_kb"].as_u64().unwrap() >= 64, "{name}");
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_1_module_answers_cgi_style_with_its_status_and_headers() {
    let edge = TestEdge::start().await;
    edge.install("cgi_hello", &aether_fixtures::cgi_hello_wasm());
    let resp = edge
        .client
        .put(format!("{}/fn/cgi_hello/a/b?q=1", edge.url))
        .header("x-demo", "hi")
        .body("posted")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let text = resp.text().await.unwrap();
    assert!(text.contains("PUT /a/b?q=1"), "{text}");
    assert!(text.contains("posted"), "{text}");

    let resp = edge
        .client
        .get(format!("{}/fn/cgi_hello/missing", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgi_output_without_a_header_block_is_a_502_not_a_guess() {
    let edge = TestEdge::start().await;
    edge.install_wat("echo", ECHO);
    let resp = edge
        .client
        .post(format!("{}/fn/echo", edge.url))
        .body("just text, no headers")
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (502, "bad_response"));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_input_is_refused_with_413_for_both_kinds() {
    let edge = TestEdge::start_with(|c| c.max_input = 1024).await;
    edge.install("http_hello", &aether_fixtures::http_hello_wasm());
    edge.install("cgi_hello", &aether_fixtures::cgi_hello_wasm());
    for name in ["http_hello", "cgi_hello"] {
        let resp = edge
            .client
            .post(format!("{}/fn/{name}", edge.url))
            .body(vec![b'x'; 4096])
            .send()
            .await
            .unwrap();
        let (status, code) = error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (413, "payload_too_large"),
            "{name}"
        );
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_function_on_fn_is_a_404() {
    let edge = TestEdge::start().await;
    let resp = edge
        .client
        .get(format!("{}/fn/nope/x", edge.url))
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (404, "function_not_found"));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_domain_the_host_names_the_function_and_it_sees_the_whole_path() {
    let edge = TestEdge::start_with(|c| c.http_domain = Some("fn.example.com".into())).await;
    edge.install("http_hello", &aether_fixtures::http_hello_wasm());
    // Even /execute is the function's path under its own host.
    let resp = edge
        .client
        .post(format!("{}/execute?a=b", edge.url))
        .header("host", "http_hello.fn.example.com")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["path"], "/execute");
    assert_eq!(body["query"], "a=b");
    // Other hosts reach the edge's own routes.
    let (status, _) = edge
        .execute(json!({"function": "http_hello", "input": {}}))
        .await;
    assert_eq!(status, 400);
    edge.stop().await;
}
