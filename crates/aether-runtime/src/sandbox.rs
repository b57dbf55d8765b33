//! The sandbox: engine configuration, the WASI linker and the per-invocation
//! host state (WASI context and memory limiter).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig,
    ResourceLimiter, Store,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::config::RuntimeConfig;
use crate::validate::WASI_MODULE;

/// Largest table a function may grow to. Equal to the pooling allocator's
/// default slot size; a Rust program's function table holds a few thousand
/// entries.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 20_000;

/// State of one invocation's `Store`.
pub(crate) struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryLimiter,
    /// When the invocation's time limit ends; host calls that could block
    /// (`poll_oneoff`) are bounded by it.
    pub(crate) deadline: Instant,
    /// Zero of the guest's monotonic clock.
    pub(crate) clock_origin: Instant,
}

impl HostState {
    /// Host state of one invocation whose guest clock starts at `origin`
    /// and whose time limit is `timeout` from then.
    pub(crate) fn new(
        wasi: WasiP1Ctx,
        limiter: MemoryLimiter,
        origin: Instant,
        timeout: Duration,
    ) -> Self {
        // A timeout too large for `Instant` is as good as none.
        let deadline = origin
            .checked_add(timeout)
            .unwrap_or_else(|| origin + Duration::from_secs(100 * 365 * 86_400));
        HostState {
            wasi,
            limiter,
            deadline,
            clock_origin: origin,
        }
    }
}

/// Enforces the memory limit and records the peak and whether the limit was
/// hit (so an allocation failure that the guest turns into a trap is
/// reported as `memory_limit_exceeded`, not as a generic trap).
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) peak: usize,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            peak: 0,
            hit: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Also called with current = 0 for a memory's initial size, so a
        // module declaring a huge initial memory is refused here too.
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }
}

/// The wasm feature set and code generation settings shared by every engine
/// Aether creates, serving or validating. Only long-standard proposals are
/// on; threads, GC, memory64 and components are off (preview-1 command
/// modules need none of them).
pub(crate) fn base_config(max_wasm_stack: usize) -> Config {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .max_wasm_stack(max_wasm_stack)
        .wasm_memory64(false)
        .wasm_component_model(false)
        .parallel_compilation(true);
    config
}

/// Size of the stack each invocation's guest runs on (a fiber). It holds the
/// wasm stack (`max_wasm_stack`) plus the host calls made from it, so it is
/// that plus a fixed margin for wasmtime and wasmtime-wasi frames.
pub(crate) fn fiber_stack_size(max_wasm_stack: usize) -> usize {
    max_wasm_stack + (1 << 20)
}

/// The engine configuration for serving: the base configuration plus the
/// pooling allocator with every pool size set explicitly, and fiber stacks
/// for async execution. Guests run as futures on the edge's async workers
/// (no hand-off to a blocking thread per request): a guest yields its
/// worker at every epoch tick, and its host calls (`poll_oneoff` sleeps)
/// await instead of blocking a thread.
pub(crate) fn serving_config(cfg: &RuntimeConfig) -> Config {
    let mut config = base_config(cfg.max_wasm_stack);
    config.async_stack_size(fiber_stack_size(cfg.max_wasm_stack));
    if cfg.pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(cfg.max_instances)
            .total_memories(cfg.max_instances)
            .total_tables(cfg.max_instances)
            .total_component_instances(0)
            // One fiber stack per invocation, as many as instances.
            .total_stacks(cfg.max_instances)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(usize::try_from(cfg.max_memory_limit).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(cfg.keep_resident)
            .table_keep_resident(cfg.keep_resident.min(64 << 10))
            .decommit_batch_size(cfg.decommit_batch.max(1))
            // Reset only the pages a guest dirtied (Linux ≥ 6.7 PAGEMAP_SCAN;
            // ignored elsewhere) instead of a memset of the whole
            // keep-resident prefix: hello_world's 1.1 MB memory cost a
            // 1.1 MB memset per request, a quarter of the edge's CPU under
            // load (perf, BENCHMARKS.md).
            .pagemap_scan(Enabled::Auto)
            .max_unused_warm_slots(cfg.max_instances);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// One line describing the effective sandbox settings, logged at start-up.
pub(crate) fn summarize(cfg: &RuntimeConfig) -> String {
    format!(
        "allocator={} pool_slots={} max_memory_limit={}B keep_resident={}B wasm_stack={}B epoch_tick={:?} default_timeout={:?} default_memory={}B max_stdout={}B max_stderr={}B cache_size={} artifact_dir={}",
        if cfg.pooling { "pooling" } else { "on-demand" },
        cfg.max_instances,
        cfg.max_memory_limit,
        cfg.keep_resident,
        cfg.max_wasm_stack,
        cfg.epoch_tick,
        cfg.default_limits.timeout,
        cfg.default_limits.memory_bytes,
        cfg.default_limits.max_stdout_bytes,
        cfg.default_limits.max_stderr_bytes,
        cfg.cache_size,
        cfg.artifact_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".into()),
    )
}

/// The linker every module is instantiated with: WASI preview 1 only, with
/// `poll_oneoff` bounded by the invocation's deadline (see `poll`).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi)?;
    crate::poll::shadow_poll_oneoff(&mut linker)?;
    Ok(linker)
}

/// Names of the functions the linker provides under `wasi_snapshot_preview1`.
pub(crate) fn linked_wasi_functions(engine: &Engine) -> BTreeSet<String> {
    let linker = linker(engine).expect("WASI preview 1 links into a fresh linker");
    let mut store = Store::new(
        engine,
        HostState::new(
            WasiCtxBuilder::new().build_p1(),
            MemoryLimiter::new(0),
            Instant::now(),
            Duration::ZERO,
        ),
    );
    linker
        .iter(&mut store)
        .filter(|(module, _, _)| *module == WASI_MODULE)
        .map(|(_, name, _)| name.to_owned())
        .collect()
}
