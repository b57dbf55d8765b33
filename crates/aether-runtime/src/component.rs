//! Components (WASI preview 2): the state of one component invocation's
//! `Store`, and the one component linker (WASI 0.2 plus `wasi:http`) that
//! command components and `wasi:http/proxy` components are instantiated
//! with.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::egress::{Egress, EgressPolicy, EgressUsage};
use crate::host::MemoryLimiter;

/// Most bytes of headers (in wasmtime-wasi-http's in-memory measure, about
/// twice the wire size) one `fields` resource may hold: a guest cannot
/// build a header map of unbounded size.
const FIELD_SIZE_LIMIT: usize = 64 << 10;

/// State of one component invocation's `Store`.
pub(crate) struct ComponentState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: Egress,
    pub(crate) limiter: MemoryLimiter,
    /// When the invocation's time limit ends.
    pub(crate) deadline: Instant,
}

impl ComponentState {
    pub(crate) fn new(
        wasi: WasiCtx,
        limiter: MemoryLimiter,
        deadline: Instant,
        egress: Arc<EgressPolicy>,
        usage: Arc<EgressUsage>,
    ) -> Self {
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        ComponentState {
            wasi,
            table: ResourceTable::new(),
            http,
            egress: Egress::new(egress, usage),
            limiter,
            deadline,
        }
    }
}

impl crate::host::Guarded for ComponentState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

/// The linker every component is instantiated with: all of WASI 0.2 (a
/// Rust `wasm32-wasip2` program imports the CLI, filesystem and clock
/// interfaces whether it uses them or not; the context gives it no
/// preopened directories and no sockets) and `wasi:http`, whose outgoing
/// requests go through the invocation's allow-list ([`Egress`]).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}
