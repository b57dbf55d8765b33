//! A deadline-bounded `poll_oneoff`. Epoch interruption stops wasm code, but
//! not a host call: wasmtime-wasi's `poll_oneoff` waits for as long as the
//! guest asks, so a guest sleeping for an hour would hold an execution slot
//! for an hour, far past its timeout. This
//! wrapper shortens every clock subscription that would end after the
//! invocation's deadline to end at the deadline, calls wasmtime-wasi's
//! implementation, and ends the invocation as a timeout once the deadline
//! has passed.
//!
//! A shortened subscription is rewritten in guest memory (as a relative
//! timeout); the guest never observes it, since it is stopped when the
//! rewritten sleep ends.

use std::time::{Duration, Instant, SystemTime};

use wasmtime::{AsContextMut, Caller, Extern, Trap};
use wasmtime_wasi::p1::types::Errno;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;

use crate::host::HostState;

/// Size of a WASI preview-1 `subscription`.
const SUBSCRIPTION_SIZE: usize = 48;
/// `eventtype::clock`.
const TAG_CLOCK: u8 = 0;
/// `subclockflags::subscription_clock_abstime`.
const ABSTIME: u16 = 1;
/// `clockid::realtime` and `clockid::monotonic`.
const REALTIME: u32 = 0;
const MONOTONIC: u32 = 1;

/// The monotonic clock given to guests: nanoseconds since the invocation
/// started, so absolute monotonic timeouts can be compared with the
/// deadline.
pub(crate) struct InvocationClock {
    pub(crate) origin: Instant,
}

impl wasmtime_wasi::HostMonotonicClock for InvocationClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        nanos(self.origin.elapsed())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The deadline-bounded `wasi_snapshot_preview1::poll_oneoff`, in the shape
/// `Linker::func_wrap_async` takes (the `wasi` module links it over
/// wasmtime-wasi's own). It calls wasmtime-wasi's implementation (through
/// its public `WasiSnapshotPreview1` trait, as its generated linker glue
/// does).
pub(crate) fn bounded_poll_oneoff(
    mut caller: Caller<'_, HostState>,
    (subs, events, nsubscriptions, nevents): (i32, i32, i32, i32),
) -> Box<dyn Future<Output = wasmtime::Result<i32>> + Send + '_> {
    Box::new(async move {
        let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
            wasmtime::bail!("missing required memory export");
        };
        // Wasm pointers and sizes are u32 reinterpreted as i32.
        let (subs, events) = (subs as u32, events as u32);
        let (nsubscriptions, nevents) = (nsubscriptions as u32, nevents as u32);
        // wasmtime-wasi bounds host-side copies by the store's
        // hostcall fuel, which its generated glue hands over before
        // each call.
        let fuel = caller.as_context_mut().hostcall_fuel();
        let (data, state) = memory.data_and_store_mut(&mut caller);
        state.wasi.set_hostcall_fuel(fuel);
        clamp_clock_subscriptions(data, state, subs, nsubscriptions);
        let deadline = state.deadline;
        let mut guest = wiggle::GuestMemory::Unshared(data);
        let result = WasiSnapshotPreview1::poll_oneoff(
            &mut state.wasi,
            &mut guest,
            wiggle::GuestPtr::new(subs),
            wiggle::GuestPtr::new(events),
            nsubscriptions,
        )
        .await;
        if Instant::now() >= deadline {
            return Err(Trap::Interrupt.into());
        }
        let errno = match result {
            Ok(count) => match guest.write(wiggle::GuestPtr::<u32>::new(nevents), count) {
                Ok(()) => Errno::Success,
                Err(_) => Errno::Fault,
            },
            Err(e) => e.downcast()?,
        };
        Ok(errno as i32)
    })
}

/// Shortens clock subscriptions that end after the deadline. Anything it
/// cannot read (no memory, out-of-bounds pointers, unknown clocks) is left
/// for wasmtime-wasi to refuse.
fn clamp_clock_subscriptions(data: &mut [u8], state: &HostState, subs: u32, n: u32) {
    let now = Instant::now();
    let remaining = nanos(state.deadline.saturating_duration_since(now));
    let since_origin = nanos(now.saturating_duration_since(state.clock_origin));
    let (Ok(start), Ok(n)) = (usize::try_from(subs), usize::try_from(n)) else {
        return;
    };
    for i in 0..n {
        let Some(sub) = start
            .checked_add(i.saturating_mul(SUBSCRIPTION_SIZE))
            .and_then(|at| data.get_mut(at..at.checked_add(SUBSCRIPTION_SIZE)?))
        else {
            return;
        };
        if sub[8] != TAG_CLOCK {
            continue;
        }
        let id = u32::from_le_bytes(sub[16..20].try_into().expect("4 bytes"));
        let timeout = u64::from_le_bytes(sub[24..32].try_into().expect("8 bytes"));
        let flags = u16::from_le_bytes(sub[40..42].try_into().expect("2 bytes"));
        let wait = if flags & ABSTIME == 0 {
            timeout
        } else {
            match id {
                MONOTONIC => timeout.saturating_sub(since_origin),
                REALTIME => {
                    let wall = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(nanos)
                        .unwrap_or(0);
                    timeout.saturating_sub(wall)
                }
                _ => continue,
            }
        };
        if wait > remaining {
            sub[24..32].copy_from_slice(&remaining.to_le_bytes());
            sub[40..42].copy_from_slice(&(flags & !ABSTIME).to_le_bytes());
        }
    }
}
