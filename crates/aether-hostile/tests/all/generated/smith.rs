//! Generates WASI command modules with wasm-smith and runs them through the
//! real runtime, checking what the host guarantees whatever the guest does.
//!
//! Shared by `generated::wasm_smith_modules_never_take_the_host_down` and the
//! `execute_generated` fuzz target (`fuzz/fuzz_targets/execute_generated.rs`
//! includes this file with `#[path]`), so both check the same invariants.

use std::time::{Duration, Instant};

use aether_runtime::{
    CompileError, Invocation, InvokeError, Limits, ModuleHash, Runtime, RuntimeConfig,
};
use arbitrary::Unstructured;

/// Small limits, so that a generated module reaches them quickly.
pub const LIMITS: Limits = Limits {
    timeout: Duration::from_millis(100),
    memory_bytes: 16 << 20,
    max_stdout_bytes: 64 << 10,
    max_stderr_bytes: 64 << 10,
};

/// How far past its timeout an invocation may return. Generous: the
/// machine is shared and debug builds are slow; a guest that escaped the
/// epoch deadline would take far longer.
pub const MARGIN: Duration = Duration::from_secs(2);

/// The WASI functions a generated module may import (each one with
/// probability 1/2), with their preview-1 signatures. Arguments come from
/// the generated code: mostly wild pointers and lengths.
const WASI_IMPORTS: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
)"#;

/// Initial memory sizes in pages, one picked per module. 257 pages is just
/// over the 16 MiB limit (refused at instantiation).
const MEMORY_PAGES: &[u64] = &[0, 1, 1, 1, 2, 17, 64, 257];

/// One generated module.
pub struct Generated {
    /// Its wasm.
    pub wasm: Vec<u8>,
    /// Initial pages of its memory (its only one, exported as `memory`).
    pub initial_pages: u64,
    /// Whether `ensure_termination` instrumented it (loops and calls
    /// consume fuel and trap when it runs out); the others may loop into
    /// the timeout.
    pub terminates: bool,
}

/// A WASI command module from `u`: it exports `_start: [] -> []` and a
/// memory `memory`, may import any of [`WASI_IMPORTS`], and uses only the
/// wasm features of Aether's engine (`aether-runtime` `sandbox::base_config`:
/// wasmtime's defaults without memory64 (these are core modules, so the
/// engine's component model plays no part), built without the
/// `gc` and `threads` features). Multiple memories and tables are valid
/// there but refused by the pool (one each); they are tested on their own
/// (docs/SECURITY.md case 12) and not generated here, so that most modules
/// run.
pub fn generate(u: &mut Unstructured<'_>, terminates: bool) -> arbitrary::Result<Generated> {
    let initial_pages = *u.choose(MEMORY_PAGES)?;
    let maximum = if u.arbitrary()? {
        format!(" {}", initial_pages + u.int_in_range(0..=512)?)
    } else {
        String::new()
    };
    let exports = wat::parse_str(format!(
        r#"(module (memory (export "memory") {initial_pages}{maximum}) (func (export "_start")))"#
    ))
    .expect("the exports module is valid WAT");
    let config = wasm_smith::Config {
        exports: Some(exports),
        available_imports: Some(wat::parse_str(WASI_IMPORTS).expect("valid WAT")),
        max_funcs: 12,
        max_instructions: 200,
        // The exported memory is added after the arbitrary ones and beyond
        // this limit: 0 keeps it the only one.
        max_memories: 0,
        max_tables: 1,
        max_table_elements: 1_000,
        max_data_segments: 10,
        max_element_segments: 10,
        max_globals: 20,
        max_types: 20,
        max_exports: 4,
        max_tags: 0,
        // Enabled in our engine (wasmtime 48's WASM3 set).
        simd_enabled: true,
        relaxed_simd_enabled: true,
        tail_call_enabled: true,
        extended_const_enabled: true,
        bulk_memory_enabled: true,
        multi_value_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        // Disabled, or not compiled into our wasmtime. Without its `gc`
        // feature wasmtime accepts `funcref` but refuses `externref` ("gc
        // types are disallowed"), and wasm-smith has no switch for
        // externref alone: reference types off keeps the MVP funcref table.
        reference_types_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        wide_arithmetic_enabled: false,
        compact_imports_enabled: false,
        acquire_release_atomics_enabled: false,
        multibyte_array_access_enabled: false,
        ..wasm_smith::Config::default()
    };
    let mut module = wasm_smith::Module::new(config, u)?;
    if terminates {
        // Fails only for raw function bodies (`allow_invalid_funcs`, off).
        module
            .ensure_termination(u.int_in_range(100..=100_000)?)
            .expect("generated function bodies can be instrumented");
    }
    Ok(Generated {
        wasm: module.to_bytes(),
        initial_pages,
        terminates,
    })
}

