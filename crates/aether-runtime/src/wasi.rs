//! The WASI preview-1 linking: the one import module Aether links, the
//! linker every module is instantiated with, and the names it provides.

use std::collections::BTreeSet;
use std::time::Instant;

use wasmtime::{Engine, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;

use crate::host::{HostState, MemoryLimiter};
use crate::poll;

/// The only import module Aether links.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The linker every module is instantiated with: WASI preview 1 only, with
/// `poll_oneoff` bounded by the invocation's deadline (see `poll`).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi)?;
    // Replace wasmtime-wasi's `poll_oneoff` with the deadline-bounded one.
    linker.allow_shadowing(true);
    linker.func_wrap_async(WASI_MODULE, "poll_oneoff", poll::bounded_poll_oneoff)?;
    linker.allow_shadowing(false);
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
            Instant::now(),
        ),
    );
    linker
        .iter(&mut store)
        .filter(|(module, _, _)| *module == WASI_MODULE)
        .map(|(_, name, _)| name.to_owned())
        .collect()
}
