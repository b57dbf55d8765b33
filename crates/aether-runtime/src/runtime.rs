//! The runtime: one engine, one linker, the module caches, and `execute`,
//! which runs one invocation in a fresh store.
//!
//! Modules live in two tiers:
//! - **held**: every module loaded since start, in compiled form (a
//!   `Module` or `Component`, mapped from its artifact file), until its
//!   function goes ([`Runtime::evict`], [`Runtime::retain_artifacts`]);
//!   bounded in bytes by `module_memory_budget`, beyond which loads are
//!   refused;
//! - **linked**: the `cache_size` most used ones, linked to WASI
//!   (`InstancePre`) and ready to instantiate.
//!
//! A module held but not linked is a few microseconds of linking from
//! ready, done inline on the request's thread ([`Runtime::load_cached`]);
//! only a module never loaded since start reads its artifact (or
//! compiles) on a blocking thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::sync::Cache;
use wasmtime::component::{self, Component};
use wasmtime::wasmparser::Parser;
use wasmtime::{
    Engine, ExternType, InstancePre, Linker, Module, Store, Trap, UpdateDeadline, WasmBacktrace,
};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::ModuleSource;
use crate::artifact::{ArtifactStore, Compiled};
use crate::cache::ModuleHash;
use crate::component::ComponentState;
use crate::config::{Limits, RuntimeConfig};
use crate::egress::{EgressPolicy, EgressUsage, OutboundCounts};
use crate::epoch::EpochTicker;
use crate::error::{CompileError, Failure, InvokeError, RuntimeError};
use crate::host::{Guarded, HostState, MemoryLimiter, deadline_after};
use crate::output::BoundedOutput;
use crate::poll::InvocationClock;
use crate::validate::{
    CLI_RUN_EXPORT, HTTP_HANDLER_EXPORT, WasmShape, inspect_component, validate_command_module,
};
use crate::{sandbox, wasi};

/// A compiled, linked module or component, ready to instantiate.
pub struct LoadedModule {
    hash: ModuleHash,
    linked: Linked,
}

/// The pre-instantiated form of each shape.
pub(crate) enum Linked {
    /// A preview-1 command module.
    Core(InstancePre<HostState>),
    /// A preview-2 command component.
    Command(CommandPre<ComponentState>),
    /// A `wasi:http/proxy` component.
    Http(ProxyPre<ComponentState>),
}

impl LoadedModule {
    /// sha256 of the module's wasm.
    pub fn hash(&self) -> ModuleHash {
        self.hash
    }

    /// What it is, and so how it is called.
    pub fn shape(&self) -> WasmShape {
        match self.linked {
            Linked::Core(_) => WasmShape::CommandModule,
            Linked::Command(_) => WasmShape::CommandComponent,
            Linked::Http(_) => WasmShape::HttpComponent,
        }
    }

    pub(crate) fn linked(&self) -> &Linked {
        &self.linked
    }
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// One call of a function.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// Function name: `argv[0]`.
    pub name: &'a str,
    /// Deployed arguments after the name.
    pub args: &'a [String],
    /// Deployed environment.
    pub env: &'a [(String, String)],
    /// Bytes the function reads from stdin.
    pub stdin: Bytes,
    /// Limits of this call.
    pub limits: Limits,
}

/// A completed invocation (the function returned from `_start` or called
/// `proc_exit`).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Captured stdout.
    pub stdout: Bytes,
    /// Captured stderr.
    pub stderr: Bytes,
    /// 0 when `_start` returned, else the `proc_exit` code.
    pub exit_code: i32,
    /// Instantiation plus run.
    pub elapsed: Duration,
    /// Peak linear memory size in bytes.
    pub peak_memory_bytes: u64,
    /// Outbound HTTP requests of a component (always zero for a core
    /// module, which cannot make any).
    pub outbound: OutboundCounts,
}

/// The modules held in memory in compiled form, and their bytes.
#[derive(Default)]
struct Held {
    modules: std::collections::HashMap<ModuleHash, (Compiled, u64)>,
    bytes: u64,
}