/// A runtime configured as an edge's (pooling allocator, epoch deadline),
/// with few pool slots.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 4,
        cache_size: 4,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// What happened to the modules run so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// `_start` returned or called `proc_exit`.
    pub ok: usize,
    /// Trapped (including a `proc_exit` code WASI reserves) or overflowed
    /// the stack.
    pub trap: usize,
    /// Interrupted at the timeout.
    pub timeout: usize,
    /// Hit the memory limit while running.
    pub memory: usize,
    /// Declared more initial memory than the limit (refused at
    /// instantiation).
    pub memory_declared: usize,
    /// Hit an output limit.
    pub output: usize,
    /// Could not be instantiated for another reason (e.g. `proc_exit`
    /// with a reserved code in a wasm start function).
    pub instantiate: usize,
    /// Refused at load as invalid wasm; the first reason is kept.
    pub invalid: usize,
    /// Refused at load as not a runnable command module.
    pub not_command: usize,
    /// First load refusal, for the summary.
    pub first_refusal: Option<String>,
    /// Slowest load (validate + compile + link).
    pub slowest_load: Duration,
    /// Slowest invocation.
    pub slowest_run: Duration,
}

impl Tally {
    /// Modules that were run: instantiated, then ran guest code until they
    /// returned, trapped or hit a limit (a trap may come from a start
    /// function or a data segment).
    pub fn ran(&self) -> usize {
        self.ok + self.trap + self.timeout + self.memory + self.output
    }

    /// Every module counted.
    pub fn total(&self) -> usize {
        self.ran() + self.memory_declared + self.instantiate + self.invalid + self.not_command
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} modules: ok {} trap {} timeout {} memory {} (+{} declared too large) output {} instantiate {} invalid {} not_command {}; ran {}; slowest load {:?}, slowest run {:?}",
            self.total(),
            self.ok,
            self.trap,
            self.timeout,
            self.memory,
            self.memory_declared,
            self.output,
            self.instantiate,
            self.invalid,
            self.not_command,
            self.ran(),
            self.slowest_load,
            self.slowest_run,
        )
    }
}

/// Loads and runs `module` on `rt` with [`LIMITS`] and checks what the host
/// guarantees: no panic, the invocation returns within the timeout plus
/// [`MARGIN`], peak memory and output within their limits. Refusals,
/// traps and limits are all fine results, counted in `tally`.
pub fn run(rt: &Runtime, module: &Generated, tally: &mut Tally) {
    let hash = ModuleHash::of(&module.wasm);
    let started = Instant::now();
    let loaded = rt.load(hash, || Ok(module.wasm.clone()));
    tally.slowest_load = tally.slowest_load.max(started.elapsed());
    let loaded = match loaded {
        Ok((loaded, _)) => loaded,
        Err(e) => {
            match e {
                CompileError::InvalidWasm { .. } => tally.invalid += 1,
                CompileError::NotCommand { .. } => tally.not_command += 1,
                other => panic!("unexpected load error for in-memory bytes: {other}"),
            }
            tally.first_refusal.get_or_insert_with(|| e.to_string());
            return;
        }
    };
    let env = [("AETHER".to_owned(), "generated".to_owned())];
    let started = Instant::now();
    let result = rt.execute_blocking(
        &loaded,
        Invocation {
            name: "generated",
            args: &["--flag".to_owned()],
            env: &env,
            stdin: bytes::Bytes::from_static(b"some input for fd_read\n"),
            limits: LIMITS,
        },
    );
    let took = started.elapsed();
    rt.evict(&hash);
    tally.slowest_run = tally.slowest_run.max(took);
    assert!(
        took <= LIMITS.timeout + MARGIN,
        "invocation took {took:?} with a timeout of {:?} (terminates: {}): {result:?}",
        LIMITS.timeout,
        module.terminates,
    );
    match result {
        Ok(out) => {
            assert!(
                out.peak_memory_bytes <= LIMITS.memory_bytes,
                "peak memory {} over the limit",
                out.peak_memory_bytes
            );
            assert!(out.stdout.len() <= LIMITS.max_stdout_bytes);
            assert!(out.stderr.len() <= LIMITS.max_stderr_bytes);
            tally.ok += 1;
        }
        Err(failure) => {
            assert!(failure.stderr.len() <= LIMITS.max_stderr_bytes);
            match failure.error {
                InvokeError::Trap { .. } | InvokeError::StackOverflow => tally.trap += 1,
                InvokeError::Timeout { .. } => tally.timeout += 1,
                InvokeError::MemoryLimit { .. }
                    if module.initial_pages << 16 > LIMITS.memory_bytes =>
                {
                    tally.memory_declared += 1
                }
                InvokeError::MemoryLimit { .. } => tally.memory += 1,
                InvokeError::OutputLimit { .. } => tally.output += 1,
                InvokeError::Instantiate { .. } => tally.instantiate += 1,
                // Only a wasi:http component is not callable as a command;
                // every generated module is a core module.
                InvokeError::NotCallable { message } => {
                    panic!("a generated module was not callable: {message}")
                }
            }
        }
    }
}
