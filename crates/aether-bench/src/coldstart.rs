//! `aether-bench coldstart`: where the first request to a deployed but
//! never-loaded function spends its time, in process, one thread.
//!
//! It compiles `n` distinct hello_world-sized tenants (the `tenants`
//! benchmark's copies, each with its own custom section) into an artifact
//! directory with one runtime, then starts a second runtime on that
//! directory, as an edge restarted with everything compiled, and measures:
//!
//! - **end to end**: [`Runtime::load`] then [`Runtime::execute`] of each
//!   tenant once (its first request), then once more (hot, from memory);
//! - **by phase**: reading an artifact file and its sha256 (timed here,
//!   as the runtime does them on a disk load), the first request to a
//!   module loaded at start (as an edge's start-up scan loads every
//!   deployed function) but never run, its second instance, and a load of
//!   a module pushed out of the linked cache (`cache_size` 1) by the next
//!   one;
//! - **memory**: this process's RSS growth with every tenant loaded.

use std::time::{Duration, Instant};

use aether_runtime::{ModuleHash, Runtime, RuntimeConfig};
use anyhow::bail;
use sha2::{Digest, Sha256};

/// Command-line options of `aether-bench coldstart`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Distinct tenants compiled and then loaded once each.
    #[arg(long, value_name = "N", default_value_t = 200)]
    tenants: usize,
}

/// Timings of one phase over every tenant.
struct Phase {
    name: &'static str,
    times: Vec<Duration>,
}

impl Phase {
    fn new(name: &'static str, n: usize) -> Self {
        Phase {
            name,
            times: Vec::with_capacity(n),
        }
    }

    /// Times `f`, records it, returns its value.
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let value = f();
        self.times.push(t.elapsed());
        value
    }

    fn row(&mut self) -> String {
        self.times.sort();
        let p50 = crate::percentile(&self.times, 0.5);
        let p99 = crate::percentile(&self.times, 0.99);
        format!(
            "| {} | {} | {} |",
            self.name,
            crate::load::fmt_us(p50.as_secs_f64() * 1e6),
            crate::load::fmt_us(p99.as_secs_f64() * 1e6)
        )
    }
}

