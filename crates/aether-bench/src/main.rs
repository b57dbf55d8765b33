//! `aether-bench micro`: the runtime's micro-benchmarks and the edge's
//! memory footprint, printed as a table. Build in release mode:
//!
//! ```text
//! cargo run --release -p aether-bench -- micro
//! ```
//!
//! It needs `examples/hello_world` built for wasm32-wasip1 and the release
//! `aether-engine` binary (`(cd examples && cargo build --release) &&
//! cargo build --release -p aether-engine`, as in BENCHMARKS.md). The
//! other subcommands, `distribution`, `load`, `control` and `tenants`,
//! live in their modules; `aether-bench --help` lists them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_runtime::{Invocation, Limits, ModuleHash, ModuleSource, Runtime, RuntimeConfig};
use anyhow::{Context, bail};
use clap::Parser as _;

/// Executions timed for the cached-execute figure.
const EXECUTIONS: usize = 20_000;
/// Fresh runtimes started for the restart figure.
const RESTARTS: usize = 20;
/// Compilations timed for the compile figure.
const COMPILES: usize = 10;

mod coldstart;
mod control;
mod distribution;
mod kinds;
mod load;
mod tenants;

/// Aether's benchmarks: the runtime's micro-benchmarks, deploy-to-ready
/// across edges, and the side-by-side load benchmark (BENCHMARKS.md says
/// how each is run).
#[derive(Debug, clap::Parser)]
#[command(name = "aether-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

/// One benchmark.
#[derive(Debug, clap::Subcommand)]
enum Bench {
    /// The runtime's micro-benchmarks (cached execute, compile, restart)
    /// and the edge binary's memory footprint, as a table. Needs
    /// examples/hello_world built and the release aether-engine.
    Micro,
    /// What one request costs in process for each kind of function
    /// (preview-1 command, preview-2 command, wasi:http component), side by
    /// side; also the last rows of `micro`. Needs the examples and
    /// bench/wasi-http-hello built (bench/run.sh builds them).
    Kinds,
    /// Deploy-to-ready across three edges, and the cost of event reporting
    /// on the request path (one edge alone vs. attached to a control
    /// plane). Needs aether-engine and aether-control built beside this
    /// binary.
    Distribution,
    /// The side-by-side load benchmark behind bench/run.sh: aether's
    /// `/execute` against `wasmtime serve` and a static server, with wrk.
    Load(load::Options),
    /// The control plane on its embedded redb file vs. on PostgreSQL,
    /// side by side in one run: deploys per second, manifest latency with
    /// 10 000 functions, deploy → served by 3 edges (2 PostgreSQL
    /// replicas). Needs aether-control and aether-engine built beside this
    /// binary and PostgreSQL installed (initdb).
    Control(control::Options),
    /// Many tenants (issue 18) side by side with one function, at c=16:
    /// 1 000 distinct hello_world-sized modules with uniform traffic (with
    /// `memory_init` copy and cow), 10 000 with Zipf traffic, first
    /// requests to never-called functions, the edge's RSS, and fairness
    /// (a hot function beside a cold or looping flood). Needs
    /// examples/hello_world, the release aether-engine and wrk; `--smoke`
    /// runs in about two minutes, `--scenarios` picks parts.
    Tenants(tenants::Options),
    /// Where the first request to a deployed, never-loaded function spends
    /// its time, in process: end to end and by phase (artifact read,
    /// checksum, deserialize, link, first instantiate). Needs
    /// examples/hello_world.
    Coldstart(coldstart::Options),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::Micro => micro(),
        Bench::Kinds => {
            println!("| benchmark | result |");
            println!("|---|---|");
            kinds::rows()
        }
        Bench::Distribution => tokio::runtime::Runtime::new()?.block_on(distribution::run()),
        Bench::Load(options) => tokio::runtime::Runtime::new()?.block_on(load::run(options)),
        Bench::Control(options) => tokio::runtime::Runtime::new()?.block_on(control::run(options)),
        Bench::Tenants(options) => tokio::runtime::Runtime::new()?.block_on(tenants::run(options)),
        Bench::Coldstart(options) => coldstart::run(options),
    }
}

