//! A control plane (`aether-control`) in this process on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aether_control::config::Secret;
use aether_control::{AppState, Config, ServeError, Server};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::edge::{CLIENT_TIMEOUT, STOP_LIMIT};
use crate::{ADMIN_TOKEN, NODE_TOKEN};

/// A control-plane configuration over `dir` (`control.db`, `blobs`) on
/// 127.0.0.1:0, without tokens.
pub fn control_config(dir: &Path) -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        db_path: dir.join("control.db"),
        blob_dir: dir.join("blobs"),
        ..Config::default()
    }
}

/// The same configuration with both tokens set ([`ADMIN_TOKEN`],
/// [`NODE_TOKEN`]).
pub fn with_tokens(mut config: Config) -> Config {
    config.admin_tokens = Secret::new(ADMIN_TOKEN).into_iter().collect();
    config.node_token = Secret::new(NODE_TOKEN);
    config
}

/// A running control plane over a temporary (or given) directory.
pub struct TestControl {
    /// Base URL, `http://127.0.0.1:port`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Its state.
    pub state: AppState,
    /// An HTTP client with a 30 s timeout.
    pub client: reqwest::Client,
    /// Its admin token when tokens are on.
    pub admin: Option<String>,
    /// Where the database and blobs live (the database's directory).
    pub dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: Option<TempDir>,
}

impl TestControl {
    /// Without tokens, in a fresh temporary directory.
    pub async fn start() -> TestControl {
        Self::start_with(|c| c).await
    }

    /// In a fresh temporary directory, with the configuration changed by
    /// `tweak` (e.g. [`with_tokens`]).
    pub async fn start_with(tweak: impl FnOnce(Config) -> Config) -> TestControl {
        let dir = TempDir::new().expect("temp dir");
        let mut control = Self::start_in(dir.path(), tweak).await;
        control._dir = Some(dir);
        control
    }

    /// Over the files in `dir`, existing or not (for restarts), with the
    /// configuration changed by `tweak`; `dir` outlives it.
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(Config) -> Config) -> TestControl {
        Self::start_config(tweak(control_config(dir)))
            .await
            .expect("control plane starts")
    }

    /// With exactly this configuration (the caller owns its directory); the
    /// error is the one the binary would print at start.
    pub async fn start_config(config: Config) -> Result<TestControl, ServeError> {
        config.validate().expect("valid test config");
        let server = Server::bind(&config).await?;
        let addr = server.local_addr()?;
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Ok(TestControl {
            url: format!("http://{addr}"),
            addr,
            state,
            client: crate::client_with_timeout(CLIENT_TIMEOUT),
            admin: config
                .admin_tokens
                .first()
                .map(|t| t.expose_str().to_owned()),
            dir: config
                .db_path
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: None,
        })
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET path` with the admin token when tokens are on, its body as
    /// JSON (any status).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.admin(Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// `POST path` with `body` as JSON and no token (what an edge without
    /// credentials sends, e.g. `/register` on a control plane without
    /// tokens).
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.at(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// A request with the admin token when tokens are on.
    pub fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.at(path));
        match &self.admin {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// `POST /api/functions` with the admin token when tokens are on;
    /// status and parsed body.
    pub async fn deploy(&self, name: &str, wasm: &[u8]) -> (u16, Value) {
        let resp = self.deploy_as(name, wasm, self.admin.as_deref()).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("every answer is JSON"))
    }

    /// `POST /api/functions` with `token` (none: no `Authorization`).
    pub async fn deploy_as(
        &self,
        name: &str,
        wasm: &[u8],
        token: Option<&str>,
    ) -> reqwest::Response {
        self.deploy_json(json!({"name": name, "wasm_b64": crate::b64(wasm)}), token)
            .await
    }

    /// `POST /api/functions` with a JSON body and `token`.
    pub async fn deploy_json(&self, body: Value, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(self.at("/api/functions")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("control answers")
    }

    /// Names in the manifest.
    pub async fn manifest_names(&self) -> Vec<String> {
        let resp = self
            .admin(Method::GET, "/api/functions/manifest")
            .send()
            .await
            .expect("control answers");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("manifest is JSON");
        body["functions"]
            .as_array()
            .expect("functions array")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Asserts that a normal deploy is accepted and listed right now.
    pub async fn assert_serves(&self) {
        let name = format!("alive-{}", fastrand::u32(..));
        let (status, body) = self.deploy(&name, &crate::command(&name)).await;
        assert_eq!(status, 201, "a normal deploy failed: {body}");
        assert!(
            self.manifest_names().await.contains(&name),
            "a normal deploy is not in the manifest"
        );
    }

    /// Stops gracefully and waits (at most 20 s) until the store is closed.
    pub async fn stop(mut self) {
        // Closes this client's idle connections before the server stops.
        drop(self.client);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("the control plane is running");
        match tokio::time::timeout(STOP_LIMIT, task).await {
            Ok(joined) => joined.expect("server task").expect("server ran"),
            Err(_) => panic!("the control plane did not stop within {STOP_LIMIT:?}"),
        }
    }
}
