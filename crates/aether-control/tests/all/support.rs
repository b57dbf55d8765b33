//! Helpers: a control plane on 127.0.0.1:0 over a temporary directory, wasm
//! fixtures, error-body assertions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aether_control::{AppState, Config, Server, config::Secret};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN: &str = "admin-secret-token";
pub const NODE: &str = "node-secret-token";

/// A running control plane.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// A configuration over `dir` listening on 127.0.0.1:0.
pub fn config_in(dir: &Path) -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        db_path: dir.join("control.db"),
        blob_dir: dir.join("blobs"),
        ..Config::default()
    }
}

/// The same with both tokens set.
pub fn with_tokens(mut config: Config) -> Config {
    config.admin_token = Secret::new(ADMIN);
    config.node_token = Secret::new(NODE);
    config
}

impl TestServer {
    /// Without auth, in a fresh temporary directory.
    pub async fn start() -> Self {
        Self::start_with(|c| c).await
    }

    /// In a fresh temporary directory, with the configuration changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(Config) -> Config) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut server = Self::start_config(tweak(config_in(dir.path()))).await;
        server._dir = Some(dir);
        server
    }

    /// With exactly this configuration (the caller owns the directory).
    pub async fn start_config(config: Config) -> Self {
        config.validate().expect("valid test config");
        let server = Server::bind(&config).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .expect("server ran");
        });
        TestServer {
            url: format!("http://{addr}"),
            state,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: None,
        }
    }

    /// Stops gracefully and waits until the store is closed.
    pub async fn stop(mut self) {
        drop(self.client);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task");
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `POST /api/functions` with a JSON body, optional bearer token.
    pub async fn deploy(&self, name: &str, wasm: &[u8], token: Option<&str>) -> reqwest::Response {
        self.deploy_json(
            serde_json::json!({"name": name, "wasm_b64": b64(wasm)}),
            token,
        )
        .await
    }

    pub async fn deploy_json(&self, body: Value, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(self.at("/api/functions")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A minimal WASI command module whose bytes depend on `tag`.
pub fn command(tag: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory 1) (data (i32.const 0) "{tag}") (func (export "_start")))"#
    ))
    .expect("valid wat")
}

/// A reactor module: valid wasm, no `_start`.
pub fn reactor() -> Vec<u8> {
    wat::parse_str(r#"(module (func (export "_initialize")))"#).expect("valid wat")
}

/// Asserts the status and the documented error body; returns the message.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> String {
    let actual = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(
        actual,
        StatusCode::from_u16(status).unwrap(),
        "body: {text}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["error"]["code"], code, "{text}");
    let message = body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(!message.is_empty());
    assert_eq!(body.as_object().unwrap().len(), 1, "{text}");
    message
}

pub use aether_fixtures::free_port;

/// Path of the real binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aether-control"))
}

/// Polls `/health` until it answers.
pub async fn wait_healthy(client: &reqwest::Client, url: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Ok(r) = client.get(format!("{url}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never became healthy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
