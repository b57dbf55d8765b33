//! `aether-bench tenants`: the many-tenant measurements of issue 18, side
//! by side in one run with a single-function baseline, all at c=16 with
//! wrk against standalone release edges (started through the `aether-e2e`
//! harness on free loopback ports, killed when dropped):
//!
//! - **single**: `hello_world` alone on an edge with the defaults;
//! - **uniform**: 1 000 distinct modules, names picked uniformly at random,
//!   default `cache_size` (100);
//! - **zipf**: 10 000 deployed, names drawn from a Zipf distribution with
//!   s = 1.1 (rank 1 is `t00000`);
//! - **first request**: after the zipf load, 200 more functions deployed on
//!   the same edge but never named by the load, each called once with
//!   reqwest, one at a time: p50/p99 of their latency, and where each
//!   module came from (`cache` in the answer);
//! - **RSS**: the 10 000-function edge's VmRSS idle (after its start-up
//!   scan has compiled everything) and after the zipf load.
//!
//! The tenants are distinct modules of `hello_world`'s size: copies of
//! `examples/target/wasm32-wasip1/release/hello_world.wasm`, each with a
//! custom section `aether-tenant` holding its index appended. The code is
//! identical, so each copy costs the same to compile, but the bytes (and so
//! the module hashes) differ: each copy is compiled, stored as an artifact
//! and cached separately, and nothing is shared by hash.
//!
//! The uniform and zipf edges share one directory: the zipf edge is the
//! uniform one restarted with more functions, so the first 1 000 artifacts
//! are reused and only the rest are compiled. Every edge compiles what it
//! finds at start-up, one module at a time (≈ 60 ms each for hello_world
//! on a 2-core box, so the full 10 000 take minutes); the benchmark waits
//! for every artifact before measuring. `--smoke` runs 50 and 500 functions
//! (50 never-called ones) at 1 s per point.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_e2e::{Process, free_port, start_standalone_edge_with};
use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::load::{Point, command_line, fmt_us, load_average, machine, run_wrk, wrk_version};

/// Connections wrk opens for every point.
const CONCURRENCY: u32 = 16;
/// The Zipf exponent of the zipf scenario.
const ZIPF_S: f64 = 1.1;
/// The input every hello world gets, and the output it must answer.
const HELLO_MSG: &str = "Hello from Aether!";
/// The custom section that makes each tenant's bytes distinct.
const SECTION_NAME: &str = "aether-tenant";

/// Command-line options of `aether-bench tenants`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The wrk binary that drives the load.
    #[arg(long, value_name = "PATH", default_value = "wrk")]
    wrk: String,
    /// Seconds per measured point (each gets a 1 s warm-up first);
    /// `--smoke` sets 1.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    duration: u64,
    /// A quick end-to-end check: 1 s per point, 50 and 500 functions
    /// (50 never called) instead of 1 000 and 10 000 (200).
    #[arg(long)]
    pub smoke: bool,
}

/// How many functions each scenario deploys.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    uniform: usize,
    zipf: usize,
    fresh: usize,
}

impl Options {
    fn sizes(&self) -> Sizes {
        if self.smoke {
            Sizes {
                uniform: 50,
                zipf: 500,
                fresh: 50,
            }
        } else {
            Sizes {
                uniform: 1000,
                zipf: 10_000,
                fresh: 200,
            }
        }
    }

    fn secs(&self) -> u64 {
        if self.smoke { 1 } else { self.duration }
    }
}

/// Appends `value` to `out` as unsigned LEB128.
fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A custom section (id 0): its size, then the name (length-prefixed),
/// then `payload`; valid anywhere after the module header.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    leb128(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut section = vec![0];
    leb128(&mut section, body.len());
    section.extend_from_slice(&body);
    section
}

/// Tenant `index`: `base` with a custom section `aether-tenant` holding
/// the index (decimal) appended. Same code, distinct bytes.
fn tenant(base: &[u8], index: usize) -> Vec<u8> {
    let mut wasm = base.to_vec();
    wasm.extend_from_slice(&custom_section(SECTION_NAME, index.to_string().as_bytes()));
    wasm
}

/// The name of tenant `index` (Zipf rank `index + 1`).
fn tenant_name(index: usize) -> String {
    format!("t{index:05}")
}

/// The name of never-called function `index`.
fn fresh_name(index: usize) -> String {
    format!("x{index:05}")
}

/// One line of the table.
struct Row {
    scenario: &'static str,
    functions: usize,
    target: &'static str,
    point: Point,
}

/// What a wrk connection sends.
enum Traffic {
    /// `hello_world`, every time.
    Single,
    /// One of the first `n` tenants, picked uniformly.
    Uniform { n: usize },
    /// Tenant of rank k among `n` with probability ∝ 1/k^s.
    Zipf { n: usize, s: f64 },
}

