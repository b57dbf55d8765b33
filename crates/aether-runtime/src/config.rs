//! Runtime configuration and per-invocation limits, with the defaults the
//! edge uses when nothing is configured.

use std::path::PathBuf;
use std::time::Duration;

/// Wall-clock limit of one invocation: the documented default of the
/// original description (`exec_timeout = "3s"`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Linear-memory limit of one invocation (`memory_limit = "16MB"`, SI units
/// as `bytesize` parses them: 16 * 10^6 bytes, i.e. 244 wasm pages).
pub const DEFAULT_MEMORY_LIMIT: u64 = 16_000_000;
/// Captured bytes per output stream: 1 MiB, the documented default; more is an
/// `output_limit_exceeded` error rather than unbounded host memory.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Modules kept linked and ready to instantiate (`cache_size = 100`); every
/// other loaded module stays in memory compiled, a few microseconds of
/// linking away (see [`RuntimeConfig::module_memory_budget`]).
pub const DEFAULT_CACHE_SIZE: usize = 100;
/// Compiled code and data of the modules held in memory, at most (4 GiB:
/// about 13 000 hello_world-sized modules of 308 KiB).
pub const DEFAULT_MODULE_MEMORY_BUDGET: u64 = 4 << 30;
/// Wasm stack per invocation. 512 KiB is wasmtime's own default: deep enough
/// for real programs, and a runaway recursion traps in well under a
/// millisecond instead of eating the host thread's stack.
pub const DEFAULT_MAX_WASM_STACK: usize = 512 << 10;
/// Pool slots (instances, memories, tables) preallocated by the pooling
/// allocator. Must be at least the engine's concurrent-execution bound.
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// Epoch tick: the granularity of timeouts. 2 ms keeps a timeout within a
/// few milliseconds of its limit for a ticker that wakes 500 times a second.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(2);
/// Largest memory limit any function may ask for; also the size of one
/// pooled memory slot's accessible range.
pub const DEFAULT_MAX_MEMORY_LIMIT: u64 = 256 << 20;
/// Bytes of each linear memory reset by overwriting rather than `madvise`
/// when an instance is freed. On VMs `madvise` sends cross-CPU interrupts
/// that cost more than a memset of the pages a small function touches
/// (measured on these 2-vCPU machines: 19k → 84k runs/s on two threads). 2 MiB covers a Rust
/// guest's whole default memory (1 MiB stack + data, 17 pages for
/// hello_world); `aether-bench micro` compares it with 0, 128 KiB, 1 MiB.
pub const DEFAULT_KEEP_RESIDENT: usize = 2 << 20;
/// Pages decommitted per `madvise` batch by the pooling allocator (1 = no
/// batching). Batching amortises the cross-CPU interrupts of `madvise`.
pub const DEFAULT_DECOMMIT_BATCH: usize = 1;

/// Limits of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit of instantiation plus `_start`.
    pub timeout: Duration,
    /// Largest linear memory the function may grow to, in bytes.
    pub memory_bytes: u64,
    /// Largest captured stdout, in bytes.
    pub max_stdout_bytes: usize,
    /// Largest captured stderr, in bytes.
    pub max_stderr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_LIMIT,
            max_stdout_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_stderr_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// Configuration of a [`crate::Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Limits used when a function does not set its own.
    pub default_limits: Limits,
    /// Modules kept linked (`InstancePre`), ready to instantiate; least
    /// recently used ones beyond it go back to their compiled form.
    pub cache_size: usize,
    /// Bytes of compiled modules (code, data and metadata; mapped from their
    /// artifact files when there is an artifact directory) the runtime
    /// holds in memory. Every module loaded since start stays in memory
    /// until its function goes; a load that would pass the budget is
    /// refused with [`crate::CompileError::OverBudget`] instead of letting
    /// the node swap.
    pub module_memory_budget: u64,
    /// How a fresh instance's linear memory gets its initial contents.
    pub memory_init: MemoryInit,
    /// Directory for precompiled artifacts; `None` disables the disk cache.
    pub artifact_dir: Option<PathBuf>,
    /// Pool slots; see [`DEFAULT_MAX_INSTANCES`].
    pub max_instances: u32,
    /// Upper bound for any function's memory limit.
    pub max_memory_limit: u64,
    /// Wasm stack size.
    pub max_wasm_stack: usize,
    /// Epoch tick; see [`DEFAULT_EPOCH_TICK`].
    pub epoch_tick: Duration,
    /// Use the pooling instance allocator (recommended for serving).
    pub pooling: bool,
    /// See [`DEFAULT_KEEP_RESIDENT`].
    pub keep_resident: usize,
    /// See [`DEFAULT_DECOMMIT_BATCH`].
    pub decommit_batch: usize,
}

/// How a fresh instance's linear memory gets the module's data segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryInit {
    /// Copied into the instance's pool slot at every instantiation (a
    /// hello_world: 32 KiB). The default: its cost does not depend on
    /// which module the slot held before, so an edge serving many
    /// functions pays the same per request as one serving a single
    /// function. With `Cow`, a slot that held another module must have
    /// the new module's image mapped in, and under load across threads
    /// those remaps and copy-on-write faults cost TLB shootdowns: 1 000
    /// distinct hello_worlds ran at 0.25× a single function's rate with
    /// `Cow` against 0.53× with `Copy`, same run (BENCHMARKS.md, "Many
    /// tenants").
    #[default]
    Copy,
    /// Mapped copy-on-write from the module's image (wasmtime's default):
    /// nothing copied up front, pages faulted in as touched. Better for
    /// few functions with large data segments (megabytes of tables or
    /// assets), which `Copy` would copy at every request.
    Cow,
}

impl std::str::FromStr for MemoryInit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "copy" => Ok(MemoryInit::Copy),
            "cow" => Ok(MemoryInit::Cow),
            other => Err(format!("`{other}`: expected `copy` or `cow`")),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_limits: Limits::default(),
            cache_size: DEFAULT_CACHE_SIZE,
            module_memory_budget: DEFAULT_MODULE_MEMORY_BUDGET,
            memory_init: MemoryInit::default(),
            artifact_dir: None,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_limit: DEFAULT_MAX_MEMORY_LIMIT,
            max_wasm_stack: DEFAULT_MAX_WASM_STACK,
            epoch_tick: DEFAULT_EPOCH_TICK,
            pooling: true,
            keep_resident: DEFAULT_KEEP_RESIDENT,
            decommit_batch: DEFAULT_DECOMMIT_BATCH,
        }
    }
}
