//! Criterion micro-benchmarks of the runtime (issue 7, item 4):
//!
//! ```text
//! (cd examples && cargo build --release)
//! cargo build --release -p aether-engine -p aether-control
//! cargo bench -p aether-bench --bench runtime
//! ```
//!
//! The same things `aether-bench micro` times with a hand-rolled loop, with
//! its inputs (`examples/hello_world`, stdin `{"msg":"Hello from Aether!"}`,
//! default limits, default [`RuntimeConfig`]: pooling allocator), through
//! the public API of `aether-runtime`:
//!
//! - `execute/cached_hello_world`: one full invocation of an already loaded
//!   module (fresh `Store` and WASI context, instantiate from the
//!   `InstancePre`, run `_start`, collect and check the output). Target
//!   < 20 µs.
//! - `instantiate_only/empty_start`: the runtime has no public way to
//!   instantiate without running `_start` (and none is added for this), so
//!   this is a full `execute` of a WAT module whose `_start` is empty and
//!   that exports a 17-page memory like hello_world's: everything an
//!   invocation costs except the guest's own work.
//! - `restart/first_execute_from_artifact`: a fresh `Runtime` over an
//!   artifact directory that already holds hello_world's compiled artifact;
//!   timed: `load` (read, checksum, deserialize, link) plus the first
//!   execute. Creating the runtime (engine, pool, epoch ticker) and dropping
//!   it are setup, not timed. Target < 2 ms.
//! - `compile/1mb_module`: `Runtime::compile` (validation + Cranelift,
//!   parallel compilation) of a generated module of about 1 MB (straight-
//!   line i32 arithmetic in many functions; its size is printed). Flat
//!   sampling, 10 samples of one compile each.
//! - `deploy_to_ready/3_edges`: the scenario of `aether-bench distribution`
//!   (whose code lives in the binary and cannot be called from here), redone
//!   with the same `aether-e2e` harness and the same module shape: one
//!   control plane and three edges as real processes on loopback; timed from
//!   the control plane's deploy acknowledgement until all three edges serve
//!   the new version through `/execute`. It runs the `aether-engine` and
//!   `aether-control` binaries beside the bench executable
//!   (`target/release` for `cargo bench`): build them first, and rebuild
//!   them after changing the servers, or this measures stale binaries.
//!
//! Setup is lazy, so a filter (`cargo bench -p aether-bench --bench runtime
//! -- execute`) starts no servers and generates no module it does not need.
//! The whole run took about a minute on a 2-vCPU VM (results and settings in
//! BENCHMARKS.md); the compile and deploy groups use flat sampling with 10
//! samples so that they stay bounded on a slower or busier machine.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aether_e2e::{Process, deploy_until_served, start_cluster};
use aether_runtime::{
    Invocation, Limits, LoadedModule, ModuleHash, ModuleSource, Runtime, RuntimeConfig,
};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `examples/hello_world`, as `aether-bench micro` reads it.
fn hello_world() -> Vec<u8> {
    let path = root().join("examples/target/wasm32-wasip1/release/hello_world.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build it first with `cd examples && cargo build --release`",
            path.display()
        )
    })
}

fn invoke(rt: &Runtime, module: &LoadedModule, name: &str, stdin: &'static [u8]) -> Vec<u8> {
    let out = rt
        .execute_blocking(
            module,
            Invocation {
                name,
                args: &[],
                env: &[],
                stdin: bytes::Bytes::from_static(stdin),
                limits: Limits::default(),
            },
        )
        .unwrap_or_else(|f| panic!("{name} failed: {f}"));
    assert_eq!(out.exit_code, 0, "{name} exited with {}", out.exit_code);
    out.stdout.to_vec()
}

/// One hello_world invocation with `aether-bench micro`'s input, checked.
fn run_hello(rt: &Runtime, module: &LoadedModule) {
    let stdout = invoke(
        rt,
        module,
        "hello_world",
        br#"{"msg":"Hello from Aether!"}"#,
    );
    assert_eq!(
        stdout, b"Hello from Aether!",
        "unexpected hello_world output"
    );
}

