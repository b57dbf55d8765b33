//! The sandbox's engine configuration: the wasm feature set and code
//! generation settings every engine shares, the serving engine's pooling
//! allocator and fiber stacks, and the start-up summary of those settings.

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::config::{MemoryInit, RuntimeConfig};
use crate::host::MAX_TABLE_ELEMENTS;

/// Core instance and table slots per execution slot (see
/// [`serving_config`]).
const COMPONENT_SLOT_FACTOR: u32 = 8;

/// The wasm feature set and code generation settings shared by every engine
/// Aether creates, serving or validating. Only long-standard proposals and
/// the component model (preview-2 commands and `wasi:http` components) are
/// on; threads, GC, memory64 and async components are off.
pub(crate) fn base_config(max_wasm_stack: usize) -> Config {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .max_wasm_stack(max_wasm_stack)
        .wasm_memory64(false)
        .wasm_component_model(true)
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
    config.memory_init_cow(cfg.memory_init == MemoryInit::Cow);
    if cfg.pooling {
        let mut pool = PoolingAllocationConfig::new();
        // A component invocation takes several core instances and tables
        // (a Rust wasm32-wasip2 component: about five instances, one or
        // two memories), so those pools are larger; a core instance slot
        // costs a few KiB, a table slot 160 KiB of address space.
        pool.total_core_instances(cfg.max_instances.saturating_mul(COMPONENT_SLOT_FACTOR))
            .total_memories(cfg.max_instances.saturating_mul(2))
            .total_tables(cfg.max_instances.saturating_mul(COMPONENT_SLOT_FACTOR))
            .total_component_instances(cfg.max_instances)
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
        "allocator={} memory_init={:?} pool_slots={} max_memory_limit={}B keep_resident={}B wasm_stack={}B epoch_tick={:?} default_timeout={:?} default_memory={}B max_stdout={}B max_stderr={}B cache_size={} artifact_dir={}",
        if cfg.pooling { "pooling" } else { "on-demand" },
        cfg.memory_init,
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

/// Takes every network capability of WASI 0.2 sockets away from a
/// component's context: no TCP, no UDP, no name lookups, and no address
/// passes the check. (Outbound HTTP goes through `wasi:http` and its
/// allow-list instead.)
pub(crate) fn deny_network(wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
}
