//! Aether's wasmtime embedding: runs WASI preview-1 command modules in a
//! sandbox with time, memory and output limits, and caches compiled modules
//! in memory (keyed by sha256) and on disk (keyed by sha256 and the engine's
//! compatibility hash).
//!
//! No HTTP here: `aether-engine` puts this behind `POST /execute`, and the
//! control plane uses [`validate_command_module`] to refuse bad uploads with
//! the same rules the edges apply.

mod artifact;
mod cache;
mod component;
mod config;
mod egress;
mod epoch;
mod error;
mod host;
mod http;
mod output;
mod poll;
mod runtime;
mod sandbox;
mod validate;
mod wasi;

pub use cache::ModuleHash;
pub use config::{
    DEFAULT_CACHE_SIZE, DEFAULT_EPOCH_TICK, DEFAULT_MAX_INSTANCES, DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_WASM_STACK, DEFAULT_MEMORY_LIMIT, DEFAULT_MODULE_MEMORY_BUDGET, DEFAULT_TIMEOUT,
    Limits, MemoryInit, RuntimeConfig,
};
pub use egress::{EgressError, EgressPolicy, EgressUsage, OutboundCounts};
pub use error::{CompileError, Failure, InvokeError, RuntimeError};
pub use http::{
    BodyError, GuestResponse, HttpCall, HttpInvocation, HttpOutcome, ResponseBody, ResponseReceiver,
};
pub use runtime::{CacheStats, Invocation, LoadedModule, Outcome, Runtime};
pub use validate::{MAX_FUNCTIONS, WasmShape, inspect, validate_command_module, validation_engine};

/// Where a module came from; re-exported from the wire types so the engine
/// reports it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// In-memory cache hit.
    Memory,
    /// Deserialized from this node's on-disk artifact.
    Disk,
    /// Compiled from wasm bytes.
    Compiled,
}