/// Runs the benchmark.
pub fn run(o: Options) -> anyhow::Result<()> {
    let hello = crate::hello_world()?;
    let dir = tempfile::tempdir()?;
    let artifacts = dir.path().join("artifacts");
    let config = RuntimeConfig {
        artifact_dir: Some(artifacts.clone()),
        ..RuntimeConfig::default()
    };
    let tenants: Vec<Vec<u8>> = (0..o.tenants)
        .map(|i| crate::tenants::tenant(&hello, i))
        .collect();
    let hashes: Vec<ModuleHash> = tenants.iter().map(|w| ModuleHash::of(w)).collect();
    eprintln!("compiling {} tenants…", o.tenants);
    let started = Instant::now();
    {
        let rt = Runtime::new(config.clone())?;
        for (wasm, hash) in tenants.iter().zip(&hashes) {
            rt.load(*hash, || Ok(wasm.clone()))?;
        }
    }
    eprintln!("  {:.1} s", started.elapsed().as_secs_f64());

    // End to end through the runtime, restarted on the artifacts.
    let rt = Runtime::new(config)?;
    let mut first = Phase::new(
        "end to end: first request, module not in memory (load from disk + execute)",
        o.tenants,
    );
    let mut hot = Phase::new(
        "end to end: hot request (load from memory + execute)",
        o.tenants,
    );
    for (wasm, hash) in tenants.iter().zip(&hashes) {
        for phase in [&mut first, &mut hot] {
            let (module, _) = phase.time(|| -> anyhow::Result<_> {
                let (module, source) = rt.load(*hash, || Ok(wasm.clone()))?;
                check(rt.execute_blocking(&module, crate::hello_invocation()))?;
                Ok((module, source))
            })?;
            drop(module);
        }
    }
    let stats = rt.stats();
    if stats.compiled != 0 {
        bail!("the restarted runtime compiled {} modules", stats.compiled);
    }

    // By phase, through the runtime and around it.
    let names = std::fs::read_dir(&artifacts)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect::<Vec<_>>();
    if names.len() < o.tenants {
        bail!("{} artifacts for {} tenants", names.len(), o.tenants);
    }
    let n = o.tenants;
    let mut read = Phase::new("read an artifact file", n);
    let mut checksum = Phase::new("sha256 of an artifact file", n);
    let mut sizes = Vec::with_capacity(n);
    for path in &names {
        let bytes = read.time(|| std::fs::read(path))?;
        sizes.push(bytes.len());
        checksum.time(|| Sha256::digest(&bytes));
    }
    let mut held_first = Phase::new(
        "end to end: first request, module held since start (load + execute)",
        n,
    );
    let mut run2 = Phase::new("execute: second instance", n);
    let mut reload = Phase::new("load of a module pushed out of the linked cache", n);
    let rss_before = own_rss_kib()?;
    // As an edge's start-up scan does: every module loaded, none run. One
    // linked module at a time (cache_size 1): loading tenant i pushes
    // tenant i - 1 out of the linked cache, and loading that again finds
    // it held.
    let rt = Runtime::new(RuntimeConfig {
        artifact_dir: Some(artifacts.clone()),
        cache_size: 1,
        ..RuntimeConfig::default()
    })?;
    for (wasm, hash) in tenants.iter().zip(&hashes) {
        rt.load(*hash, || Ok(wasm.clone()))?;
    }
    let mut previous: Option<usize> = None;
    for (i, (wasm, hash)) in tenants.iter().zip(&hashes).enumerate() {
        let module = held_first.time(|| -> anyhow::Result<_> {
            let (module, _) = rt.load(*hash, || Ok(wasm.clone()))?;
            check(rt.execute_blocking(&module, crate::hello_invocation()))?;
            Ok(module)
        })?;
        run2.time(|| check(rt.execute_blocking(&module, crate::hello_invocation())))?;
        drop(module);
        if let Some(p) = previous {
            let (module, _) = reload.time(|| rt.load(hashes[p], || Ok(tenants[p].clone())))?;
            drop(module);
        }
        previous = Some(i);
    }
    let rss_after = own_rss_kib()?;
    sizes.sort();

    println!(
        "## First request to a deployed function, in process (`aether-bench coldstart --tenants {}`)\n",
        o.tenants
    );
    println!("- Machine: {}.", crate::load::machine());
    println!(
        "- {} distinct hello_world tenants, artifacts {} KiB each (median); one thread; p50 and p99 over the tenants.\n",
        o.tenants,
        sizes[sizes.len() / 2] / 1024
    );
    let per_module =
        |field: usize| rss_after[field].saturating_sub(rss_before[field]) as f64 / n as f64;
    println!(
        "Memory with {n} modules loaded, linked and run once, per module: RSS {:.0} KiB, of which \
         anonymous {:.0} KiB, mapped files {:.0} KiB, shared memory (memfd images) {:.0} KiB.\n",
        per_module(0),
        per_module(1),
        per_module(2),
        per_module(3),
    );
    println!("| phase | p50 | p99 |");
    println!("|---|---:|---:|");
    for phase in [
        &mut first,
        &mut hot,
        &mut held_first,
        &mut read,
        &mut checksum,
        &mut reload,
        &mut run2,
    ] {
        println!("{}", phase.row());
    }
    Ok(())
}

/// Checks a hello world's answer.
fn check(result: Result<aether_runtime::Outcome, aether_runtime::Failure>) -> anyhow::Result<()> {
    let out = result.map_err(|f| anyhow::anyhow!("{f}"))?;
    if &out.stdout[..] != b"Hello from Aether!" {
        bail!("unexpected output {:?}", out.stdout);
    }
    Ok(())
}

/// This process's resident set in KiB: VmRSS, RssAnon, RssFile, RssShmem.
fn own_rss_kib() -> anyhow::Result<[u64; 4]> {
    let pid = std::process::id();
    let mut out = [0; 4];
    for (slot, field) in out
        .iter_mut()
        .zip(["VmRSS", "RssAnon", "RssFile", "RssShmem"])
    {
        *slot = crate::status_kib(pid, field)?;
    }
    Ok(out)
}
