//! Real server binaries: the workspace's `aether-control` and
//! `aether-engine` (rebuilt when stale) or any binary given by path, on
//! free loopback ports, killed with SIGKILL, restarted on the same
//! directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::{ADMIN_TOKEN, NODE_TOKEN, deploy, execute, free_port};

/// The server binaries the harness runs.
const BINARIES: [&str; 2] = ["aether-engine", "aether-control"];

/// Directory holding the workspace's server binaries, built when missing
/// or older than their sources (a test never runs a stale binary).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("executable path");
        // target/<profile>/deps/<test> or target/<profile>/<bin> → target/<profile>
        let mut dir = exe.parent().expect("executable has a directory").to_owned();
        if dir.ends_with("deps") {
            dir.pop();
        }
        // `cargo test --workspace` (scripts/test.sh, CI) builds them fresh.
        // Building here only when missing or stale: a nested `cargo build`
        // of two packages resolves features differently from the workspace
        // and may rebuild wasmtime.
        if let Some(why) = stale(&dir) {
            eprintln!("aether-e2e: {why}; building the server binaries");
            let release = dir.ends_with("release");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "-p",
                "aether-engine",
                "-p",
                "aether-control",
                "--bins",
            ]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the server binaries failed");
            // Cargo does not relink a binary whose inputs did not change
            // (e.g. a Cargo.lock edit for another crate): after a
            // successful build its word counts, so only a missing binary
            // is an error here.
            for name in BINARIES {
                assert!(
                    dir.join(name).is_file(),
                    "{} is missing after building it",
                    dir.join(name).display()
                );
            }
        }
        dir
    })
}

/// The workspace crates the server binaries are built from.
const SOURCE_CRATES: [&str; 6] = [
    "aether-engine",
    "aether-control",
    "aether-runtime",
    "aether-http",
    "aether-proto",
    "aether-store",
];

/// Why the binaries in `dir` cannot be used as they are: one is missing,
/// or a source file they are built from ([`SOURCE_CRATES`]' `src` and
/// `Cargo.toml`, the workspace's `Cargo.toml` and `Cargo.lock`) changed
/// after it was built. `None` when they are fresh.
fn stale(dir: &Path) -> Option<String> {
    let newest_source = newest_source();
    for name in BINARIES {
        let path = dir.join(name);
        let built = match std::fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(_) => return Some(format!("{} is missing", path.display())),
        };
        if let Some((changed, source)) = &newest_source
            && changed > &built
        {
            return Some(format!(
                "{} is older than {}",
                path.display(),
                source.display()
            ));
        }
    }
    None
}

/// The most recently modified source file the server binaries are built
/// from, and when.
fn newest_source() -> Option<(std::time::SystemTime, PathBuf)> {
    let root = aether_fixtures::repo();
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut consider = |path: PathBuf| {
        if let Ok(t) = std::fs::metadata(&path).and_then(|m| m.modified())
            && newest.as_ref().is_none_or(|(n, _)| t > *n)
        {
            newest = Some((t, path));
        }
    };
    consider(root.join("Cargo.lock"));
    consider(root.join("Cargo.toml"));
    let mut pending: Vec<PathBuf> = Vec::new();
    for krate in SOURCE_CRATES {
        let krate = root.join("crates").join(krate);
        consider(krate.join("Cargo.toml"));
        pending.push(krate.join("src"));
    }
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                consider(path);
            }
        }
    }
    newest
}

/// A running server process.
pub struct Process {
    child: Option<Child>,
    /// Base URL.
    pub url: String,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl Process {
    /// Starts the binary at `bin` with `args`, its stdout and stderr
    /// appended to `log`, `RUST_LOG=info` and no `AETHER_*_TOKEN` from the
    /// test's environment unless `envs` sets them; returns once
    /// `http://127.0.0.1:{port}/health` answers (an error with the log when
    /// it does not within 20 s).
    pub async fn start(
        bin: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log: PathBuf,
        port: u16,
    ) -> anyhow::Result<Self> {
        let url = format!("http://127.0.0.1:{port}");
        Self::spawn(bin, args, envs, log, url, reqwest::Client::new()).await
    }

    /// [`Process::start`] for a server that speaks HTTPS (its `args` name
    /// its certificate) with a certificate issued by the CA in `ca` (PEM);
    /// its URL is `https://127.0.0.1:{port}`.
    pub async fn start_https(
        bin: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log: PathBuf,
        port: u16,
        ca: &Path,
    ) -> anyhow::Result<Self> {
        let url = format!("https://127.0.0.1:{port}");
        let client = aether_http::tls::client_builder(Some(ca))?.build()?;
        Self::spawn(bin, args, envs, log, url, client).await
    }

    async fn spawn(
        bin: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log: PathBuf,
        url: String,
        probe: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env_remove("AETHER_ADMIN_TOKEN")
            .env_remove("AETHER_NODE_TOKEN")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let process = Process {
            child: Some(child),
            url,
            log,
        };
        crate::wait_healthy_with(&process.url, &probe)
            .await
            .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", process.log_text()))?;
        Ok(process)
    }

    /// Sends SIGKILL and reaps the process; its exit status (`None` when
    /// it was already killed or cannot be reaped).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // Already exited is fine: the point is that it is gone.
        if let Err(e) = child.kill() {
            eprintln!("kill: {e}");
        }
        child.wait().inspect_err(|e| eprintln!("wait: {e}")).ok()
    }

