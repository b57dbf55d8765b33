//! The per-invocation host state: what one invocation's `Store` holds (its
//! WASI context, memory limiter, deadline and clock origin).

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p1::WasiP1Ctx;

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
    /// and whose time limit ends at `deadline`.
    pub(crate) fn new(
        wasi: WasiP1Ctx,
        limiter: MemoryLimiter,
        origin: Instant,
        deadline: Instant,
    ) -> Self {
        HostState {
            wasi,
            limiter,
            deadline,
            clock_origin: origin,
        }
    }
}

/// When a time limit of `timeout` from `origin` ends; a timeout too large
/// for `Instant` is as good as none.
pub(crate) fn deadline_after(origin: Instant, timeout: Duration) -> Instant {
    origin
        .checked_add(timeout)
        .unwrap_or_else(|| origin + Duration::from_secs(100 * 365 * 86_400))
}

/// What every invocation's store data offers the guards
/// ([`crate::Runtime`]'s memory limiter and epoch deadline).
pub(crate) trait Guarded: Send + 'static {
    /// The memory limiter.
    fn limiter(&mut self) -> &mut MemoryLimiter;
    /// When the time limit ends.
    fn deadline(&self) -> Instant;
}

impl Guarded for HostState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Enforces the memory limit and records the peak and whether the limit was
/// hit (so an allocation failure that the guest turns into a trap is
/// reported as `memory_limit_exceeded`, not as a generic trap). The limit
/// bounds the sum of every linear memory of the store: one for a core
/// module, one per core module that defines one for a component.
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) peak: usize,
    pub(crate) hit: bool,
    total: usize,
    instances: usize,
    memories: usize,
    tables: usize,
}

/// Most core instances, memories and tables one component invocation may
/// create. A Rust `wasm32-wasip2` component has about five core instances
/// (the program, the preview-1 adapter and the glue modules), one or two
/// memories and a few tables.
pub(crate) const COMPONENT_INSTANCES: usize = 32;
pub(crate) const COMPONENT_MEMORIES: usize = 4;
pub(crate) const COMPONENT_TABLES: usize = 16;

impl MemoryLimiter {
    /// The limiter of a core module's store: one instance, memory, table.
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            peak: 0,
            hit: false,
            total: 0,
            instances: 1,
            memories: 1,
            tables: 1,
        }
    }

    /// The limiter of a component's store.
    pub(crate) fn for_component(limit: u64) -> Self {
        MemoryLimiter {
            instances: COMPONENT_INSTANCES,
            memories: COMPONENT_MEMORIES,
            tables: COMPONENT_TABLES,
            ..MemoryLimiter::new(limit)
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Also called with current = 0 for a memory's initial size, so a
        // module declaring a huge initial memory is refused here too.
        let total = (self.total - current.min(self.total)).saturating_add(desired);
        if total > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
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
        self.instances
    }

    fn memories(&self) -> usize {
        self.memories
    }

    fn tables(&self) -> usize {
        self.tables
    }
}
