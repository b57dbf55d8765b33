//! The one harness tests use to start servers: in-process on
//! `127.0.0.1:0`, or as real binaries.
//!
//! - In-process, from the libraries, over temporary (or given) directories:
//!   an edge ([`TestEdge`]), a control plane ([`TestControl`]), and a
//!   control plane with an edge registered to it ([`TestStack`]). Each
//!   starts with test-friendly defaults, with a closure adjusting its
//!   configuration, or over existing directories (restarts), and stops
//!   gracefully.
//! - Real binaries ([`Process`]): the workspace's `aether-control` and
//!   `aether-engine` on free loopback ports ([`start_control`],
//!   [`start_edge`], [`start_cluster`], ...), rebuilt when stale
//!   ([`bin_dir`]), killed with SIGKILL, restarted on the same directories;
//!   or any server binary given by path ([`Process::start`]).
//! - Plain HTTP helpers for either ([`deploy`], [`execute`], [`admin`],
//!   [`eventually`], [`wait_healthy`]) and the fixtures they need.

pub mod control;
pub mod edge;
pub mod process;
pub mod stack;

use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine as _;
use serde_json::{Value, json};

pub use aether_fixtures::{free_port, hello_world_wasm};
pub use control::{TestControl, control_config, with_tokens};
pub use edge::TestEdge;
pub use process::{
    EdgeOptions, Process, bin_dir, control_args, deploy_until_served, start_cluster, start_control,
    start_control_https, start_edge, start_replica, start_standalone_edge,
    start_standalone_edge_env, start_standalone_edge_with,
};
pub use stack::TestStack;

/// Admin token of the test control planes (in-process with tokens on, and
/// the real binaries).
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Node token of the test control planes and edges.
pub const NODE_TOKEN: &str = "test-node-token";

/// An HTTP client for the tests (10 s timeout).
pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(10))
}

/// An HTTP client whose requests fail after `timeout` instead of hanging.
pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// Polls `GET {url}/health` every 20 ms until it answers 2xx; an error
/// after 20 s.
pub async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    wait_healthy_with(url, &reqwest::Client::new()).await
}

/// [`wait_healthy`] through `client` (e.g. one that trusts a test CA).
pub async fn wait_healthy_with(url: &str, client: &reqwest::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{url}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{url} did not become healthy")
}

/// Deploys `wasm` as `name` (admin token); returns the answer body.
pub async fn deploy(control: &str, name: &str, wasm: &[u8]) -> anyhow::Result<Value> {
    let resp = client()
        .post(format!("{control}/api/functions"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": name, "wasm_b64": b64(wasm)}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        bail!("deploy failed: {status} {body}");
    }
    Ok(body)
}

/// Calls an admin endpoint and returns its JSON.
pub async fn admin(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = client().request(method, url).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// `POST /execute`; returns status and body (`Value::Null` if unreachable).
pub async fn execute(edge: &str, body: Value) -> (u16, Value) {
    match client()
        .post(format!("{edge}/execute"))
        .json(&body)
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes;
/// returns the time it took.
pub async fn eventually<F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// Standard base64, as `wasm_b64` in a deploy body.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The error code of a JSON error body (`{"error": {"code": ...}}`).
///
/// # Panics
///
/// When `body` has none.
pub fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// A minimal WASI command module whose bytes depend on `tag`.
pub fn command(tag: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory 1) (data (i32.const 0) "{tag}") (func (export "_start")))"#
    ))
    .expect("valid wat")
}

/// A command module that copies stdin to stdout (version 2 in tests).
pub fn echo_wasm() -> Vec<u8> {
    wat::parse_str(aether_fixtures::ECHO).expect("valid WAT")
}
