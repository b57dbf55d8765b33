//! Test fixtures shared by the workspace's test suites: small WAT guests
//! (turned into wasm by each suite with the `wat` crate) and the example
//! functions of `examples/`, built for `wasm32-wasip1`. No dependencies
//! (so the lowest crates, `aether-runtime`, can use it too) except for the
//! optional `prometheus` feature.

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

/// Builds `examples/<package>` for wasm32-wasip1 (release) in the examples'
/// own target directory and returns the module's path. One cargo at a time:
/// parallel tests would only wait on its lock.
pub fn example_wasm(package: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let examples = repo().join("examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            package,
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(examples.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(examples.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building examples/{package} failed (is the wasm32-wasip1 target installed?)"
    );
    examples.join(format!("target/wasm32-wasip1/release/{package}.wasm"))
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