/// One call of hello_world with the input it greets back.
fn hello_invocation() -> Invocation<'static> {
    Invocation {
        name: "hello_world",
        args: &[],
        env: &[],
        stdin: input(),
        limits: Limits::default(),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hello_world() -> anyhow::Result<Vec<u8>> {
    let path = root().join("examples/target/wasm32-wasip1/release/hello_world.wasm");
    std::fs::read(&path).with_context(|| {
        format!(
            "{} missing: build it with `cd examples && cargo build --release`",
            path.display()
        )
    })
}

fn input() -> bytes::Bytes {
    bytes::Bytes::from_static(br#"{"msg":"Hello from Aether!"}"#)
}

fn invoke(rt: &Runtime, module: &aether_runtime::LoadedModule) -> anyhow::Result<()> {
    let out = rt
        .execute_blocking(module, hello_invocation())
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    if &out.stdout[..] != b"Hello from Aether!" {
        bail!("unexpected output {:?}", out.stdout);
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn micro() -> anyhow::Result<()> {
    let wasm = hello_world()?;
    let hash = ModuleHash::of(&wasm);
    println!("| benchmark | result |");
    println!("|---|---|");

    // 1-2. Cached execute, one and two threads, for the default sandbox
    // settings and the alternatives they were chosen over (same run).
    let variants: [(&str, RuntimeConfig); 6] = [
        (
            "default (pooling, keep_resident 2 MiB)",
            RuntimeConfig::default(),
        ),
        (
            "pooling, keep_resident 0",
            RuntimeConfig {
                keep_resident: 0,
                ..RuntimeConfig::default()
            },
        ),
        (
            "pooling, keep_resident 128 KiB",
            RuntimeConfig {
                keep_resident: 128 << 10,
                ..RuntimeConfig::default()
            },
        ),
        (
            "pooling, keep_resident 1 MiB",
            RuntimeConfig {
                keep_resident: 1 << 20,
                ..RuntimeConfig::default()
            },
        ),
        (
            "pooling, keep_resident 1 MiB, decommit batch 64",
            RuntimeConfig {
                keep_resident: 1 << 20,
                decommit_batch: 64,
                ..RuntimeConfig::default()
            },
        ),
        (
            "on-demand allocator (no pooling)",
            RuntimeConfig {
                pooling: false,
                ..RuntimeConfig::default()
            },
        ),
    ];
    for (label, config) in variants {
        let rt = Runtime::new(config)?;
        let (module, _) = rt.load(hash, || Ok(wasm.clone()))?;
        cached_execute(&rt, &module, label)?;
    }
    // 3. Compile time (validation + Cranelift, parallel compilation on).
    let rt = Runtime::new(RuntimeConfig::default())?;
    let mut compiles = Vec::new();
    for _ in 0..COMPILES {
        let t = Instant::now();
        rt.compile(&wasm)?;
        compiles.push(t.elapsed());
    }
    compiles.sort();
    println!(
        "| compile hello_world ({} KiB wasm), median of {COMPILES} | {} |",
        wasm.len() / 1024,
        ms(percentile(&compiles, 0.5))
    );
    drop(rt);

    // 4. First execution after a restart, from the on-disk artifact.
    let dir = tempfile::tempdir()?;
    let config = RuntimeConfig {
        artifact_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    Runtime::new(config.clone())?.load(hash, || Ok(wasm.clone()))?;
    let (mut firsts, mut starts) = (Vec::new(), Vec::new());
    for _ in 0..RESTARTS {
        let t = Instant::now();
        let rt = Runtime::new(config.clone())?;
        starts.push(t.elapsed());
        let t = Instant::now();
        let (module, source) = rt.load(hash, || bail_io("artifact missing"))?;
        invoke(&rt, &module)?;
        firsts.push(t.elapsed());
        if source != ModuleSource::Disk {
            bail!("expected a disk load, got {source:?}");
        }
    }
    firsts.sort();
    starts.sort();
    println!(
        "| first execute after restart (artifact load + instantiate + run), median of {RESTARTS} | {} (p max {}) |",
        ms(percentile(&firsts, 0.5)),
        ms(*firsts.last().expect("RESTARTS > 0"))
    );
    println!(
        "| runtime start (engine + pool + ticker), median | {} |",
        ms(percentile(&starts, 0.5))
    );

    // 5. Each kind of function, side by side.
    kinds::rows()?;

    // 6. The edge binary's memory.
    let rss = edge_rss(&wasm)?;
    println!("| aether-engine RSS, idle (no functions) | {} MiB |", rss.0);
    println!(
        "| aether-engine RSS, after 1000 hello_world requests | {} MiB |",
        rss.1
    );
    Ok(())
}

fn cached_execute(
    rt: &Runtime,
    module: &aether_runtime::LoadedModule,
    label: &str,
) -> anyhow::Result<()> {
    for _ in 0..1_000 {
        invoke(rt, module)?;
    }
    let mut times = Vec::with_capacity(EXECUTIONS);
    let started = Instant::now();
    for _ in 0..EXECUTIONS {
        let t = Instant::now();
        invoke(rt, module)?;
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort();
    println!(
        "| cached execute of hello_world, 1 thread, {label} | p50 {} · p99 {} · {:.0} runs/s |",
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
        EXECUTIONS as f64 / total.as_secs_f64()
    );
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || -> anyhow::Result<()> {
                    for _ in 0..EXECUTIONS / 2 {
                        invoke(rt, module)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("bench thread panicked"))??;
        }
        Ok(())
    })?;
    println!(
        "| cached execute of hello_world, 2 threads, {label} | {:.0} runs/s |",
        EXECUTIONS as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn bail_io(msg: &str) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::other(msg.to_owned()))
}

/// Starts the release `aether-engine`, reads its RSS idle and after load.
fn edge_rss(wasm: &[u8]) -> anyhow::Result<(u64, u64)> {
    let bin = root().join("target/release/aether-engine");
    let dir = tempfile::tempdir()?;
    let funcs = dir.path().join("functions");
    std::fs::create_dir_all(&funcs)?;
    let port = free_port()?;
    let mut child = std::process::Command::new(&bin)
        .args(["--port", &port.to_string()])
        .arg("--func-dir")
        .arg(&funcs)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--standalone")
        .env("RUST_LOG", "warn")
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let result = (|| -> anyhow::Result<(u64, u64)> {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let client = reqwest::Client::new();
            let url = format!("http://127.0.0.1:{port}");
            let mut up = false;
            for _ in 0..100 {
                if client.get(format!("{url}/health")).send().await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !up {
                bail!("aether-engine did not come up");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let idle = rss_mib(child.id())?;
            std::fs::write(funcs.join("hello_world.wasm"), wasm)?;
            for _ in 0..1000 {
                let resp = client
                    .post(format!("{url}/execute"))
                    .json(&serde_json::json!({"function":"hello_world","input":{"msg":"Hello from Aether!"}}))
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!("execute failed: {}", resp.text().await?);
                }
            }
            Ok((idle, rss_mib(child.id())?))
        })
    })();
    child.kill()?;
    child.wait()?;
    result
}

fn rss_mib(pid: u32) -> anyhow::Result<u64> {
    Ok(rss_kib(pid)?.div_ceil(1024))
}

/// A process's resident set (VmRSS) in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// A `/proc/PID/status` figure in KiB: `VmRSS`, `RssAnon` (the process's
/// own memory), `RssFile` (mapped file pages, the page cache's) or
/// `RssShmem` (shared memory: memfd images).
pub(crate) fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn micro_and_distribution_parse() {
        // BENCHMARKS.md: `aether-bench micro`, `aether-bench distribution`.
        assert!(matches!(
            Cli::try_parse_from(["aether-bench", "micro"]).map(|c| c.command),
            Ok(Bench::Micro)
        ));
        assert!(matches!(
            Cli::try_parse_from(["aether-bench", "distribution"]).map(|c| c.command),
            Ok(Bench::Distribution)
        ));
    }

    #[test]
    fn control_and_its_smoke_mode_parse() {
        // BENCHMARKS.md and CI: `aether-bench control [--smoke]`.
        assert!(matches!(
            Cli::try_parse_from(["aether-bench", "control"]).map(|c| c.command),
            Ok(Bench::Control(control::Options { smoke: false }))
        ));
        assert!(matches!(
            Cli::try_parse_from(["aether-bench", "control", "--smoke"]).map(|c| c.command),
            Ok(Bench::Control(control::Options { smoke: true }))
        ));
    }

    #[test]
    fn bad_command_lines_are_clap_errors() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| {
            Cli::try_parse_from(["aether-bench"].iter().chain(args))
                .map(|c| c.command)
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(&["load", "--bogus"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["load", "--duration"]), ErrorKind::InvalidValue);
        assert_eq!(
            kind(&["load", "--duration", "soon"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["load", "--concurrency", "1,x"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["load", "extra"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["bogus"]), ErrorKind::InvalidSubcommand);
        assert_eq!(
            kind(&[]),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }
}
