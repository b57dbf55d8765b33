//! The sandbox's engine configuration: the wasm feature set and code
//! generation settings every engine shares, the serving engine's pooling
//! allocator and fiber stacks, and the start-up summary of those settings.

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::config::RuntimeConfig;
use crate::host::MAX_TABLE_ELEMENTS;

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
