//! Harness of Aether's hostile-input and fault suite: real edges and
//! control planes on `127.0.0.1:0` over temporary directories, WAT fixtures,
//! raw TCP clients for misbehaving HTTP, and process measurements (RSS, open
//! file descriptors). Used by `tests/all` and by the `soak` binary.

pub mod fixtures;
pub mod proc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use aether_control::config::Secret;

/// Admin token of control planes started with tokens.
pub const ADMIN: &str = "hostile-admin-token";
/// Node token of control planes started with tokens.
pub const NODE: &str = "hostile-node-token";

/// A running edge (`aether-engine`) with its own directories and an `echo`
/// function installed.
pub struct Edge {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Its function directory.
    pub func_dir: PathBuf,
    /// Its state, to look inside (executor, runtime counters).
    pub state: aether_engine::AppState,
    /// A client with a generous timeout (a hung server fails the test
    /// instead of hanging it).
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// A client whose requests fail after `timeout` instead of hanging.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

impl Edge {
    /// An edge with test-friendly settings (fast rescans).
    pub async fn start() -> Edge {
        Self::start_with(|_| {}).await
    }

    /// An edge after `adjust` changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut aether_engine::EngineConfig)) -> Edge {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = aether_engine::EngineConfig {
            port: 0,
            func_dir: dir.path().join("functions"),
            data_dir: dir.path().join("data"),
            scan_interval: Duration::from_millis(200),
            ..aether_engine::EngineConfig::default()
        };
        adjust(&mut config);
        let state = aether_engine::AppState::new(config.clone()).expect("edge starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(aether_engine::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let edge = Edge {
            url: format!("http://{addr}"),
            addr,
            func_dir: config.func_dir,
            state,
            client: client(Duration::from_secs(30)),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        };
        edge.install_wat("echo", fixtures::ECHO);
        edge
    }

    /// Installs `wasm` as `<func_dir>/<name>.wasm` (written aside, renamed).
    pub fn install(&self, name: &str, wasm: &[u8]) {
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
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("every answer is JSON"))
    }

    /// Runs `function` with no input; status and parsed body.
    pub async fn call(&self, function: &str) -> (u16, Value) {
        self.execute(json!({ "function": function })).await
    }

    /// `POST /execute` with raw bytes and an optional content type.
    pub async fn post_raw(&self, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}/execute", self.url)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("edge answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("every answer is JSON"))
    }

    /// Asserts that a normal request is answered correctly right now.
    pub async fn assert_serves(&self) {
        let tag = format!("alive {}", fastrand::u64(..));
        let (status, body) = self.execute(json!({"function":"echo","stdin": tag})).await;
        assert_eq!(status, 200, "a normal request failed: {body}");
        assert_eq!(body["output"], tag, "wrong answer to a normal request");
        assert_eq!(body["exit_code"], 0);
    }

    /// Stops gracefully and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(joined) => joined.expect("server task").expect("server ran"),
                Err(_) => panic!("the edge did not stop within 20 s"),
            }
        }
    }
}

/// A running control plane over a temporary (or given) directory.
pub struct Control {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Its state.
    pub state: aether_control::AppState,
    /// A client with a timeout.
    pub client: reqwest::Client,
    /// The admin token when tokens are on.
    pub admin: Option<String>,
    /// Where the database and blobs live.
    pub dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), aether_control::ServeError>>>,
    _dir: Option<tempfile::TempDir>,
}

/// A control-plane configuration over `dir` on 127.0.0.1:0, without tokens.
pub fn control_config(dir: &Path) -> aether_control::Config {
    aether_control::Config {
        host: "127.0.0.1".into(),
        port: 0,
        db_path: dir.join("control.db"),
        blob_dir: dir.join("blobs"),
        ..aether_control::Config::default()
    }
}

/// The same configuration with both tokens set.
pub fn with_tokens(mut config: aether_control::Config) -> aether_control::Config {
    config.admin_token = Secret::new(ADMIN);
    config.node_token = Secret::new(NODE);
    config
}

impl Control {
    /// A control plane in a fresh directory, configuration changed by `tweak`.
    pub async fn start_with(
        tweak: impl FnOnce(aether_control::Config) -> aether_control::Config,
    ) -> Control {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = tweak(control_config(dir.path()));
        let mut control = Self::start_config(config)
            .await
            .expect("control plane starts");
        control._dir = Some(dir);
        control
    }

    /// A control plane with exactly this configuration; the error is the
    /// one the binary would print at start.
    pub async fn start_config(
        config: aether_control::Config,
    ) -> Result<Control, aether_control::ServeError> {
        config.validate().expect("valid test config");
        let server = aether_control::Server::bind(&config).await?;
        let addr = server.local_addr()?;
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Ok(Control {
            url: format!("http://{addr}"),
            addr,
            state,
            client: client(Duration::from_secs(30)),
            admin: config.admin_token.as_ref().map(|_| ADMIN.to_owned()),
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

    /// A request with the admin token when tokens are on.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.at(path));
        match &self.admin {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// `POST /api/functions`; status and parsed body.
    pub async fn deploy(&self, name: &str, wasm: &[u8]) -> (u16, Value) {
        let resp = self
            .admin(reqwest::Method::POST, "/api/functions")
            .json(&json!({"name": name, "wasm_b64": b64(wasm)}))
            .send()
            .await
            .expect("control answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("every answer is JSON"))
    }

    /// Names in the manifest.
    pub async fn manifest_names(&self) -> Vec<String> {
        let resp = self
            .admin(reqwest::Method::GET, "/api/functions/manifest")
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
        let (status, body) = self.deploy(&name, &fixtures::command(&name)).await;
        assert_eq!(status, 201, "a normal deploy failed: {body}");
        assert!(
            self.manifest_names().await.contains(&name),
            "a normal deploy is not in the manifest"
        );
    }

    /// Stops gracefully and waits until the store is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(joined) => joined.expect("server task").expect("server ran"),
                Err(_) => panic!("the control plane did not stop within 20 s"),
            }
        }
    }
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Sends `bytes` on a new TCP connection and reads until the server closes
/// it or `limit` passes. Returns what was read and whether the server
/// closed the connection (false: still open at `limit`).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may close before reading everything (e.g. a header bomb).
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Opens a connection, sends `head` and then one byte of `trickle` every
/// `every`, until the server closes the connection or `limit` passes.
/// Returns how long the server kept it open (`None`: still open).
pub async fn trickle(
    addr: SocketAddr,
    head: &[u8],
    trickle: &[u8],
    every: Duration,
    limit: Duration,
) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let _ = write.write_all(head).await;
    let feeder = {
        let trickle = trickle.to_vec();
        tokio::spawn(async move {
            for byte in trickle.iter().cycle() {
                tokio::time::sleep(every).await;
                if write.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    feeder.abort();
    closed.then(|| started.elapsed())
}