fn no_wasm() -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::other(
        "the module should have come from the on-disk artifact",
    ))
}

fn load(rt: &Runtime, wasm: &[u8]) -> Arc<LoadedModule> {
    rt.load(ModuleHash::of(wasm), || Ok(wasm.to_vec()))
        .unwrap_or_else(|e| panic!("load failed: {e}"))
        .0
}

fn execute_cached(c: &mut Criterion) {
    let mut group = c.benchmark_group("execute");
    let mut state: Option<(Runtime, Arc<LoadedModule>)> = None;
    group.bench_function("cached_hello_world", |b| {
        let (rt, module) = state.get_or_insert_with(|| {
            let rt = Runtime::new(RuntimeConfig::default()).expect("runtime starts");
            let module = load(&rt, &hello_world());
            (rt, module)
        });
        b.iter(|| run_hello(rt, module));
    });
    group.finish();
}

fn instantiate_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate_only");
    let mut state: Option<(Runtime, Arc<LoadedModule>)> = None;
    group.bench_function("empty_start", |b| {
        let (rt, module) = state.get_or_insert_with(|| {
            let wasm = wat::parse_str(
                r#"(module (memory (export "memory") 17) (func (export "_start")))"#,
            )
            .expect("valid WAT");
            let rt = Runtime::new(RuntimeConfig::default()).expect("runtime starts");
            let module = load(&rt, &wasm);
            (rt, module)
        });
        b.iter(|| black_box(invoke(rt, module, "empty", b"")));
    });
    group.finish();
}