    /// Sends SIGTERM (a graceful stop) and waits up to `bound` for the
    /// process to exit; its exit status, or an error naming what failed
    /// (it is SIGKILLed when it does not exit in time).
    pub fn terminate(&mut self, bound: Duration) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("already stopped")?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed: {sent}");
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("did not exit within {bound:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `GET /health` answers 2xx ([`crate::wait_healthy`]);
    /// the error carries the log.
    pub async fn wait_healthy(&self) -> anyhow::Result<()> {
        crate::wait_healthy(&self.url)
            .await
            .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", self.log_text()))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The flags every control-plane binary gets here: `port`, and its
/// database and blobs under `dir` (created).
pub fn control_args(dir: &Path, port: u16) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    Ok(vec![
        "--port".into(),
        port.to_string(),
        "--db".into(),
        dir.join("control.db").display().to_string(),
        "--func-dir".into(),
        dir.join("blobs").display().to_string(),
    ])
}

/// Starts a control plane over `dir` (db and blobs) on `port`.
pub async fn start_control(dir: &Path, port: u16, node_timeout: &str) -> anyhow::Result<Process> {
    let mut args = control_args(dir, port)?;
    args.extend(["--node-timeout".into(), node_timeout.into()]);
    let bin = bin_dir().join("aether-control");
    Process::start(
        &bin,
        &args,
        &control_tokens(),
        dir.join("control.log"),
        port,
    )
    .await
}

/// Starts a control-plane replica on the PostgreSQL database at
/// `database_url`, on `port`, its log under `dir` (created); `extra_args`
/// after the usual ones.
pub async fn start_replica(
    dir: &Path,
    port: u16,
    database_url: &str,
    node_timeout: &str,
) -> anyhow::Result<Process> {
    std::fs::create_dir_all(dir)?;
    let args = vec![
        "--port".into(),
        port.to_string(),
        "--node-timeout".into(),
        node_timeout.into(),
    ];
    let mut envs = control_tokens().to_vec();
    envs.push(("AETHER_DATABASE_URL", database_url.to_owned()));
    let bin = bin_dir().join("aether-control");
    Process::start(&bin, &args, &envs, dir.join("control.log"), port).await
}

/// The test tokens, as a control plane's environment.
fn control_tokens() -> [(&'static str, String); 2] {
    [
        ("AETHER_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("AETHER_NODE_TOKEN", NODE_TOKEN.to_owned()),
    ]
}

/// [`start_control`] serving HTTPS: `extra_args` name its certificate
/// (`--tls-cert`, `--tls-key`; `--ca-cert` for the edges it notifies), and
/// `ca` is the CA (PEM) that issued it.
pub async fn start_control_https(
    dir: &Path,
    port: u16,
    extra_args: &[String],
    ca: &Path,
) -> anyhow::Result<Process> {
    let mut args = control_args(dir, port)?;
    args.extend(extra_args.iter().cloned());
    let bin = bin_dir().join("aether-control");
    let log = dir.join("control.log");
    Process::start_https(&bin, &args, &control_tokens(), log, port, ca).await
}

/// Options of a test edge.
pub struct EdgeOptions<'a> {
    /// Node token to present.
    pub token: &'a str,
    /// Heartbeat timeout (heartbeats every third).
    pub node_timeout: &'a str,
    /// Periodic reconcile.
    pub reconcile_interval: &'a str,
    /// Advertised URL override (to make notifications fail on purpose).
    pub advertise_url: Option<String>,
    /// More flags (e.g. `--tls-cert`).
    pub extra_args: Vec<String>,
    /// The edge serves HTTPS with a certificate from this CA (PEM): its
    /// URL is `https://` and readiness is probed trusting it.
    pub https_ca: Option<PathBuf>,
}

impl EdgeOptions<'_> {
    /// Heartbeat timeout 30 s and periodic reconcile every 10 s: in a
    /// benchmark only notifications (and on-demand pulls) move a deploy.
    pub fn quiet() -> Self {
        EdgeOptions {
            node_timeout: "30s",
            reconcile_interval: "10s",
            ..EdgeOptions::default()
        }
    }
}

impl Default for EdgeOptions<'_> {
    fn default() -> Self {
        EdgeOptions {
            token: NODE_TOKEN,
            node_timeout: "2s",
            reconcile_interval: "1s",
            advertise_url: None,
            extra_args: Vec::new(),
            https_ca: None,
        }
    }
}

/// The flags every test edge gets: `port`, and `functions`/`data` under
/// `dir` (created).
fn edge_args(dir: &Path, port: u16) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    Ok(vec![
        "--port".into(),
        port.to_string(),
        "--func-dir".into(),
        dir.join("functions").display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ])
}

