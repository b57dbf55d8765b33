//! Test fixtures shared by the workspace's test suites: small WAT guests
//! (turned into wasm by each suite with the `wat` crate) and the example
//! functions of `examples/`, built for `wasm32-wasip1` (preview-1 command
//! modules) or `wasm32-wasip2` (components: `examples/http_hello`, and
//! `examples/hello_world` as a preview-2 command), and the hostile guests
//! of `guests/` (`guests/http_hostile`, a misbehaving `wasi:http`
//! component). No dependencies
//! (so the lowest crates, `aether-runtime`, can use it too) except for the
//! optional `prometheus` feature. With the `postgres` feature,
//! `postgres` starts throwaway PostgreSQL servers (no dependency: it runs
//! PostgreSQL's own programs).

#[cfg(feature = "pki")]
pub mod pki;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "prometheus")]
pub mod prometheus;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Copies stdin to stdout in 4 KiB reads.
pub const ECHO: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i32)
    (block $done
      (loop $again
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
        (local.set $n (i32.load (i32.const 16)))
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store (i32.const 4) (local.get $n))
        (br_if $done (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
        (br $again)))))
"#;

/// Never returns: loops until the time limit stops it.
pub const LOOP: &str = r#"(module (func (export "_start") (loop (br 0))))"#;

/// A command module that writes `text` to stdout: distinct text, distinct
/// module (deploy-to-ready and cache benchmarks). `text` goes into a WAT
/// string literal, so it must not hold `"` or `\`.
pub fn print_wat(text: &str) -> String {
    assert!(
        !text.contains(['"', '\\']),
        "print_wat: {text:?} must not hold quotes or backslashes"
    );
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{text}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
        len = text.len()
    )
}

/// CPU time (user + system, all threads) the process `pid` has used, from
/// `/proc/<pid>/stat` (Linux). Benchmarks divide it by the requests served:
/// unlike throughput it does not move when other processes take the CPUs.
pub fn cpu_time(pid: u32) -> std::io::Result<std::time::Duration> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may
    // contain spaces: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad("no command name in /proc stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> std::io::Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("short /proc stat line"))
    };
    static TICKS_PER_SECOND: OnceLock<u64> = OnceLock::new();
    let per_second = *TICKS_PER_SECOND.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    });
    let total = ticks(14)? + ticks(15)?;
    Ok(std::time::Duration::from_secs_f64(
        total as f64 / per_second as f64,
    ))
}

/// For a test whose scenario this machine cannot run (a tool or a
/// permission is missing): call it with the reason, then `return`. Under
/// CI (the `CI` environment variable set and not empty, as CI services and
/// `.ci/run` set it) it panics with `reason`, so the test fails instead of
/// passing without having run; elsewhere it writes a `SKIPPED` line
/// straight to stderr, which the test harness does not capture, so it
/// shows in the `cargo test` output.
#[track_caller]
pub fn skip_or_fail(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(
        !under_ci(),
        "{test} cannot run here, and under CI (CI is set) it may not skip: {reason}"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (with CI set, this fails)"
    );
}

/// Whether the `CI` environment variable is set and not empty.
fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A free TCP port on 127.0.0.1 (bound and released; a rare race with
/// another process taking it is possible).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One cargo at a time for every example build: parallel tests would only
/// wait on its locks.
static CARGO: Mutex<()> = Mutex::new(());

/// Runs `cargo build --release --target <target>` for `manifest` into
/// `target_dir`, with `extra` arguments (e.g. `-p NAME`), holding [`CARGO`];
/// panics with `what` when it fails.
fn cargo_build(manifest: &Path, target: &str, target_dir: &Path, extra: &[&str], what: &str) {
    let _guard = CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release"])
        .args(extra)
        .args(["--target", target, "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building {what} for {target} failed (is the target installed? `rustup target add {target}`)"
    );
}

/// Builds `examples/<package>` for wasm32-wasip1 (release) in the examples'
/// own target directory and returns the module's path.
pub fn example_wasm(package: &str) -> PathBuf {
    let examples = repo().join("examples");
    cargo_build(
        &examples.join("Cargo.toml"),
        "wasm32-wasip1",
        &examples.join("target"),
        &["-p", package],
        &format!("examples/{package}"),
    );
    examples.join(format!("target/wasm32-wasip1/release/{package}.wasm"))
}

/// Builds `examples/<package>`, a standalone workspace making a component
/// (a `cdylib` such as `examples/http_hello`), for wasm32-wasip2 (release)
/// in its own target directory, `examples/<package>/target`, and returns
/// the component's path.
pub fn example_component(package: &str) -> PathBuf {
    component_at(&repo().join("examples").join(package), package)
}

/// Builds the standalone workspace in `dir` whose package `package` makes
/// a component (a `cdylib`), for wasm32-wasip2 (release) in its own target
/// directory, `<dir>/target`, and returns the component's path.
pub fn component_at(dir: &Path, package: &str) -> PathBuf {
    let target_dir = dir.join("target");
    let what = dir
        .strip_prefix(repo())
        .unwrap_or(dir)
        .display()
        .to_string();
    cargo_build(
        &dir.join("Cargo.toml"),
        "wasm32-wasip2",
        &target_dir,
        &[],
        &what,
    );
    // A library's file is named after the crate, `-` written `_`.
    let file = format!("{}.wasm", package.replace('-', "_"));
    target_dir.join("wasm32-wasip2/release").join(file)
}

/// `examples/hello_world`, built once per test run; its path.
pub fn hello_world() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| example_wasm("hello_world"))
}

