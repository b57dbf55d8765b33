//! End-to-end tests of the `aether` binary against real servers: a control
//! plane (with tokens) and an edge connected to it, both started in-process
//! on 127.0.0.1:0 from the libraries, and the real CLI binary run as a child
//! process for every command.

mod call;
mod deploy;
mod errors;
mod examples;
mod failover;
mod functions;
mod invoke;
mod new;
mod observe;
mod packaging;
mod tls;
mod up;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aether_e2e::TestStack;
use tempfile::TempDir;

pub use aether_e2e::{ADMIN_TOKEN as ADMIN, NODE_TOKEN as NODE};
pub use aether_fixtures::{example_wasm, hello_world, repo};

/// A WAT module compiled to wasm in `dir`; returns the file.
pub fn wat_file(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).expect("valid wat")).expect("write wasm");
    path
}

/// aether-e2e's [`TestStack`] (a control plane with tokens and an edge
/// registered with it, under `dir`) on a runtime of its own, for tests
/// that run the CLI binary synchronously.
pub struct Stack {
    /// Control plane base URL.
    pub control_url: String,
    /// Edge base URL.
    pub edge_url: String,
    /// Scratch space of the test (also the CLI's HOME).
    pub dir: TempDir,
    servers: TestStack,
    rt: Option<tokio::runtime::Runtime>,
}

impl Stack {
    /// Starts both servers and waits until the edge has registered.
    pub fn start() -> Stack {
        // Server logs (warnings by default, `RUST_LOG` for more), captured
        // per test and shown when it fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let dir = TempDir::new().expect("temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let servers = rt.block_on(TestStack::start_in(dir.path(), |c| c.max_concurrency = 4));
        Stack {
            control_url: servers.control.url.clone(),
            edge_url: servers.edge.url.clone(),
            dir,
            servers,
            rt: Some(rt),
        }
    }

    /// `aether ARGS...` with this stack's URLs and admin token in the
    /// environment, and no user configuration.
    pub fn aether(&self) -> Aether {
        Aether::new(self.dir.path())
            .env("AETHER_CONTROL_URL", &self.control_url)
            .env("AETHER_EDGE_URL", &self.edge_url)
            .env("AETHER_TOKEN", ADMIN)
    }

    /// Waits until the edge holds `name` ([`TestStack::wait_on_edge`]).
    pub fn wait_on_edge(&self, name: &str) {
        self.block_on(self.servers.wait_on_edge(name));
    }

    /// `aether deploy PATH` (must succeed), then waits for the edge.
    pub fn deploy(&self, path: &Path, name: &str) {
        self.aether()
            .run([
                "deploy".as_ref(),
                path.as_os_str(),
                "--name".as_ref(),
                name.as_ref(),
            ])
            .ok();
        self.wait_on_edge(name);
    }

    /// Runs a future on the servers' runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("running").block_on(f)
    }

    /// `POST path` on the control plane with the stack's edge's own
    /// credential (what that edge sends); returns the status.
    pub fn post_node(&self, path: &str, body: serde_json::Value) -> u16 {
        let control = &self.servers.control;
        // The edge is listed once it joined, a moment before it saved its
        // credential (written whole, by rename): wait for the file.
        let file = self
            .servers
            .edge
            .data_dir
            .join(aether_engine::identity::FILE);
        self.wait_for(|_| file.exists());
        let kept = std::fs::read(&file).expect("the edge has joined");
        let kept: serde_json::Value = serde_json::from_slice(&kept).expect("credential file");
        let credential = kept["credential"]
            .as_str()
            .expect("a credential")
            .to_owned();
        self.block_on(async {
            let r = control
                .client
                .post(control.at(path))
                .bearer_auth(credential)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        })
    }

    /// Polls `ready` every 20 ms for up to 10 s.
    pub fn wait_for(&self, ready: impl Fn(&Stack) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ready(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not reached in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A command line for the `aether` binary.
pub struct Aether {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Aether {
    /// `aether` with every `AETHER_*` variable of the test's environment
    /// removed and `home` as its HOME (so no user config file is read).
    pub fn new(home: &Path) -> Aether {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aether"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AETHER_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("RUST_LOG", "warn")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS");
        Aether { cmd, stdin: None }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Aether {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Aether {
        self.cmd.env_remove(key);
        self
    }

    /// Feeds `data` to standard input.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Aether {
        self.stdin = Some(data.into());
        self
    }

    /// Runs with these arguments.
    pub fn run<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        let shown = format!("{:?}", self.cmd);
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("aether runs");
        if let Some(data) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(&data).expect("write stdin");
        }
        let output = child.wait_with_output().expect("aether finishes");
        Run { output, shown }
    }
}

/// A finished `aether` run.
pub struct Run {
    /// Status and captured streams.
    pub output: Output,
    shown: String,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code.
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Asserts success; returns stdout.
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code(),
            Some(0),
            "{} failed\nstdout: {}\nstderr: {}",
            self.shown,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: stdout is not JSON: {out}"))
    }

    /// Asserts exit code `code` and a single `error: ...` line on stderr;
    /// returns that line.
    pub fn fails(&self, code: i32) -> String {
        let stderr = self.stderr();
        assert_eq!(
            self.code(),
            Some(code),
            "{}\nstdout: {}\nstderr: {stderr}",
            self.shown,
            self.stdout()
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
        assert!(
            stderr.trim_end().ends_with(lines[0]),
            "the error is the last line: {stderr}"
        );
        lines[0].to_owned()
    }
}
