//! Typed errors, split by operation: building the runtime, loading a
//! module, invoking it.

use std::time::Duration;

use bytes::Bytes;

/// The runtime could not be created (bad configuration, OS refused
/// resources).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot configure the wasm engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The artifact directory could not be created or the ticker started.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A module could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Not WebAssembly, or fails validation.
    #[error("invalid wasm: {reason}")]
    InvalidWasm {
        /// Validator's explanation.
        reason: String,
    },
    /// Valid wasm, but not a WASI command module Aether can run.
    #[error("not a WASI command module: {reason}")]
    NotCommand {
        /// Which rule it breaks (missing `_start`, unknown import, ...).
        reason: String,
    },
    /// The wasm bytes do not hash to the expected sha256.
    #[error("module hash mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// The sha256 asked for.
        expected: String,
        /// The sha256 of the bytes found.
        actual: String,
    },
    /// Keeping the module in memory would take the modules held past the
    /// runtime's `module_memory_budget`.
    #[error(
        "this edge's module memory budget is exhausted: the module needs {needed} bytes, {used} of {budget} are in use by the modules already loaded"
    )]
    OverBudget {
        /// The module's compiled size.
        needed: u64,
        /// Bytes held by the modules in memory.
        used: u64,
        /// The budget.
        budget: u64,
    },
    /// The wasm bytes could not be read.
    #[error("cannot read module {sha256}: {source}")]
    Read {
        /// The module's sha256.
        sha256: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why an invocation did not run to completion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// Ran past its wall-clock limit and was interrupted.
    #[error("function exceeded its time limit of {limit:?}")]
    Timeout {
        /// The limit that was hit.
        limit: Duration,
    },
    /// Tried to grow linear memory (or declared an initial memory) beyond
    /// its limit.
    #[error("function exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit that was hit.
        limit_bytes: u64,
    },
    /// Wrote more than allowed to stdout or stderr.
    #[error("function wrote more than {limit_bytes} bytes to {stream}")]
    OutputLimit {
        /// `"stdout"` or `"stderr"`.
        stream: &'static str,
        /// The limit that was hit.
        limit_bytes: usize,
    },
    /// Exhausted the wasm stack (runaway recursion).
    #[error("function overflowed its stack")]
    StackOverflow,
    /// Any other trap (unreachable, out-of-bounds access, division by zero,
    /// a host error turned into a trap).
    #[error("function trapped: {message}")]
    Trap {
        /// wasmtime's description, with the wasm backtrace when available.
        message: String,
    },
    /// The function is of another kind than the call (an HTTP component
    /// through `/execute`, a command through the HTTP trigger's component
    /// path).
    #[error("function cannot be called this way: {message}")]
    NotCallable {
        /// Which way it is called instead.
        message: String,
    },
    /// The instance could not be created (e.g. pool exhausted, an import's
    /// type does not match).
    #[error("cannot instantiate function: {message}")]
    Instantiate {
        /// wasmtime's description.
        message: String,
    },
}

/// A failed invocation, with what the function wrote to stderr before it
/// failed (function authors need it to debug).
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub error: InvokeError,
    /// Captured stderr up to the failure (bounded by the limit).
    pub stderr: Bytes,
    /// Time from the start of instantiation to the failure.
    pub elapsed: Duration,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
