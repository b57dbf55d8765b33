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