/// Writes the wrk Lua script for `traffic` and returns its path.
fn script(dir: &Path, name: &str, traffic: Traffic) -> anyhow::Result<PathBuf> {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.path = \"/execute\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    );
    // Every body is built at init; request() only picks one.
    let bodies = |n: usize| {
        format!(
            "local bodies = {{}}\n\
             for i = 1, {n} do bodies[i] = string.format('{{\"function\":\"t%05d\",\"input\":{{\"msg\":\"{HELLO_MSG}\"}}}}', i - 1) end\n\
             local threads = 0\n\
             function setup(thread)\n  threads = threads + 1\n  thread:set(\"id\", threads)\nend\n"
        )
    };
    match traffic {
        Traffic::Single => {
            let body = json!({"function": "hello_world", "input": {"msg": HELLO_MSG}});
            writeln!(lua, "wrk.body = [==[{body}]==]")?;
        }
        Traffic::Uniform { n } => {
            lua.push_str(&bodies(n));
            writeln!(
                lua,
                "function init(args)\n  math.randomseed(os.time() * 1000 + id)\nend\n\
                 function request()\n  return wrk.format(nil, nil, nil, bodies[math.random(1, {n})])\nend"
            )?;
        }
        Traffic::Zipf { n, s } => {
            lua.push_str(&bodies(n));
            // cdf[k] = P(rank <= k); a draw is the first k with u <= cdf[k].
            writeln!(
                lua,
                r#"local cdf = {{}}
local total = 0
for k = 1, {n} do total = total + 1 / (k ^ {s}); cdf[k] = total end
for k = 1, {n} do cdf[k] = cdf[k] / total end
cdf[{n}] = 1
function init(args)
  math.randomseed(os.time() * 1000 + id)
end
function request()
  local u = math.random()
  local lo, hi = 1, {n}
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format(nil, nil, nil, bodies[lo])
end"#
            )?;
        }
    }
    lua.push_str(
        r#"function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("AETHER_RESULT %d %d %.1f %.1f %d\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#,
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// A 1 s warm-up, then the measured point, printed as it comes.
async fn measure(o: &Options, base: &str, script: &Path, label: &str) -> anyhow::Result<Point> {
    run_wrk(&o.wrk, base, script, CONCURRENCY, 1).await?;
    let p = run_wrk(&o.wrk, base, script, CONCURRENCY, o.secs()).await?;
    println!(
        "{label:<40} {:>9.0} req/s  p50 {:>8}  p99 {:>8}  errors {}",
        p.rps,
        fmt_us(p.p50_us),
        fmt_us(p.p99_us),
        p.errors
    );
    Ok(p)
}

/// `/execute` of `function` through `client`: checks the hello world
/// answer; returns where the module came from (`cache`).
async fn call(client: &reqwest::Client, edge: &str, function: &str) -> anyhow::Result<String> {
    let resp = client
        .post(format!("{edge}/execute"))
        .json(&json!({"function": function, "input": {"msg": HELLO_MSG}}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() || body["output"] != HELLO_MSG {
        bail!("{edge}/execute {function}: {status} {body}");
    }
    Ok(body["cache"].as_str().unwrap_or("?").to_owned())
}

/// Compiled artifacts in the edge's data directory.
fn artifacts(edge_dir: &Path) -> usize {
    std::fs::read_dir(edge_dir.join("data/artifacts"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until the edge's `/health` counts `n` functions and its start-up
/// scan has written an artifact for each (progress every 10 s).
async fn wait_deployed(edge: &Process, edge_dir: &Path, n: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let limit = Duration::from_secs(120) + Duration::from_millis(300) * n as u32;
    let client = reqwest::Client::new();
    let mut reported = Instant::now();
    loop {
        let health: Value = client
            .get(format!("{}/health", edge.url))
            .send()
            .await?
            .json()
            .await?;
        let functions = health["functions"].as_u64().unwrap_or(0) as usize;
        let compiled = artifacts(edge_dir);
        if functions == n && compiled >= n {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!("after {limit:?}: {functions} functions, {compiled} artifacts of {n}");
        }
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  waiting: {functions}/{n} functions scanned, {compiled} compiled ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The process's resident set (VmRSS) in MiB.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    Ok(crate::rss_kib(pid)? as f64 / 1024.0)
}

/// Runs the benchmark with the options given after `tenants`.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let sizes = o.sizes();
    let hello = crate::hello_world()?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let mut rows = Vec::new();

    // Baseline: hello_world alone.
    let single_lua = script(dir, "single", Traffic::Single)?;
    let single_dir = dir.join("single");
    std::fs::create_dir_all(single_dir.join("functions"))?;
    std::fs::write(single_dir.join("functions/hello_world.wasm"), &hello)?;
    {
        let edge = start_standalone_edge_with(&single_dir, free_port(), &[]).await?;
        call(&reqwest::Client::new(), &edge.url, "hello_world").await?;
        let point = measure(&o, &edge.url, &single_lua, "single: hello_world alone").await?;
        rows.push(Row {
            scenario: "single function (hello_world)",
            functions: 1,
            target: "baseline",
            point,
        });
    }

    // Uniform over `sizes.uniform` distinct tenants.
    let tenants_dir = dir.join("tenants");
    let funcs = tenants_dir.join("functions");
    std::fs::create_dir_all(&funcs)?;
    let write = |name: String, index: usize| {
        std::fs::write(funcs.join(format!("{name}.wasm")), tenant(&hello, index))
    };
    for i in 0..sizes.uniform {
        write(tenant_name(i), i)?;
    }
    let uniform_lua = script(dir, "uniform", Traffic::Uniform { n: sizes.uniform })?;
    {
        let edge = start_standalone_edge_with(&tenants_dir, free_port(), &[]).await?;
        let waited = wait_deployed(&edge, &tenants_dir, sizes.uniform).await?;
        eprintln!(
            "  {} functions scanned and compiled in {:.1} s",
            sizes.uniform,
            waited.as_secs_f64()
        );
        call(&reqwest::Client::new(), &edge.url, &tenant_name(0)).await?;
        let point = measure(&o, &edge.url, &uniform_lua, "uniform: distinct modules").await?;
        rows.push(Row {
            scenario: "distinct modules, uniform names, cache_size 100",
            functions: sizes.uniform,
            target: "≥ 0.5×, p99 < 3 ms",
            point,
        });
    }

    // Zipf over `sizes.zipf`, plus `sizes.fresh` never named by the load;
    // the same directory, so the uniform run's artifacts are reused.
    for i in sizes.uniform..sizes.zipf {
        write(tenant_name(i), i)?;
    }
    for i in 0..sizes.fresh {
        write(fresh_name(i), sizes.zipf + i)?;
    }
    let deployed = sizes.zipf + sizes.fresh;
    let zipf_lua = script(
        dir,
        "zipf",
        Traffic::Zipf {
            n: sizes.zipf,
            s: ZIPF_S,
        },
    )?;
    let edge = start_standalone_edge_with(&tenants_dir, free_port(), &[]).await?;
    let pid = edge.pid().context("the edge exited")?;
    let waited = wait_deployed(&edge, &tenants_dir, deployed).await?;
    eprintln!(
        "  {deployed} functions scanned and compiled in {:.1} s",
        waited.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_mib(pid)?;
    let point = measure(&o, &edge.url, &zipf_lua, "zipf: deployed, s = 1.1").await?;
    rows.push(Row {
        scenario: "deployed, Zipf traffic (s = 1.1), cache_size 100",
        functions: sizes.zipf,
        target: "≥ 0.7×",
        point,
    });
    let rss_loaded = rss_mib(pid)?;

    // First requests: one at a time over a warm connection.
    let client = reqwest::Client::new();
    client.get(format!("{}/health", edge.url)).send().await?;
    let mut firsts = Vec::with_capacity(sizes.fresh);
    let mut sources = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..sizes.fresh {
        let t = Instant::now();
        let source = call(&client, &edge.url, &fresh_name(i)).await?;
        firsts.push(t.elapsed());
        *sources.entry(source).or_default() += 1;
    }
    firsts.sort();
    let sources = sources
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let first_line = format!(
        "First request to a function never called since the edge started ({} functions \
         deployed beside the {} of the Zipf row, called once each after its load, one at a \
         time over a kept-alive connection, reqwest): p50 {}, p99 {}, max {} (target p99 < \
         1 ms); modules from: {sources}.",
        sizes.fresh,
        sizes.zipf,
        fmt_us(crate::percentile(&firsts, 0.5).as_secs_f64() * 1e6),
        fmt_us(crate::percentile(&firsts, 0.99).as_secs_f64() * 1e6),
        fmt_us(firsts.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)),
    );
    println!("{first_line}");
    let rss_line = format!(
        "Edge RSS (VmRSS) with {deployed} functions deployed: idle after its start-up scan \
         compiled them {rss_idle:.1} MiB, after the Zipf load {rss_loaded:.1} MiB \
         ({:.1} KiB per deployed function idle, all included).",
        rss_idle * 1024.0 / deployed as f64
    );
    println!("{rss_line}");
    drop(edge);

    println!("\n{}", render(&o, sizes, &rows, &first_line, &rss_line));
    Ok(())
}

fn render(o: &Options, sizes: Sizes, rows: &[Row], first_line: &str, rss_line: &str) -> String {
    let single = rows.first().map(|r| r.point.rps);
    let mut s = String::new();
    let _ = writeln!(s, "## Many tenants (`aether-bench tenants`)\n");
    let _ = writeln!(
        s,
        "- Machine: {}; wrk and the edge share the cores.",
        machine()
    );
    let _ = writeln!(
        s,
        "- Versions: aether {} ({}), {}, {}.",
        env!("CARGO_PKG_VERSION"),
        command_line("git", &["describe", "--always", "--dirty"]),
        command_line("rustc", &["-V"]),
        wrk_version(&o.wrk),
    );
    let _ = writeln!(
        s,
        "- Date: {}. Command: `aether-bench tenants{}` (wrk `-t 2 -c {CONCURRENCY}`, {} s per \
         point after a 1 s warm-up; p50/p99 from wrk's latency record).",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if o.smoke {
            " --smoke".to_owned()
        } else {
            format!(" --duration {}", o.duration)
        },
        o.secs()
    );
    let _ = writeln!(
        s,
        "- Load average when the table was written: {}.",
        load_average()
    );
    let _ = writeln!(
        s,
        "\n| scenario | functions | c | req/s | p50 | p99 | errors | ÷ single | target |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let p = r.point;
        let _ = writeln!(
            s,
            "| {} | {} | {CONCURRENCY} | {:.0} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.functions,
            p.rps,
            fmt_us(p.p50_us),
            fmt_us(p.p99_us),
            p.errors,
            single.map_or("–".into(), |b| format!("{:.2}×", p.rps / b)),
            r.target,
        );
    }
    let _ = writeln!(
        s,
        "\nThe tenants are `examples/hello_world` with a distinct custom section appended \
         (same code, distinct bytes: each is compiled, stored and cached separately). Every \
         edge runs with its defaults (`cache_size` 100, pooling, 64 execution slots) and has \
         compiled every deployed function at start-up before its row is measured (the \
         uniform row's {} artifacts are reused by the Zipf edge, the same directory \
         restarted with more functions). Zipf rank k is drawn with probability ∝ 1/k^1.1 \
         from a CDF built once per wrk thread.{}\n",
        sizes.uniform,
        if sizes.uniform <= 100 {
            " With `--smoke` the uniform row's functions all fit the cache: it checks the \
             plumbing, not the misses."
        } else {
            ""
        }
    );
    let _ = writeln!(s, "{first_line}\n");
    let _ = writeln!(s, "{rss_line}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bench, Cli};
    use clap::Parser as _;

    fn leb(value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        leb128(&mut out, value);
        out
    }

    #[test]
    fn leb128_matches_the_spec_examples() {
        assert_eq!(leb(0), [0x00]);
        assert_eq!(leb(127), [0x7f]);
        assert_eq!(leb(128), [0x80, 0x01]);
        assert_eq!(leb(624_485), [0xe5, 0x8e, 0x26]);
    }

    #[test]
    fn a_custom_section_is_id_size_name_payload() {
        let s = custom_section("ab", b"42");
        assert_eq!(s, [0, 5, 2, b'a', b'b', b'4', b'2']);
        // A payload over 127 bytes needs a two-byte size.
        let s = custom_section("x", &[7; 200]);
        assert_eq!(&s[..4], &[0, 0xca, 0x01, 1]);
        assert_eq!(s.len(), 4 + 1 + 200);
    }

    #[test]
    fn tenants_are_valid_and_distinct() {
        let base = wat::parse_str(aether_fixtures::print_wat("tenant")).unwrap();
        let (a, b) = (tenant(&base, 1), tenant(&base, 2));
        assert_ne!(a, b);
        assert!(a.starts_with(&base));
        let rt = aether_runtime::Runtime::new(aether_runtime::RuntimeConfig {
            pooling: false,
            ..Default::default()
        })
        .unwrap();
        rt.compile(&a).unwrap();
        rt.compile(&tenant(&base, 100_000)).unwrap();
    }

    #[test]
    fn the_zipf_script_has_the_cdf_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "z", Traffic::Zipf { n: 10, s: 1.1 }).unwrap();
        let lua = std::fs::read_to_string(path).unwrap();
        assert!(
            lua.contains("1 / (k ^ 1.1)") && lua.contains("t%05d"),
            "{lua}"
        );
        assert!(lua.contains("AETHER_RESULT"));
    }

    #[test]
    fn the_command_line_parses() {
        let parse = |args: &[&str]| match Cli::try_parse_from(
            ["aether-bench", "tenants"].iter().chain(args),
        ) {
            Ok(Cli {
                command: Bench::Tenants(o),
            }) => o,
            other => panic!("{args:?}: {other:?}"),
        };
        let o = parse(&[]);
        assert!(!o.smoke);
        assert_eq!((o.duration, o.secs(), o.sizes().zipf), (5, 5, 10_000));
        let o = parse(&["--smoke", "--duration", "9"]);
        assert_eq!((o.secs(), o.sizes().uniform, o.sizes().zipf), (1, 50, 500));
    }
}