/// Starts an edge over `dir` on `port`, attached to `control_url`.
pub async fn start_edge(
    dir: &Path,
    port: u16,
    control_url: &str,
    opts: &EdgeOptions<'_>,
) -> anyhow::Result<Process> {
    let mut args = edge_args(dir, port)?;
    args.extend([
        "--control-url".into(),
        control_url.into(),
        "--node-timeout".into(),
        opts.node_timeout.into(),
        "--reconcile-interval".into(),
        opts.reconcile_interval.into(),
    ]);
    if let Some(url) = &opts.advertise_url {
        args.push("--advertise-url".into());
        args.push(url.clone());
    }
    args.extend(opts.extra_args.iter().cloned());
    let envs = [("AETHER_NODE_TOKEN", opts.token.to_owned())];
    let bin = bin_dir().join("aether-engine");
    let log = dir.join("edge.log");
    match &opts.https_ca {
        Some(ca) => Process::start_https(&bin, &args, &envs, log, port, ca).await,
        None => Process::start(&bin, &args, &envs, log, port).await,
    }
}

/// A control plane and `edges` edges attached to it, under `dir`. Heartbeat
/// timeout 30 s and periodic reconcile every 10 s, so only notifications
/// move a deploy quickly; returns after a pause that lets every edge
/// register (so notifications reach all of them).
pub async fn start_cluster(dir: &Path, edges: usize) -> anyhow::Result<(Process, Vec<Process>)> {
    let control = start_control(&dir.join("control"), free_port(), "30s").await?;
    let mut started = Vec::with_capacity(edges);
    for i in 0..edges {
        started.push(
            start_edge(
                &dir.join(format!("edge{i}")),
                free_port(),
                &control.url,
                &EdgeOptions::quiet(),
            )
            .await?,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok((control, started))
}

/// Deploys `wasm` as `function` and returns the time from the control
/// plane's acknowledgement until every edge answers `/execute` with
/// `expected` as output (polled every 2 ms; an error after `limit`).
pub async fn deploy_until_served(
    control_url: &str,
    edges: &[Process],
    function: &str,
    wasm: &[u8],
    expected: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    deploy(control_url, function, wasm).await?;
    let acked = Instant::now();
    for edge in edges {
        loop {
            let (status, body) = execute(&edge.url, json!({ "function": function })).await;
            if status == 200 && body["output"] == expected {
                break;
            }
            if acked.elapsed() > limit {
                bail!(
                    "{function} printing {expected:?} never reached {}",
                    edge.url
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok(acked.elapsed())
}

/// Starts an edge without a control plane, serving `<dir>/functions`.
pub async fn start_standalone_edge(dir: &Path, port: u16) -> anyhow::Result<Process> {
    start_standalone_edge_with(dir, port, &[]).await
}

/// [`start_standalone_edge`] with extra command-line flags (benchmarks).
pub async fn start_standalone_edge_with(
    dir: &Path,
    port: u16,
    extra_args: &[&str],
) -> anyhow::Result<Process> {
    start_standalone_edge_env(dir, port, extra_args, &[]).await
}

/// [`start_standalone_edge_with`] with extra environment variables (e.g.
/// `RUST_LOG`, `info` unless given).
pub async fn start_standalone_edge_env(
    dir: &Path,
    port: u16,
    extra_args: &[&str],
    envs: &[(&str, String)],
) -> anyhow::Result<Process> {
    let mut args = edge_args(dir, port)?;
    args.push("--standalone".into());
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    let bin = bin_dir().join("aether-engine");
    Process::start(&bin, &args, envs, dir.join("edge.log"), port).await
}