/// `examples/hello_world`'s bytes (built once per test run).
pub fn hello_world_wasm() -> Vec<u8> {
    std::fs::read(hello_world()).expect("hello_world.wasm exists once built")
}

/// `examples/hello_world` built for wasm32-wasip2: the same program as a
/// preview-2 *command component* (`wasi:cli/run`), built once per test
/// run in `examples/target/wasip2` (not to rebuild the wasm32-wasip1
/// build's files); its bytes.
pub fn hello_world_p2_wasm() -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let path = BUILT.get_or_init(|| {
        let examples = repo().join("examples");
        let target_dir = examples.join("target/wasip2");
        cargo_build(
            &examples.join("Cargo.toml"),
            "wasm32-wasip2",
            &target_dir,
            &["-p", "hello_world"],
            "examples/hello_world",
        );
        target_dir.join("wasm32-wasip2/release/hello_world.wasm")
    });
    std::fs::read(path).expect("hello_world.wasm (wasip2) exists once built")
}

/// `examples/http_hello`, a `wasi:http/proxy` component that answers a
/// JSON echo of the request (built once per test run); its bytes.
pub fn http_hello_wasm() -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let path = BUILT.get_or_init(|| example_component("http_hello"));
    std::fs::read(path).expect("http_hello.wasm exists once built")
}

/// `crates/aether-fixtures/guests/http_hostile`, a `wasi:http/proxy`
/// component that misbehaves as its request path says (`/never`,
/// `/spin`, `/sleep`, `/endless`, `/bad-headers`, `/slow-read`,
/// `/outbound?url=…`, `/grow`, `/grow-first`; anything else answers 200
/// `alive`), for the hostile suite (built once per test run); its bytes.
pub fn http_hostile_wasm() -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let path = BUILT.get_or_init(|| {
        component_at(
            &repo().join("crates/aether-fixtures/guests/http_hostile"),
            "http_hostile",
        )
    });
    std::fs::read(path).expect("http_hostile.wasm exists once built")
}

/// `examples/cgi_hello`, a preview-1 command written as a CGI program
/// (built once per test run); its bytes.
pub fn cgi_hello_wasm() -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let path = BUILT.get_or_init(|| example_wasm("cgi_hello"));
    std::fs::read(path).expect("cgi_hello.wasm exists once built")
}

/// The first 8 bytes of a component: `\0asm`, then version 0x0d and layer
/// 1 (a core module has version 1, layer 0).
pub const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\0\x01\0";

/// Whether `wasm` starts like a component (see [`COMPONENT_HEADER`]).
pub fn is_component(wasm: &[u8]) -> bool {
    wasm.starts_with(&COMPONENT_HEADER)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_examples_build_as_modules_and_components() {
        // Local builds only: the examples' dependencies are in their lock
        // files, and cargo fetches nothing it already has.
        assert!(super::is_component(&super::http_hello_wasm()));
        assert!(super::is_component(&super::hello_world_p2_wasm()));
        assert!(super::is_component(&super::http_hostile_wasm()));
        let cgi = super::cgi_hello_wasm();
        assert!(cgi.starts_with(b"\0asm\x01\0\0\0"), "a core module");
        assert!(!super::is_component(&cgi));
    }

    #[test]
    fn cpu_time_counts_this_process_spinning() {
        let pid = std::process::id();
        let before = super::cpu_time(pid).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = super::cpu_time(pid).unwrap() - before;
        // 200 ms of spinning, counted in clock ticks (10 ms at 100 Hz);
        // on a busy machine this thread may get less than all of it.
        assert!(used >= std::time::Duration::from_millis(20), "{used:?}");
        assert!(super::cpu_time(u32::MAX).is_err(), "no such process");
    }

    /// Runs `tests::skip_or_fail_child` in a child test process with `CI`
    /// as given (removed for `None`).
    fn child(ci: Option<&str>) -> (bool, String, String) {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--ignored",
            "--exact",
            "tests::skip_or_fail_child",
            "--test-threads=1",
        ]);
        match ci {
            Some(v) => cmd.env("CI", v),
            None => cmd.env_remove("CI"),
        };
        let out = cmd.output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    #[test]
    #[ignore = "run by skip_or_fail_fails_under_ci_and_skips_loudly_elsewhere"]
    fn skip_or_fail_child() {
        super::skip_or_fail("the frobnicator is not installed");
    }

    #[test]
    fn skip_or_fail_fails_under_ci_and_skips_loudly_elsewhere() {
        let (ok, stdout, stderr) = child(Some("true"));
        assert!(!ok, "passed under CI:\n{stdout}{stderr}");
        assert!(stdout.contains("1 failed"), "{stdout}");
        assert!(
            format!("{stdout}{stderr}")
                .contains("under CI (CI is set) it may not skip: the frobnicator is not installed"),
            "{stdout}{stderr}"
        );
        for ci in [None, Some("")] {
            let (ok, stdout, stderr) = child(ci);
            assert!(ok, "CI={ci:?}:\n{stdout}{stderr}");
            assert!(stdout.contains("1 passed"), "{stdout}");
            // Not captured by the harness: on the terminal, not only in the
            // output of a failed test.
            assert!(
                stderr.contains("SKIPPED ")
                    && stderr.contains(": the frobnicator is not installed (with CI set"),
                "CI={ci:?}: {stderr}"
            );
        }
    }
}
