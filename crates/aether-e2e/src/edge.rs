//! An edge (`aether-engine`) in this process on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aether_engine::{AppState, EngineConfig};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`TestEdge::stop`] and [`crate::TestControl::stop`] wait for the
/// server to finish.
pub(crate) const STOP_LIMIT: Duration = Duration::from_secs(20);

/// Timeout of the servers' clients: a hung server fails the test instead
/// of hanging it.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A running edge with its own directories: `functions` and `data` under
/// a temporary directory (or the root given to [`TestEdge::start_in`]).
pub struct TestEdge {
    /// Base URL, `http://127.0.0.1:port`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Its function directory.
    pub func_dir: PathBuf,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The server's state, to look inside (registry, executor, runtime
    /// counters).
    pub state: AppState,
    /// An HTTP client with a 30 s timeout.
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<TempDir>,
}

impl TestEdge {
    /// Starts an edge with default settings (rescans every 100 ms) in a
    /// fresh temporary directory.
    pub async fn start() -> TestEdge {
        Self::start_with(|_| {}).await
    }

    /// [`TestEdge::start`] after letting the test adjust its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut EngineConfig)) -> TestEdge {
        let dir = TempDir::new().expect("temp dir");
        let mut edge = Self::start_in(dir.path(), adjust).await;
        edge._dir = Some(dir);
        edge
    }

    /// Starts an edge over the directories under `root`, existing or not
    /// (for restarts); `root` outlives it.
    pub async fn start_in(root: &Path, adjust: impl FnOnce(&mut EngineConfig)) -> TestEdge {
        let mut config = EngineConfig {
            port: 0,
            func_dir: root.join("functions"),
            data_dir: root.join("data"),
            scan_interval: Duration::from_millis(100),
            control_url: None,
            ..EngineConfig::default()
        };
        adjust(&mut config);
        let state = AppState::new(config.clone()).expect("edge starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(aether_engine::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let edge = TestEdge {
            url: format!("http://{addr}"),
            addr,
            func_dir: config.func_dir,
            data_dir: config.data_dir,
            state,
            client: crate::client_with_timeout(CLIENT_TIMEOUT),
            shutdown: Some(tx),
            task: Some(task),
            _dir: None,
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
        std::fs::write(&tmp, wasm).expect("write module");
        std::fs::rename(&tmp, self.func_dir.join(format!("{name}.wasm"))).expect("rename module");
    }

    /// Installs a WAT fixture.
    pub fn install_wat(&self, name: &str, wat: &str) {
        self.install(name, &wat::parse_str(wat).expect("fixture is valid WAT"));
    }

    /// `POST /execute` with a JSON body; status and parsed body.
    pub async fn execute(&self, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/execute", self.url))
            .json(&body)
            .send()
            .await
            .expect("edge answers");
        answer(resp).await
    }

    /// Runs `function` with no input; status and parsed body.
    pub async fn call(&self, function: &str) -> (u16, Value) {
        self.execute(json!({ "function": function })).await
    }

    /// `POST /execute` with a JSON body and an `x-request-id` header.
    pub async fn execute_with_id(&self, body: Value, id: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/execute", self.url))
            .header("x-request-id", id)
            .json(&body)
            .send()
            .await
            .expect("edge answers")
    }

    /// `POST /execute` with raw bytes and an optional content type; status
    /// and parsed body.
    pub async fn post_raw(&self, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}/execute", self.url)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        answer(req.send().await.expect("edge answers")).await
    }

    /// `GET path` (e.g. `/metrics`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("edge answers")
    }

    /// Asserts that a normal request to `echo` (which the test installed,
    /// [`aether_fixtures::ECHO`]) is answered correctly right now.
    pub async fn assert_serves(&self) {
        let tag = format!("alive {}", fastrand::u64(..));
        let (status, body) = self.execute(json!({"function":"echo","stdin": tag})).await;
        assert_eq!(status, 200, "a normal request failed: {body}");
        assert_eq!(body["output"], tag, "wrong answer to a normal request");
        assert_eq!(body["exit_code"], 0);
    }

    /// Stops gracefully and waits for the server (at most 20 s).
    pub async fn stop(mut self) {
        let task = self.begin_stop();
        match tokio::time::timeout(STOP_LIMIT, task).await {
            Ok(joined) => joined.expect("server task").expect("server ran"),
            Err(_) => panic!("the edge did not stop within {STOP_LIMIT:?}"),
        }
    }

    /// Asks for a graceful stop without waiting; the server's task.
    pub fn begin_stop(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("the edge is running")
    }
}

/// Status and JSON body of an answer.
async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("every answer is JSON"))
}