/// Bytes a compiled module occupies: its code image (code, data segments
/// and metadata; the mapped artifact file when it was loaded from disk).
fn image_bytes(compiled: &Compiled) -> u64 {
    let range = match compiled {
        Compiled::Module(module) => module.image_range(),
        Compiled::Component(component) => component.image_range(),
    };
    (range.end as usize).saturating_sub(range.start as usize) as u64
}

/// Counters of where modules came from since the runtime started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from memory.
    pub memory_hits: u64,
    /// Modules deserialized from this node's disk artifacts.
    pub disk_loads: u64,
    /// Modules compiled from wasm.
    pub compiled: u64,
}

#[derive(Debug, Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_loads: AtomicU64,
    compiled: AtomicU64,
}

/// The wasmtime embedding. Cheap to share behind an `Arc`; every method
/// takes `&self` and may be called from many threads at once.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    components: component::Linker<ComponentState>,
    modules: Cache<ModuleHash, Arc<LoadedModule>>,
    held: std::sync::RwLock<Held>,
    artifacts: Option<ArtifactStore>,
    config: RuntimeConfig,
    counters: Counters,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Creates the engine, the linker, the caches and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine =
            Engine::new(&sandbox::serving_config(&config)).map_err(RuntimeError::Engine)?;
        let linker = wasi::linker(&engine).map_err(RuntimeError::Engine)?;
        let components = crate::component::linker(&engine).map_err(RuntimeError::Engine)?;
        let artifacts = match &config.artifact_dir {
            Some(dir) => {
                Some(
                    ArtifactStore::open(dir, &engine).map_err(|source| RuntimeError::Io {
                        what: format!("cannot use artifact directory {}", dir.display()),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick).map_err(|source| {
            RuntimeError::Io {
                what: "cannot start the epoch ticker thread".into(),
                source,
            }
        })?;
        Ok(Runtime {
            modules: Cache::new(config.cache_size.max(1)),
            held: std::sync::RwLock::default(),
            engine,
            linker,
            components,
            artifacts,
            config,
            counters: Counters::default(),
            _ticker: ticker,
        })
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// One line with the effective sandbox settings, for the start-up log.
    pub fn summary(&self) -> String {
        sandbox::summarize(&self.config)
    }

    /// Number of modules linked and ready (at most `cache_size`).
    pub fn cached_modules(&self) -> usize {
        self.modules.len()
    }

    /// Number of modules held in memory (linked or not), and their bytes.
    pub fn held_modules(&self) -> (usize, u64) {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        (held.modules.len(), held.bytes)
    }

    /// Where loaded modules came from so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.counters.memory_hits.load(Ordering::Relaxed),
            disk_loads: self.counters.disk_loads.load(Ordering::Relaxed),
            compiled: self.counters.compiled.load(Ordering::Relaxed),
        }
    }

    /// The module with this hash if it is linked and ready.
    pub fn cached(&self, hash: &ModuleHash) -> Option<Arc<LoadedModule>> {
        self.modules.get(hash)
    }

    /// The module with this hash if it is in memory (linked, or held and
    /// linked now: microseconds), counted as a memory hit like
    /// [`Runtime::load`] counts one. Never blocks on I/O or compiling:
    /// callers on an async worker try this first and run [`Runtime::load`]
    /// on a blocking thread only when it returns `None`.
    pub fn load_cached(&self, hash: &ModuleHash) -> Option<Arc<LoadedModule>> {
        let module = match self.modules.get(hash) {
            Some(module) => module,
            None => {
                let compiled = self.held_module(hash)?;
                // A module held links as it did when it was loaded; if it
                // somehow does not, `load` reports why.
                let module = Arc::new(self.link(*hash, &compiled).ok()?);
                self.modules.insert(*hash, module.clone());
                module
            }
        };
        self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
        Some(module)
    }

    fn held_module(&self, hash: &ModuleHash) -> Option<Compiled> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        held.modules.get(hash).map(|(compiled, _)| compiled.clone())
    }

    /// Keeps `compiled` in memory, unless it would pass the budget.
    fn hold(&self, hash: ModuleHash, compiled: &Compiled) -> Result<(), CompileError> {
        let needed = image_bytes(compiled);
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        if held.modules.contains_key(&hash) {
            return Ok(());
        }
        let budget = self.config.module_memory_budget;
        if held.bytes.saturating_add(needed) > budget {
            return Err(CompileError::OverBudget {
                needed,
                used: held.bytes,
                budget,
            });
        }
        held.bytes += needed;
        held.modules.insert(hash, (compiled.clone(), needed));
        Ok(())
    }

    /// Lets go of held modules `keep` rejects (and their linked forms).
    fn release(&self, keep: &dyn Fn(&ModuleHash) -> bool) {
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<ModuleHash> = held
            .modules
            .keys()
            .filter(|hash| !keep(hash))
            .copied()
            .collect();
        for hash in gone {
            if let Some((_, bytes)) = held.modules.remove(&hash) {
                held.bytes -= bytes;
            }
            self.modules.remove(&hash);
        }
    }

    /// Drops a module from memory, linked and held (its disk artifact
    /// stays): a function removed, or a test forcing a disk load.
    pub fn evict(&self, hash: &ModuleHash) {
        self.release(&|h| h != hash);
    }

    /// Removes the on-disk artifacts of every module `keep` rejects (the
    /// modules no function uses any more), and lets go of them in memory;
    /// returns how many artifacts went. A module loaded again later is
    /// compiled again.
    pub fn retain_artifacts(&self, keep: &dyn Fn(&ModuleHash) -> bool) -> usize {
        self.release(keep);
        match &self.artifacts {
            Some(store) => store.retain(keep),
            None => 0,
        }
    }

    /// Checks `wasm` with this runtime's engine: a command module, a
    /// command component or a `wasi:http` component, and which.
    pub fn validate(&self, wasm: &[u8]) -> Result<WasmShape, CompileError> {
        if Parser::is_component(wasm) {
            inspect_component(wasm)
        } else {
            validate_command_module(&self.engine, wasm).map(|()| WasmShape::CommandModule)
        }
    }

    /// The engine (for tools that compile or inspect with its settings).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Returns the module with sha256 `hash`, from memory, else from this
    /// node's disk artifact, else by compiling the bytes `wasm` returns
    /// (checked against `hash`). Concurrent loads of one module read or
    /// compile it once. A module read or compiled is held in memory from
    /// then on, unless that would pass `module_memory_budget`
    /// ([`CompileError::OverBudget`]).
    pub fn load(
        &self,
        hash: ModuleHash,
        wasm: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> Result<(Arc<LoadedModule>, ModuleSource), CompileError> {
        let mut source = ModuleSource::Memory;
        let module = self.modules.get_or_insert_with(&hash, || {
            let (module, from) = self.load_uncached(hash, wasm)?;
            source = from;
            Ok::<_, CompileError>(Arc::new(module))
        })?;
        let counter = match source {
            ModuleSource::Memory => &self.counters.memory_hits,
            ModuleSource::Disk => &self.counters.disk_loads,
            ModuleSource::Compiled => &self.counters.compiled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok((module, source))
    }

    fn load_uncached(
        &self,
        hash: ModuleHash,
        wasm: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> Result<(LoadedModule, ModuleSource), CompileError> {
        if let Some(compiled) = self.held_module(&hash) {
            return Ok((self.link(hash, &compiled)?, ModuleSource::Memory));
        }
        if let Some(store) = &self.artifacts
            && let Some(compiled) = store.load(&self.engine, &hash)
        {
            match self.link(hash, &compiled) {
                Ok(loaded) => {
                    self.hold(hash, &compiled)?;
                    return Ok((loaded, ModuleSource::Disk));
                }
                // Our artifacts are only written after linking succeeded;
                // fall back to the wasm, which reports the real error.
                Err(e) => tracing::warn!(%hash, error = %e, "artifact does not link; recompiling"),
            }
        }
        let bytes = wasm().map_err(|source| CompileError::Read {
            sha256: hash.to_hex(),
            source,
        })?;
        let actual = ModuleHash::of(&bytes);
        if actual != hash {
            return Err(CompileError::HashMismatch {
                expected: hash.to_hex(),
                actual: actual.to_hex(),
            });
        }
        let compiled = self.compile_any(&bytes)?;
        self.link(hash, &compiled)?;
        // Held as the artifact maps it (page cache, not this process's
        // memory), else as compiled.
        let compiled = match &self.artifacts {
            Some(store) => match store.store(&self.engine, &hash, &compiled) {
                Ok(mapped) => mapped.unwrap_or(compiled),
                Err(e) => {
                    tracing::warn!(%hash, error = %e, "cannot write compiled artifact; the next restart recompiles");
                    compiled
                }
            },
            None => compiled,
        };
        let loaded = self.link(hash, &compiled)?;
        self.hold(hash, &compiled)?;
        Ok((loaded, ModuleSource::Compiled))
    }

    /// Validates and compiles wasm bytes (no caching).
    pub fn compile(&self, wasm: &[u8]) -> Result<Module, CompileError> {
        validate_command_module(&self.engine, wasm)?;
        Module::new(&self.engine, wasm).map_err(|e| CompileError::InvalidWasm {
            reason: format!("{e:#}"),
        })
    }

    /// Validates and compiles a module or a component.
    fn compile_any(&self, wasm: &[u8]) -> Result<Compiled, CompileError> {
        if !Parser::is_component(wasm) {
            return self.compile(wasm).map(Compiled::Module);
        }
        inspect_component(wasm)?;
        Component::new(&self.engine, wasm)
            .map(Compiled::Component)
            .map_err(|e| CompileError::InvalidWasm {
                reason: format!("{e:#}"),
            })
    }

    fn link(&self, hash: ModuleHash, compiled: &Compiled) -> Result<LoadedModule, CompileError> {
        let module = match compiled {
            Compiled::Module(module) => module,
            Compiled::Component(component) => return self.link_component(hash, component),
        };
        match module.get_export("_start") {
            Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => {}
            _ => {
                return Err(CompileError::NotCommand {
                    reason: "`_start` must be a function taking and returning nothing".into(),
                });
            }
        }
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|e| CompileError::NotCommand {
                reason: format!("{e:#}"),
            })?;
        Ok(LoadedModule {
            hash,
            linked: Linked::Core(pre),
        })
    }

    fn link_component(
        &self,
        hash: ModuleHash,
        component: &Component,
    ) -> Result<LoadedModule, CompileError> {
        let not_linkable = |e: wasmtime::Error| CompileError::NotCommand {
            reason: format!("{e:#}"),
        };
        let pre = self
            .components
            .instantiate_pre(component)
            .map_err(not_linkable)?;
        let exports = |prefix: &str| {
            component
                .component_type()
                .exports(&self.engine)
                .any(|(name, _)| name.starts_with(prefix))
        };
        let linked = if exports(HTTP_HANDLER_EXPORT) {
            Linked::Http(ProxyPre::new(pre).map_err(not_linkable)?)
        } else if exports(CLI_RUN_EXPORT) {
            Linked::Command(CommandPre::new(pre).map_err(not_linkable)?)
        } else {
            return Err(CompileError::NotCommand {
                reason:
                    "this component exports neither `wasi:http/incoming-handler` nor `wasi:cli/run`"
                        .into(),
            });
        };
        Ok(LoadedModule { hash, linked })
    }

    /// A store for one invocation: its memory limiter, and at every epoch
    /// tick a check of its deadline that stops the guest once past it and
    /// otherwise lets other tasks run before it goes on.
    pub(crate) fn guarded_store<T: Guarded>(&self, data: T) -> Store<T> {
        let mut store = Store::new(&self.engine, data);
        store.limiter(|s| s.limiter());
        store.epoch_deadline_callback(|store| {
            Ok(if Instant::now() >= store.data().deadline() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        // The first check comes at the second tick, after at least one
        // whole tick of running: a short guest that happens to start just
        // before a tick is not mistaken for a long one (an executor may
        // treat a guest that yields as long-running).
        store.set_epoch_deadline(2);
        store
    }

    /// Runs one invocation in a fresh instance. Never panics on guest
    /// behaviour: every way a guest can fail comes back as a [`Failure`].
    ///
    /// The guest runs inside this future, on the polling thread: a short
    /// function completes in its first poll. A guest still running after a
    /// whole epoch tick yields at every tick (to the back of tokio's run
    /// queue) and goes on at its next poll, so a looping guest takes turns
    /// with other work rather than holding a worker; past its time limit it
    /// is stopped at the next tick. Must be polled inside a tokio runtime
    /// (WASI host calls and the yield use it). Dropping the future stops
    /// the guest.
    pub async fn execute(
        &self,
        module: &LoadedModule,
        invocation: Invocation<'_>,
    ) -> Result<Outcome, Failure> {
        self.execute_with(module, invocation, EgressPolicy::shared_deny_all())
            .await
    }

    /// [`Runtime::execute`] with the function's outbound allow-list: a
    /// command component's `wasi:http` requests go where `egress` allows.
    pub async fn execute_with(
        &self,
        module: &LoadedModule,
        invocation: Invocation<'_>,
        egress: Arc<EgressPolicy>,
    ) -> Result<Outcome, Failure> {
        // Only a component can send requests: a module's invocation counts
        // nothing (and allocates nothing for it).
        let mut usage = None;
        let limits = invocation.limits;
        let stdout = BoundedOutput::new(limits.max_stdout_bytes);
        let stderr = BoundedOutput::new(limits.max_stderr_bytes);
        let mut wasi = WasiCtxBuilder::new();
        let clock_origin = std::time::Instant::now();
        wasi.monotonic_clock(InvocationClock {
            origin: clock_origin,
        })
        .stdin(MemoryInputPipe::new(invocation.stdin))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .arg(invocation.name)
        .args(invocation.args)
        .envs(invocation.env);
        let memory_limit = limits.memory_bytes.min(self.config.max_memory_limit);
        // wasmtime-wasi allocates the whole `random_get` buffer (64 MiB by
        // default) before checking it against guest memory; no valid call
        // can ask for more than the memory limit.
        wasi.max_random_size(memory_limit);
        let deadline = deadline_after(clock_origin, limits.timeout);
        let started = Instant::now();
        let (result, peak, memory_hit) = match &module.linked {
            Linked::Core(pre) => {
                let host = HostState::new(
                    wasi.build_p1(),
                    MemoryLimiter::new(memory_limit),
                    clock_origin,
                    deadline,
                );
                let mut store = self.guarded_store(host);
                let result = async {
                    let instance = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| (e, true))?;
                    let start = instance
                        .get_typed_func::<(), ()>(&mut store, "_start")
                        .map_err(|e| (e, true))?;
                    start
                        .call_async(&mut store, ())
                        .await
                        .map_err(|e| (e, false))
                }
                .await;
                let limiter = &store.data().limiter;
                (result, limiter.peak as u64, limiter.hit)
            }
            Linked::Command(pre) => {
                sandbox::deny_network(&mut wasi);
                let counts = usage.insert(Arc::new(EgressUsage::default()));
                let state = ComponentState::new(
                    wasi.build(),
                    MemoryLimiter::for_component(memory_limit),
                    deadline,
                    egress,
                    counts.clone(),
                );
                let mut store = self.guarded_store(state);
                let run = async {
                    let command = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| (e, true))?;
                    match command.wasi_cli_run().call_run(&mut store).await {
                        Ok(Ok(())) => Ok(()),
                        // `run` returned its error: exit code 1, as
                        // `wasmtime run` reports it.
                        Ok(Err(())) => Err((wasmtime::Error::new(I32Exit(1)), false)),
                        Err(e) => Err((e, false)),
                    }
                };
                // Epoch interruption stops wasm code, not a host call: a
                // component blocked in one (a wasi:clocks sleep of an hour)
                // would outlive its time limit. The deadline bounds the
                // call in wall-clock time too (a preview-1 module's only
                // blocking call, `poll_oneoff`, is bounded by it already).
                let result = tokio::time::timeout_at(deadline.into(), run)
                    .await
                    .unwrap_or_else(|_| Err((wasmtime::Error::new(Trap::Interrupt), false)));
                let limiter = &store.data().limiter;
                (result, limiter.peak as u64, limiter.hit)
            }
            Linked::Http(_) => {
                return Err(Failure {
                    error: InvokeError::NotCallable {
                        message: "it is an HTTP function (a wasi:http component): call it with any method on /fn/{name}/…, not POST /execute".into(),
                    },
                    stderr: Bytes::new(),
                    elapsed: Duration::ZERO,
                });
            }
        };
        let elapsed = started.elapsed();

        let (stdout, stdout_overflowed) = stdout.take();
        let (stderr, stderr_overflowed) = stderr.take();
        let fail = |error: InvokeError, stderr: Bytes| Failure {
            error,
            stderr,
            elapsed,
        };
        // Checked first: a guest that ignores the trap's cause cannot turn
        // an output flood into a success or a timeout.
        if stdout_overflowed {
            return Err(fail(
                InvokeError::OutputLimit {
                    stream: "stdout",
                    limit_bytes: limits.max_stdout_bytes,
                },
                stderr,
            ));
        }
        if stderr_overflowed {
            return Err(fail(
                InvokeError::OutputLimit {
                    stream: "stderr",
                    limit_bytes: limits.max_stderr_bytes,
                },
                stderr,
            ));
        }
        let exit_code = match result {
            Ok(()) => 0,
            Err((e, instantiating)) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    exit.0
                } else {
                    return Err(fail(
                        classify(&e, instantiating, memory_hit, memory_limit, limits),
                        stderr,
                    ));
                }
            }
        };
        Ok(Outcome {
            stdout,
            stderr,
            exit_code,
            elapsed,
            peak_memory_bytes: peak,
            outbound: usage.map(|u| u.counts()).unwrap_or_default(),
        })
    }

    /// [`Runtime::execute`] for callers outside an async runtime (tests,
    /// benchmarks, tools): runs it to completion on this thread, inside
    /// wasmtime-wasi's shared tokio runtime. Panics if called from a tokio
    /// worker thread; await [`Runtime::execute`] there.
    pub fn execute_blocking(
        &self,
        module: &LoadedModule,
        invocation: Invocation<'_>,
    ) -> Result<Outcome, Failure> {
        wasmtime_wasi::runtime::in_tokio(self.execute(module, invocation))
    }
}

pub(crate) fn classify(
    e: &wasmtime::Error,
    instantiating: bool,
    memory_hit: bool,
    memory_limit: u64,
    limits: Limits,
) -> InvokeError {
    // A refused `memory.grow` usually surfaces as the guest's own abort (a
    // Rust allocation failure is an `unreachable` trap), so the limiter's
    // record takes precedence over the trap code.
    if memory_hit {
        return InvokeError::MemoryLimit {
            limit_bytes: memory_limit,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => InvokeError::Timeout {
            limit: limits.timeout,
        },
        Some(Trap::StackOverflow) => InvokeError::StackOverflow,
        Some(trap) => {
            let mut message = trap.to_string();
            if let Some(bt) = e.downcast_ref::<WasmBacktrace>() {
                message.push('\n');
                message.push_str(&bt.to_string());
            }
            InvokeError::Trap { message }
        }
        None if instantiating => InvokeError::Instantiate {
            message: format!("{e:#}"),
        },
        None => InvokeError::Trap {
            message: format!("{e:#}"),
        },
    }
}