fn restart(c: &mut Criterion) {
    let mut group = c.benchmark_group("restart");
    group.sample_size(50);
    let mut state: Option<(tempfile::TempDir, RuntimeConfig, ModuleHash)> = None;
    group.bench_function("first_execute_from_artifact", |b| {
        let (_dir, config, hash) = state.get_or_insert_with(|| {
            let wasm = hello_world();
            let dir = tempfile::tempdir().expect("temp dir");
            let config = RuntimeConfig {
                artifact_dir: Some(dir.path().join("artifacts")),
                ..RuntimeConfig::default()
            };
            // Compiles hello_world and writes its artifact.
            let rt = Runtime::new(config.clone()).expect("runtime starts");
            let (_, source) = rt
                .load(ModuleHash::of(&wasm), || Ok(wasm.clone()))
                .expect("hello_world loads");
            assert_eq!(source, ModuleSource::Compiled);
            (dir, config, ModuleHash::of(&wasm))
        });
        b.iter_batched(
            || Runtime::new(config.clone()).expect("runtime starts"),
            |rt| {
                let (module, source) = rt.load(*hash, no_wasm).expect("artifact loads");
                assert_eq!(source, ModuleSource::Disk, "expected a disk load");
                run_hello(&rt, &module);
                // Dropped after the clock stops: the runtime's teardown is
                // not part of a restart's first request.
                (module, rt)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// WAT of `functions` functions of straight-line i32 arithmetic (64
/// statements each, constants varied so nothing folds) and a `_start` that
/// calls them all.
fn big_module_wat(functions: usize) -> String {
    use std::fmt::Write;
    let mut wat = String::from("(module\n");
    for f in 0..functions {
        write!(
            wat,
            "(func $f{f} (param i32 i32) (result i32) (local i32)\n local.get 0\n local.set 2\n"
        )
        .unwrap();
        for s in 0..64u32 {
            let k = (f as u32).wrapping_mul(64).wrapping_add(s);
            let c1 = 1000 + k.wrapping_mul(2_654_435_761) % 60_000;
            let c2 = 1000 + k.wrapping_mul(40_503) % 60_000;
            let op = ["i32.mul", "i32.sub", "i32.and", "i32.or"][(k % 4) as usize];
            writeln!(
                wat,
                " local.get 2 i32.const {c1} i32.add local.get 1 {op} i32.const {c2} i32.xor local.set 2"
            )
            .unwrap();
        }
        wat.push_str(" local.get 2)\n");
    }
    wat.push_str("(func (export \"_start\") (local i32)\n");
    for f in 0..functions {
        writeln!(wat, " local.get 0 i32.const {f} call $f{f} local.set 0").unwrap();
    }
    wat.push_str("))\n");
    wat
}

/// A module of about 1 MB (10^6 bytes): the function count is scaled from a
/// probe of 100 functions.
fn big_module() -> Vec<u8> {
    const TARGET: usize = 1_000_000;
    let probe = wat::parse_str(big_module_wat(100))
        .expect("valid WAT")
        .len();
    let functions = (TARGET * 100).div_ceil(probe);
    let wasm = wat::parse_str(big_module_wat(functions)).expect("valid WAT");
    println!(
        "compile/1mb_module: {} bytes of wasm ({:.2} MiB), {functions} functions",
        wasm.len(),
        wasm.len() as f64 / (1 << 20) as f64
    );
    wasm
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    let mut state: Option<(Runtime, Vec<u8>)> = None;
    group.bench_function("1mb_module", |b| {
        let (rt, wasm) = state.get_or_insert_with(|| {
            let wasm = big_module();
            let rt = Runtime::new(RuntimeConfig::default()).expect("runtime starts");
            (rt, wasm)
        });
        b.iter_with_large_drop(|| rt.compile(black_box(wasm)).expect("module compiles"));
    });
    group.finish();
}

/// The module of `aether-bench distribution`: distinct per deploy, prints
/// `v{i:06}`.
fn versioned_module(i: usize) -> Vec<u8> {
    wat::parse_str(aether_fixtures::print_wat(&format!("v{i:06}"))).expect("valid WAT")
}

/// One control plane and three edges; processes are killed on drop, before
/// their directory is removed (field order).
struct Cluster {
    edges: Vec<Process>,
    control: Process,
    tokio: tokio::runtime::Runtime,
    deploys: usize,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        // Where `aether_e2e::bin_dir` looks; checked here so that a missing
        // binary is an error rather than a nested `cargo build`.
        let exe = std::env::current_exe().expect("executable path");
        let mut bin = exe.parent().expect("executable directory").to_owned();
        if bin.ends_with("deps") {
            bin.pop();
        }
        for name in ["aether-engine", "aether-control"] {
            assert!(
                bin.join(name).exists(),
                "{} missing: build the servers first with `cargo build --release -p aether-engine -p aether-control`",
                bin.join(name).display()
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let tokio = tokio::runtime::Runtime::new().expect("tokio runtime");
        let (control, edges) = tokio
            .block_on(start_cluster(dir.path(), 3))
            .unwrap_or_else(|e| panic!("cannot start the cluster: {e:#}"));
        Cluster {
            edges,
            control,
            tokio,
            deploys: 0,
            _dir: dir,
        }
    }

    /// Deploys a new version and returns the time from the acknowledgement
    /// until every edge serves it (as `aether-bench distribution`).
    fn deploy_to_ready(&mut self) -> Duration {
        let i = self.deploys;
        self.deploys += 1;
        let wasm = versioned_module(i);
        let expected = format!("v{i:06}");
        self.tokio
            .block_on(deploy_until_served(
                &self.control.url,
                &self.edges,
                "bench",
                &wasm,
                &expected,
                Duration::from_secs(30),
            ))
            .unwrap_or_else(|e| panic!("deploy {i}: {e:#}"))
    }
}

fn deploy_to_ready(c: &mut Criterion) {
    let mut group = c.benchmark_group("deploy_to_ready");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut cluster: Option<Cluster> = None;
    group.bench_function("3_edges", |b| {
        let cluster = cluster.get_or_insert_with(Cluster::start);
        b.iter_custom(|iters| (0..iters).map(|_| cluster.deploy_to_ready()).sum());
    });
    group.finish();
}

criterion_group!(
    benches,
    execute_cached,
    instantiate_only,
    restart,
    compile,
    deploy_to_ready
);
criterion_main!(benches);
