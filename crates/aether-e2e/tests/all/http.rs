//! HTTP functions through the whole system: a `wasi:http` component
//! deployed through the control plane answers on every edge's `/fn`, and
//! answers exactly what `wasmtime serve` answers for the same component.

use std::process::{Command, Stdio};
use std::time::Duration;

use aether_e2e::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Status, content type and body of one answer.
async fn answer(resp: reqwest::Response) -> (u16, Option<String>, Vec<u8>) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

async fn call(base: &str) -> (u16, Option<String>, Vec<u8>) {
    answer(
        client()
            .post(format!("{base}/some/path?x=1&y=2"))
            .header("x-demo", "hi")
            .body("the body")
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// `wasmtime serve`, killed on drop.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_deployed_through_the_control_plane_answers_on_fn_like_wasmtime_serve()
-> anyhow::Result<()> {
    let component = aether_fixtures::http_hello_wasm();
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "5s").await?;
    let mut edges = Vec::new();
    for i in 0..2 {
        edges.push(
            start_edge(
                &root.path().join(format!("edge{i}")),
                free_port(),
                &control.url,
                &EdgeOptions::default(),
            )
            .await?,
        );
    }
    let deployed = deploy(&control.url, "http_hello", &component).await?;
    assert_eq!(deployed["kind"], "http", "{deployed}");
    let (_, manifest) = admin(
        Method::GET,
        format!("{}/api/functions/manifest", control.url),
        None,
    )
    .await?;
    assert_eq!(manifest["functions"][0]["kind"], "http", "{manifest}");

    let mut answers = Vec::new();
    for edge in &edges {
        let base = format!("{}/fn/http_hello", edge.url);
        eventually(
            Duration::from_secs(10),
            "the component on an edge",
            || async { call(&base).await.0 == 200 },
        )
        .await?;
        let got = call(&base).await;
        let body: Value = serde_json::from_slice(&got.2)?;
        assert_eq!(
            body,
            json!({"method": "POST", "path": "/some/path", "query": "x=1&y=2",
                   "header": "hi", "body": "the body"})
        );
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);

    // The same component on `wasmtime serve` (bench/run.sh installs it
    // into bench/.tools), when present: the same status, content type and
    // body, byte for byte.
    let wasmtime = aether_fixtures::repo().join("bench/.tools/bin/wasmtime");
    if wasmtime.exists() {
        let file = root.path().join("http_hello.wasm");
        std::fs::write(&file, &component)?;
        let port = free_port();
        let _serve = Serve(
            Command::new(&wasmtime)
                .args([
                    "serve",
                    "--addr",
                    &format!("127.0.0.1:{port}"),
                    "-S",
                    "cli=y",
                ])
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let base = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(30), "wasmtime serve", || async {
            client().get(&base).send().await.is_ok()
        })
        .await?;
        assert_eq!(call(&base).await, answers[0]);
        println!("byte for byte as wasmtime serve ({})", wasmtime.display());
    } else {
        println!(
            "wasmtime serve not compared: {} is missing (bench/run.sh installs it)",
            wasmtime.display()
        );
    }
    Ok(())
}
