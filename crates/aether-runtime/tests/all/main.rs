//! Integration tests of the runtime: real wasmtime, WAT fixtures for limits
//! and traps.

mod cache;
mod components;
mod execute;
mod limits;

use std::sync::Arc;
use std::time::Duration;

use aether_runtime::{
    Failure, Invocation, Limits, LoadedModule, ModuleHash, ModuleSource, Outcome, Runtime,
    RuntimeConfig,
};

/// A runtime with a small pool and no disk cache.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 32,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// Compiles WAT through the runtime's cache.
pub fn load(rt: &Runtime, wat: &str) -> (Arc<LoadedModule>, ModuleSource) {
    let wasm = wat::parse_str(wat).expect("fixture is valid WAT");
    rt.load(ModuleHash::of(&wasm), || Ok(wasm))
        .expect("fixture loads")
}

/// Runs a module with `stdin` and the given limits.
pub fn run_with(
    rt: &Runtime,
    module: &LoadedModule,
    stdin: &str,
    limits: Limits,
) -> Result<Outcome, Failure> {
    rt.execute_blocking(
        module,
        Invocation {
            name: "test",
            args: &[],
            env: &[],
            stdin: bytes::Bytes::copy_from_slice(stdin.as_bytes()),
            limits,
        },
    )
}

/// Runs a module with default limits.
pub fn run(rt: &Runtime, module: &LoadedModule, stdin: &str) -> Result<Outcome, Failure> {
    run_with(rt, module, stdin, Limits::default())
}

/// Short timeout for tests that expect one.
pub fn short_timeout() -> Limits {
    Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    }
}

pub use aether_fixtures::ECHO;
