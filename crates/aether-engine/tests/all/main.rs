//! End-to-end tests of the edge server: a real server on 127.0.0.1:0 driven
//! over HTTP, real wasm (WAT fixtures and the hello_world example).

mod errors;
mod execute;
mod lifecycle;
mod logs;
mod metrics;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aether_engine::{AppState, EngineConfig};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub use aether_fixtures::{ECHO, LOOP, hello_world_wasm};

/// A running edge with its own directories.
pub struct TestEdge {
    /// Base URL, `http://127.0.0.1:port`.
    pub url: String,
    /// Its function directory.
    pub func_dir: PathBuf,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The server's state, to look inside (cache counters).
    pub state: AppState,
    _dirs: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// An HTTP client.
    pub client: reqwest::Client,
}

impl TestEdge {
    /// Starts an edge with default settings (fast rescans).
    pub async fn start() -> TestEdge {
        Self::start_with(|_| {}).await
    }

    /// Starts an edge after letting the test adjust its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut EngineConfig)) -> TestEdge {
        let dirs = TempDir::new().unwrap();
        let mut edge = Self::start_in(dirs.path(), adjust).await;
        edge._dirs = Some(dirs);
        edge
    }

    /// Starts an edge over existing directories under `root` (for restarts).
    pub async fn start_in(root: &Path, adjust: impl FnOnce(&mut EngineConfig)) -> TestEdge {
        let mut config = EngineConfig {
            port: 0,
            func_dir: root.join("functions"),
            data_dir: root.join("data"),
            scan_interval: Duration::from_millis(100),
            ..EngineConfig::default()
        };
        adjust(&mut config);
        let state = AppState::new(config.clone()).expect("edge starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(aether_engine::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let edge = TestEdge {
            url,
            func_dir: config.func_dir,
            data_dir: config.data_dir,
            state,
            _dirs: None,
            shutdown: Some(tx),
            task: Some(task),
            client: reqwest::Client::new(),
        };
        // Serving starts after the start-up scan of func_dir: a test that
        // installs a function after this never races that scan.
        assert_eq!(edge.get("/health").await.status(), 200);
        edge
    }

    /// Installs `wasm` as `<func_dir>/<name>.wasm`.
    pub fn install(&self, name: &str, wasm: &[u8]) {
        // Written aside and renamed, as an operator (or the distribution
        // code) would, so a scan never sees half a file.
        let tmp = self.func_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, wasm).unwrap();
        std::fs::rename(&tmp, self.func_dir.join(format!("{name}.wasm"))).unwrap();
    }

    /// Installs a WAT fixture.
    pub fn install_wat(&self, name: &str, wat: &str) {
        self.install(name, &wat::parse_str(wat).unwrap());
    }

    /// POSTs a JSON body to /execute; returns status and parsed body.
    pub async fn execute(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post(format!("{}/execute", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("every answer is JSON"))
    }

    /// POSTs a JSON body to /execute with an `x-request-id` header.
    pub async fn execute_with_id(&self, body: serde_json::Value, id: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/execute", self.url))
            .header("x-request-id", id)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GETs `path` (e.g. `/metrics`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).ok();
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    /// Asks for a graceful stop without waiting.
    pub fn begin_stop(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        self.shutdown.take().unwrap().send(()).ok();
        self.task.take().unwrap()
    }
}
