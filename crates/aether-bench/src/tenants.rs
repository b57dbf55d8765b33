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
//!   scan has compiled everything) and after the zipf load;
//! - **fairness** (items 3 and 4 of the issue), on an edge of its own with
//!   `hello_world`, a looping function (`(loop (br 0))`, ending 504 at the
//!   edge's `--exec-timeout`, 200 ms unless `--loop-timeout` says
//!   otherwise: a standalone edge has no per-function limits) and 500
//!   cold tenants `c00000`…: the hot `hello_world` at c=8 alone, then
//!   beside a second wrk (c=8) sending each request to the next cold
//!   function in turn (more of them than `cache_size`), then beside a
//!   second wrk (c=8) on the looping function: hot p99 against alone
//!   (target ≤ 2×); and c=16 as two wrk processes, 14 connections on
//!   `hello_world` and 2 looping (item 4's "10 % looping connections"):
//!   p50/p99 of the good requests (target p99 ≤ 3× p50).
//!
//! `--scenarios` picks among `single`, `uniform`, `zipf` and `fairness`
//! (all by default); `--scenarios fairness` skips the long compile of the
//! 10 000 functions.
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
//! (50 never-called ones) and 150 cold ones at 1 s per point.

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
    /// (50 never called) instead of 1 000 and 10 000 (200), 150 cold
    /// functions in the fairness flood instead of 500.
    #[arg(long)]
    pub smoke: bool,
    /// The scenarios to run, comma-separated (`zipf` includes the
    /// first-request and RSS lines); e.g. `--scenarios fairness` skips
    /// the minutes of compiling 10 000 functions.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "LIST",
        default_values_t = Scenario::ALL
    )]
    scenarios: Vec<Scenario>,
    /// The fairness edge's `--exec-timeout` (every function's wall-clock
    /// limit there): what each request of the looping function costs
    /// before it answers 504.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_LOOP_TIMEOUT)]
    loop_timeout: String,
    /// Distinct modules of the uniform row instead of 1 000 (50 with
    /// `--smoke`), e.g. for a quicker before/after of a change.
    #[arg(long, value_name = "N")]
    uniform: Option<usize>,
    /// Functions deployed for the Zipf row instead of 10 000 (500 with
    /// `--smoke`).
    #[arg(long, value_name = "N")]
    zipf: Option<usize>,
}

/// The fairness edge's time limit unless `--loop-timeout` says otherwise:
/// short, so the looping flood completes requests within a point (the
/// CPU it keeps busy is the same at any limit: each connection always has
/// one looping guest running).
const DEFAULT_LOOP_TIMEOUT: &str = "200ms";

/// The parts of `aether-bench tenants`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// hello_world alone, c=16.
    Single,
    /// 1 000 distinct modules, uniform names.
    Uniform,
    /// 10 000 deployed, Zipf traffic, then first requests and RSS.
    Zipf,
    /// A hot function beside a cold flood, a looping flood, and 10 %
    /// looping connections.
    Fairness,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Single,
        Scenario::Uniform,
        Scenario::Zipf,
        Scenario::Fairness,
    ];
}

/// How many functions each scenario deploys.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    uniform: usize,
    zipf: usize,
    fresh: usize,
    /// Distinct cold functions the fairness flood cycles through.
    cold: usize,
}

impl Options {
    fn sizes(&self) -> Sizes {
        let mut sizes = self.default_sizes();
        sizes.uniform = self.uniform.unwrap_or(sizes.uniform);
        sizes.zipf = self.zipf.unwrap_or(sizes.zipf).max(sizes.uniform);
        sizes
    }

    fn default_sizes(&self) -> Sizes {
        if self.smoke {
            Sizes {
                uniform: 50,
                zipf: 500,
                fresh: 50,
                cold: 150,
            }
        } else {
            Sizes {
                uniform: 1000,
                zipf: 10_000,
                fresh: 200,
                cold: 500,
            }
        }
    }

    fn wants(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    /// The options as given on the command line (for the table's header).
    fn command(&self) -> String {
        let mut c = if self.smoke {
            " --smoke".to_owned()
        } else {
            format!(" --duration {}", self.duration)
        };
        if self.scenarios[..] != Scenario::ALL[..] {
            let names: Vec<_> = self
                .scenarios
                .iter()
                .map(|s| {
                    clap::ValueEnum::to_possible_value(s)
                        .map_or_else(String::new, |v| v.get_name().to_owned())
                })
                .collect();
            let _ = write!(c, " --scenarios {}", names.join(","));
        }
        if self.loop_timeout != DEFAULT_LOOP_TIMEOUT && self.wants(Scenario::Fairness) {
            let _ = write!(c, " --loop-timeout {}", self.loop_timeout);
        }
        for (flag, value) in [("uniform", self.uniform), ("zipf", self.zipf)] {
            if let Some(n) = value {
                let _ = write!(c, " --{flag} {n}");
            }
        }
        c
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
pub(crate) fn tenant(base: &[u8], index: usize) -> Vec<u8> {
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

/// The name of the fairness edge's cold function `index`.
fn cold_name(index: usize) -> String {
    format!("c{index:05}")
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
    /// This function with the hello world input, every time.
    Function(&'static str),
    /// `c00000` … the `n`th cold function in turn (each wrk thread from
    /// its own starting point), so with `n` above `cache_size` nearly
    /// every request finds its module evicted.
    Cycle { n: usize },
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
    let bodies = |prefix: char, n: usize| {
        format!(
            "local bodies = {{}}\n\
             for i = 1, {n} do bodies[i] = string.format('{{\"function\":\"{prefix}%05d\",\"input\":{{\"msg\":\"{HELLO_MSG}\"}}}}', i - 1) end\n\
             local threads = 0\n\
             function setup(thread)\n  threads = threads + 1\n  thread:set(\"id\", threads)\nend\n"
        )
    };
    match traffic {
        Traffic::Function(function) => {
            let body = json!({"function": function, "input": {"msg": HELLO_MSG}});
            writeln!(lua, "wrk.body = [==[{body}]==]")?;
        }
        Traffic::Cycle { n } => {
            lua.push_str(&bodies('c', n));
            writeln!(
                lua,
                "local next = 0\n\
                 function init(args)\n  next = ((id - 1) * {}) % {n}\nend\n\
                 function request()\n  next = next % {n} + 1\n  \
                 return wrk.format(nil, nil, nil, bodies[next])\nend",
                n / 2
            )?;
        }
        Traffic::Uniform { n } => {
            lua.push_str(&bodies('t', n));
            writeln!(
                lua,
                "function init(args)\n  math.randomseed(os.time() * 1000 + id)\nend\n\
                 function request()\n  return wrk.format(nil, nil, nil, bodies[math.random(1, {n})])\nend"
            )?;
        }
        Traffic::Zipf { n, s } => {
            lua.push_str(&bodies('t', n));
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

/// A 1 s warm-up, then the measured point at `concurrency`, printed as it
/// comes.
async fn measure(
    o: &Options,
    base: &str,
    script: &Path,
    concurrency: u32,
    label: &str,
) -> anyhow::Result<Point> {
    run_wrk(&o.wrk, base, script, concurrency, 1).await?;
    let p = run_wrk(&o.wrk, base, script, concurrency, o.secs()).await?;
    print_point(label, &p);
    Ok(p)
}

/// One measured point on one line.
fn print_point(label: &str, p: &Point) {
    println!(
        "{label:<40} {:>9.0} req/s  p50 {:>8}  p99 {:>8}  errors {}",
        p.rps,
        fmt_us(p.p50_us),
        fmt_us(p.p99_us),
        p.errors
    );
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

/// A process's resident set in MiB: all of it (VmRSS), its own memory
/// (RssAnon) and the file pages it maps (RssFile: the page cache's, clean;
/// the mapped module artifacts).
#[derive(Debug, Clone, Copy)]
struct Rss {
    total: f64,
    anon: f64,
    file: f64,
}

impl Rss {
    fn of(pid: u32) -> anyhow::Result<Self> {
        let mib = |field| Ok::<_, anyhow::Error>(crate::status_kib(pid, field)? as f64 / 1024.0);
        Ok(Rss {
            total: mib("VmRSS")?,
            anon: mib("RssAnon")?,
            file: mib("RssFile")?,
        })
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MiB (own memory {:.1} MiB, mapped files {:.1} MiB)",
            self.total, self.anon, self.file
        )
    }
}

/// Connections of the hot load in the fairness rows, and of each flood.
const FAIR_HOT: u32 = 8;
const FAIR_FLOOD: u32 = 8;
/// Issue 18 item 4, "10 % looping connections": c=16 as two wrk processes,
/// 14 connections on hello_world and 2 on the looping function (12.5 %).
const MIXED_GOOD: u32 = 14;
const MIXED_LOOPING: u32 = 2;
/// The cold functions are tenants from this index on: bytes distinct from
/// every `t…` tenant's.
const COLD_BASE: usize = 1_000_000;

/// What a fairness row's hot p99 is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// The row the others are compared with.
    Baseline,
    /// Hot p99 at most this many times the hot-alone row's.
    P99VsAlone(f64),
    /// p99 at most this many times the same row's p50.
    TailRatio(f64),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::Baseline => "baseline".into(),
            Target::P99VsAlone(x) => format!("p99 ≤ {x}× alone"),
            Target::TailRatio(x) => format!("p99 ≤ {x}× p50"),
        }
    }

    /// Whether `hot` meets the target, given the hot-alone row's p99.
    fn met(self, hot: &Point, alone_p99_us: f64) -> Option<bool> {
        match self {
            Target::Baseline => None,
            Target::P99VsAlone(x) => Some(hot.p99_us <= x * alone_p99_us),
            Target::TailRatio(x) => Some(hot.p99_us <= x * hot.p50_us),
        }
    }
}

/// The load beside the hot one in a fairness row.
#[derive(Debug, Clone)]
struct Beside {
    what: String,
    concurrency: u32,
    point: Point,
}

/// One line of the fairness table.
#[derive(Debug, Clone)]
struct FairRow {
    scenario: &'static str,
    hot_c: u32,
    hot: Point,
    beside: Option<Beside>,
    target: Target,
}

/// The fairness section's results.
struct Fairness {
    rows: Vec<FairRow>,
    /// What a request of the looping function cost before its 504.
    loop_cost: Duration,
    /// Module loads (not from memory) per cold-flood request.
    cold_misses: f64,
}

/// `/execute` of the looping function: checks that it ends with 504
/// `timeout`; returns how long that took.
async fn call_loop(client: &reqwest::Client, edge: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let resp = client
        .post(format!("{edge}/execute"))
        .json(&json!({"function": "loop", "input": {"msg": HELLO_MSG}}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if status != reqwest::StatusCode::GATEWAY_TIMEOUT || body["error"]["code"] != "timeout" {
        bail!("{edge}/execute loop: {status} {body} (expected 504 timeout)");
    }
    Ok(started.elapsed())
}

/// Module lookups counted in an edge's `/metrics` text
/// (`aether_edge_module_loads_total`): (all, from memory).
fn module_lookups(metrics: &str) -> (f64, f64) {
    let (mut all, mut memory) = (0.0, 0.0);
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("aether_edge_module_loads_total") else {
            continue;
        };
        if !rest.starts_with(['{', ' ']) {
            continue;
        }
        let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        all += value;
        if rest.contains("source=\"memory\"") {
            memory += value;
        }
    }
    (all, memory)
}

/// Module lookups that did not find the module in memory, so far.
async fn misses(client: &reqwest::Client, edge: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{edge}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let (all, memory) = module_lookups(&text);
    if all == 0.0 {
        bail!("{edge}/metrics counts no aether_edge_module_loads_total");
    }
    Ok(all - memory)
}

/// `hot` at `hot_c` connections while `flood` runs at `flood_c`: two wrk
/// at once, the flood from 0.5 s before the hot point to 0.5 s after it.
async fn side_by_side(
    o: &Options,
    base: &str,
    (hot, hot_c): (&Path, u32),
    (flood, flood_c): (&Path, u32),
    secs: u64,
) -> anyhow::Result<(Point, Point)> {
    let hot_run = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        run_wrk(&o.wrk, base, hot, hot_c, secs).await
    };
    let flood_run = run_wrk(&o.wrk, base, flood, flood_c, secs + 1);
    let (hot, flood) = tokio::join!(hot_run, flood_run);
    Ok((hot?, flood?))
}

/// Fails unless the hot load ran without an error.
fn check_hot(label: &str, hot: &Point) -> anyhow::Result<()> {
    if hot.requests == 0 || hot.errors > 0 {
        bail!(
            "{label}: {} requests, {} errors (connect, read, write, status ≥ 400 or timeout)",
            hot.requests,
            hot.errors
        );
    }
    Ok(())
}

/// Fails unless every completed request of a looping load answered an
/// error (the 504 `timeout`) and some completed.
fn check_looping(label: &str, flood: &Point) -> anyhow::Result<()> {
    if flood.requests == 0 || flood.errors < flood.requests {
        bail!(
            "{label}: {} requests completed, {} errors; every one should have answered 504",
            flood.requests,
            flood.errors
        );
    }
    Ok(())
}

impl FairRow {
    /// The hot p99 over the hot-alone row's, for rows at the same hot
    /// concurrency.
    fn vs_alone(&self, alone_p99_us: f64) -> Option<f64> {
        (self.hot_c == FAIR_HOT).then(|| self.hot.p99_us / alone_p99_us)
    }

    /// Prints the row as measured: the hot point, its ratios and target,
    /// and the load beside it.
    fn print(&self, label: &str, alone_p99_us: f64) {
        print_point(label, &self.hot);
        let Some(beside) = &self.beside else {
            return;
        };
        let vs_alone = self
            .vs_alone(alone_p99_us)
            .map_or_else(String::new, |x| format!("p99 {x:.2}× alone, "));
        println!(
            "{:<40} {vs_alone}p99/p50 {:.2}; target {}: {}",
            "",
            self.hot.p99_us / self.hot.p50_us,
            self.target.describe(),
            met(self.target.met(&self.hot, alone_p99_us)),
        );
        print_point(
            &format!("  beside: {} (c={})", beside.what, beside.concurrency),
            &beside.point,
        );
    }
}

/// A target's verdict in words.
fn met(verdict: Option<bool>) -> &'static str {
    match verdict {
        None => "–",
        Some(true) => "yes",
        Some(false) => "no",
    }
}

/// The rows measured beside the looping function: the fairness edge, the
/// looping function's wrk script, what one of its requests costs (its
/// time limit), and the hot-alone row's p99 the rows compare with.
struct Looping<'a> {
    o: &'a Options,
    client: &'a reqwest::Client,
    base: &'a str,
    script: &'a Path,
    cost: Duration,
    alone_p99_us: f64,
}

impl Looping<'_> {
    /// A fairness row: `hot` measured beside `looping_c` connections of the
    /// looping function (after a 1 s warm-up of both), checked (the hot
    /// load error-free, every looping request a 504) and printed; then the
    /// guests wrk left running are let end and hello_world is checked
    /// again.
    async fn row(
        &self,
        hot: (&Path, u32),
        looping_c: u32,
        label: &str,
        scenario: &'static str,
        target: Target,
    ) -> anyhow::Result<FairRow> {
        let (o, base) = (self.o, self.base);
        let flood = (self.script, looping_c);
        side_by_side(o, base, hot, flood, 1).await?;
        let (point, flood_point) = side_by_side(o, base, hot, flood, o.secs()).await?;
        check_hot(label, &point)?;
        check_looping(label, &flood_point)?;
        let row = FairRow {
            scenario,
            hot_c: hot.1,
            hot: point,
            beside: Some(Beside {
                what: "looping function".into(),
                concurrency: looping_c,
                point: flood_point,
            }),
            target,
        };
        row.print(label, self.alone_p99_us);
        tokio::time::sleep(self.cost).await;
        call(self.client, base, "hello_world").await?;
        Ok(row)
    }
}

/// Issue 18 items 3 and 4 on one edge: hello_world hot alone, then beside
/// a flood of `cold` distinct cold functions, then beside a flood of a
/// looping function, then as 14 of 16 connections with 2 looping.
async fn fairness(o: &Options, hello: &[u8], dir: &Path, cold: usize) -> anyhow::Result<Fairness> {
    let edge_dir = dir.join("fairness");
    let funcs = edge_dir.join("functions");
    std::fs::create_dir_all(&funcs)?;
    std::fs::write(funcs.join("hello_world.wasm"), hello)?;
    std::fs::write(
        funcs.join("loop.wasm"),
        wat::parse_str(aether_fixtures::LOOP)?,
    )?;
    for i in 0..cold {
        std::fs::write(
            funcs.join(format!("{}.wasm", cold_name(i))),
            tenant(hello, COLD_BASE + i),
        )?;
    }
    let hot_lua = script(dir, "hot", Traffic::Function("hello_world"))?;
    let cold_lua = script(dir, "cold", Traffic::Cycle { n: cold })?;
    let loop_lua = script(dir, "loop", Traffic::Function("loop"))?;

    let edge =
        start_standalone_edge_with(&edge_dir, free_port(), &["--exec-timeout", &o.loop_timeout])
            .await?;
    let waited = wait_deployed(&edge, &edge_dir, cold + 2).await?;
    eprintln!(
        "  fairness edge: {} functions scanned and compiled in {:.1} s",
        cold + 2,
        waited.as_secs_f64()
    );
    let client = reqwest::Client::new();
    call(&client, &edge.url, "hello_world").await?;
    let loop_cost = call_loop(&client, &edge.url).await?;
    println!(
        "fairness: a looping request answers 504 timeout after {} (--exec-timeout {})",
        fmt_us(loop_cost.as_secs_f64() * 1e6),
        o.loop_timeout
    );
    let hot = (hot_lua.as_path(), FAIR_HOT);
    let mut rows = Vec::new();

    // 1. Hot alone.
    let label = "fairness: hot alone (c=8)";
    let alone = measure(o, &edge.url, &hot_lua, FAIR_HOT, label).await?;
    check_hot(label, &alone)?;
    rows.push(FairRow {
        scenario: "hot alone",
        hot_c: FAIR_HOT,
        hot: alone,
        beside: None,
        target: Target::Baseline,
    });

    // 2. Beside a cold flood; /metrics counts its misses.
    let flood = (cold_lua.as_path(), FAIR_FLOOD);
    side_by_side(o, &edge.url, hot, flood, 1).await?;
    let missed = misses(&client, &edge.url).await?;
    let (point, flood_point) = side_by_side(o, &edge.url, hot, flood, o.secs()).await?;
    let cold_misses = (misses(&client, &edge.url).await? - missed) / flood_point.requests as f64;
    let label = "fairness: hot + cold flood (c=8)";
    check_hot(label, &point)?;
    if flood_point.requests == 0 || flood_point.errors > 0 {
        bail!(
            "{label}: the cold flood completed {} requests with {} errors",
            flood_point.requests,
            flood_point.errors
        );
    }
    let row = FairRow {
        scenario: "hot + cold flood (another tenant)",
        hot_c: FAIR_HOT,
        hot: point,
        beside: Some(Beside {
            what: format!("{cold} cold functions in turn"),
            concurrency: FAIR_FLOOD,
            point: flood_point,
        }),
        target: Target::P99VsAlone(2.0),
    };
    row.print(label, alone.p99_us);
    println!(
        "{:<40} {cold_misses:.2} module loads (not from memory) per cold request",
        ""
    );
    rows.push(row);
    call(&client, &edge.url, "hello_world").await?;

    // 3. Beside a looping flood.
    let looping = Looping {
        o,
        client: &client,
        base: &edge.url,
        script: &loop_lua,
        cost: loop_cost,
        alone_p99_us: alone.p99_us,
    };
    let row = looping
        .row(
            hot,
            FAIR_FLOOD,
            "fairness: hot + looping flood (c=8)",
            "hot + looping flood (another tenant)",
            Target::P99VsAlone(2.0),
        )
        .await?;
    rows.push(row);

    // 4. c=16 with 2 looping connections: two wrk processes.
    let row = looping
        .row(
            (hot_lua.as_path(), MIXED_GOOD),
            MIXED_LOOPING,
            "fairness: 14 good + 2 looping conns",
            "c=16, 2 of 16 connections looping (good requests)",
            Target::TailRatio(3.0),
        )
        .await?;
    rows.push(row);

    Ok(Fairness {
        rows,
        loop_cost,
        cold_misses,
    })
}

/// The name of the single-function row (the others' req/s baseline).
const SINGLE_ROW: &str = "single function (hello_world)";

/// Runs the benchmark with the options given after `tenants`.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let sizes = o.sizes();
    let hello = crate::hello_world()?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // Baseline: hello_world alone.
    if o.wants(Scenario::Single) {
        let single_lua = script(dir, "single", Traffic::Function("hello_world"))?;
        let single_dir = dir.join("single");
        std::fs::create_dir_all(single_dir.join("functions"))?;
        std::fs::write(single_dir.join("functions/hello_world.wasm"), &hello)?;
        let edge = start_standalone_edge_with(&single_dir, free_port(), &[]).await?;
        call(&reqwest::Client::new(), &edge.url, "hello_world").await?;
        let point = measure(
            &o,
            &edge.url,
            &single_lua,
            CONCURRENCY,
            "single: hello_world alone",
        )
        .await?;
        rows.push(Row {
            scenario: SINGLE_ROW,
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
    // Tenants `t00000` up to this one are in `funcs`.
    let mut written = 0;
    if o.wants(Scenario::Uniform) {
        for i in 0..sizes.uniform {
            write(tenant_name(i), i)?;
        }
        written = sizes.uniform;
        let uniform_lua = script(dir, "uniform", Traffic::Uniform { n: sizes.uniform })?;
        let edge = start_standalone_edge_with(&tenants_dir, free_port(), &[]).await?;
        let waited = wait_deployed(&edge, &tenants_dir, sizes.uniform).await?;
        eprintln!(
            "  {} functions scanned and compiled in {:.1} s",
            sizes.uniform,
            waited.as_secs_f64()
        );
        call(&reqwest::Client::new(), &edge.url, &tenant_name(0)).await?;
        let pid = edge.pid().context("the edge exited")?;
        let point = measure(
            &o,
            &edge.url,
            &uniform_lua,
            CONCURRENCY,
            "uniform: distinct modules",
        )
        .await?;
        let rss_line = format!(
            "Edge RSS with {} functions deployed, all of them called in the uniform load: {}.",
            sizes.uniform,
            Rss::of(pid)?
        );
        println!("{rss_line}");
        notes.push(rss_line);
        rows.push(Row {
            scenario: "distinct modules, uniform names, cache_size 100",
            functions: sizes.uniform,
            target: "≥ 0.5×, p99 < 3 ms",
            point,
        });
        drop(edge);

        // The same with instances' memories mapped copy-on-write from
        // each module's image (wasmtime's default) instead of copied: the
        // design choice `memory_init` makes, measured side by side. Its
        // own directory: the engine setting changes the artifacts.
        let cow_dir = dir.join("tenants-cow");
        std::fs::create_dir_all(cow_dir.join("functions"))?;
        for i in 0..sizes.uniform {
            let name = format!("{}.wasm", tenant_name(i));
            std::fs::copy(funcs.join(&name), cow_dir.join("functions").join(&name))?;
        }
        let edge =
            start_standalone_edge_with(&cow_dir, free_port(), &["--memory-init", "cow"]).await?;
        wait_deployed(&edge, &cow_dir, sizes.uniform).await?;
        call(&reqwest::Client::new(), &edge.url, &tenant_name(0)).await?;
        let point = measure(
            &o,
            &edge.url,
            &uniform_lua,
            CONCURRENCY,
            "uniform: distinct modules, memory_init cow",
        )
        .await?;
        rows.push(Row {
            scenario: "the same, `memory_init = \"cow\"` (before/after of the default `copy`)",
            functions: sizes.uniform,
            target: "comparison",
            point,
        });
    }

    // Zipf over `sizes.zipf`, plus `sizes.fresh` never named by the load;
    // the same directory, so the uniform run's artifacts are reused.
    if o.wants(Scenario::Zipf) {
        for i in written..sizes.zipf {
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
        let rss_idle = Rss::of(pid)?;
        let point = measure(
            &o,
            &edge.url,
            &zipf_lua,
            CONCURRENCY,
            "zipf: deployed, s = 1.1",
        )
        .await?;
        rows.push(Row {
            scenario: "deployed, Zipf traffic (s = 1.1), cache_size 100",
            functions: sizes.zipf,
            target: "≥ 0.7×",
            point,
        });
        let rss_loaded = Rss::of(pid)?;

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
            "Edge RSS with {deployed} functions deployed: idle after its start-up scan loaded \
             them {rss_idle}; after the Zipf load {rss_loaded}. Per deployed function, idle: \
             {:.1} KiB of the edge's own memory, {:.1} KiB all included.",
            rss_idle.anon * 1024.0 / deployed as f64,
            rss_idle.total * 1024.0 / deployed as f64
        );
        println!("{rss_line}");
        notes.push(first_line);
        notes.push(rss_line);
    }

    let fair = if o.wants(Scenario::Fairness) {
        Some(fairness(&o, &hello, dir, sizes.cold).await?)
    } else {
        None
    };

    println!("\n{}", render(&o, sizes, &rows, &notes, fair.as_ref()));
    Ok(())
}

fn render(
    o: &Options,
    sizes: Sizes,
    rows: &[Row],
    notes: &[String],
    fair: Option<&Fairness>,
) -> String {
    let single = rows
        .iter()
        .find(|r| r.scenario == SINGLE_ROW)
        .map(|r| r.point.rps);
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
        "- Date: {}. Command: `aether-bench tenants{}` (wrk `-t 2`, {} s per point after a 1 s \
         warm-up; p50/p99 from wrk's latency record).",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        o.command(),
        o.secs()
    );
    let _ = writeln!(
        s,
        "- Load average when the table was written: {}.",
        load_average()
    );
    if !rows.is_empty() {
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
             (same code, distinct bytes: each is compiled, stored and cached separately). \
             Every edge runs with its defaults (`cache_size` 100, pooling, 64 execution slots) \
             and has compiled every deployed function at start-up before its row is measured{}. \
             Zipf rank k is drawn with probability ∝ 1/k^1.1 from a CDF built once per wrk \
             thread.{}\n",
            if o.wants(Scenario::Uniform) && o.wants(Scenario::Zipf) {
                format!(
                    " (the uniform row's {} artifacts are reused by the Zipf edge, the same \
                     directory restarted with more functions)",
                    sizes.uniform
                )
            } else {
                String::new()
            },
            if o.wants(Scenario::Uniform) && sizes.uniform <= 100 {
                " With `--smoke` the uniform row's functions all fit the cache: it checks the \
                 plumbing, not the misses."
            } else {
                ""
            }
        );
    }
    for note in notes {
        let _ = writeln!(s, "{note}\n");
    }
    if let Some(fair) = fair {
        render_fairness(&mut s, o, sizes, fair);
    }
    s
}

/// The fairness table (issue 18 items 3 and 4) and what it measured.
fn render_fairness(s: &mut String, o: &Options, sizes: Sizes, fair: &Fairness) {
    let alone_p99 = fair
        .rows
        .iter()
        .find(|r| r.target == Target::Baseline)
        .map_or(f64::NAN, |r| r.hot.p99_us);
    if !s.ends_with("\n\n") {
        s.push('\n');
    }
    let _ = writeln!(s, "### Fairness (issue 18, items 3 and 4)\n");
    let _ = writeln!(
        s,
        "| scenario | hot c | hot req/s | p50 | p99 | p99/p50 | p99 ÷ alone | beside it | \
         its req/s | its errors | target | met |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|"
    );
    for r in &fair.rows {
        let h = r.hot;
        let (beside, its_rps, its_errors) = match &r.beside {
            Some(b) => (
                format!("{}, c={}", b.what, b.concurrency),
                format!("{:.0}", b.point.rps),
                b.point.errors.to_string(),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {} | {} | {:.2} | {} | {beside} | {its_rps} | {its_errors} \
             | {} | {} |",
            r.scenario,
            r.hot_c,
            h.rps,
            fmt_us(h.p50_us),
            fmt_us(h.p99_us),
            h.p99_us / h.p50_us,
            r.vs_alone(alone_p99)
                .map_or_else(|| "–".into(), |x| format!("{x:.2}×")),
            r.target.describe(),
            met(r.target.met(&h, alone_p99)),
        );
    }
    let _ = writeln!(
        s,
        "\nOne edge, defaults but `--exec-timeout {}` (the limit the looping function hits: \
         each of its requests answered 504 `timeout` after {}), serving `hello_world` (the hot \
         function), `loop` (`_start` is `(loop (br 0))`) and {} cold functions `c00000`… \
         (hello_world copies with distinct bytes, more than `cache_size` 100). The hot load is \
         wrk on `hello_world`; the load beside it is a second wrk process started at the same \
         time, running 0.5 s before and after the hot point (both warmed up together for 1 s \
         first). The cold flood sends each connection's requests to the cold functions in \
         turn: {:.2} module loads not from memory per cold request (`/metrics`). \
         \"p99 ÷ alone\" compares with the hot-alone row at c={FAIR_HOT}; the last row is the \
         10 % looping connections of item 4 as two wrk processes, {MIXED_GOOD} connections on \
         `hello_world` and {MIXED_LOOPING} on `loop` (12.5 %), its p50/p99 those of the good \
         requests only (\"p99 ÷ alone\" is left out there: another concurrency). Errors \
         beside a looping load are its 504s.",
        o.loop_timeout,
        fmt_us(fair.loop_cost.as_secs_f64() * 1e6),
        sizes.cold,
        fair.cold_misses,
    );
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

    /// `aether-bench tenants ARGS`'s options.
    fn parse(args: &[&str]) -> Options {
        match Cli::try_parse_from(["aether-bench", "tenants"].iter().chain(args)) {
            Ok(Cli {
                command: Bench::Tenants(o),
            }) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_parses() {
        let o = parse(&[]);
        assert!(!o.smoke);
        assert_eq!((o.duration, o.secs(), o.sizes().zipf), (5, 5, 10_000));
        let o = parse(&["--smoke", "--duration", "9"]);
        assert_eq!((o.secs(), o.sizes().uniform, o.sizes().zipf), (1, 50, 500));
    }

    #[test]
    fn every_scenario_runs_unless_some_are_named() {
        let o = parse(&[]);
        assert!(Scenario::ALL.iter().all(|s| o.wants(*s)));
        assert_eq!(o.loop_timeout, "200ms");
        assert_eq!(o.command(), " --duration 5");
        assert_eq!(o.sizes().cold, 500);

        let o = parse(&["--smoke", "--scenarios", "fairness"]);
        assert!(o.wants(Scenario::Fairness) && !o.wants(Scenario::Zipf));
        assert_eq!(o.sizes().cold, 150);
        assert_eq!(o.command(), " --smoke --scenarios fairness");

        let o = parse(&["--scenarios", "single,zipf", "--loop-timeout", "1s"]);
        assert_eq!(o.scenarios, [Scenario::Single, Scenario::Zipf]);
        // The loop timeout only matters to (and is only shown with) fairness.
        assert_eq!(o.command(), " --duration 5 --scenarios single,zipf");
        let o = parse(&["--scenarios", "fairness", "--loop-timeout", "1s"]);
        assert_eq!(
            o.command(),
            " --duration 5 --scenarios fairness --loop-timeout 1s"
        );

        assert!(Cli::try_parse_from(["aether-bench", "tenants", "--scenarios", "fair"]).is_err());
    }

    #[test]
    fn the_cycle_script_walks_the_cold_names_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "c", Traffic::Cycle { n: 150 }).unwrap();
        let lua = std::fs::read_to_string(path).unwrap();
        assert!(lua.contains("c%05d") && !lua.contains("t%05d"), "{lua}");
        // Thread 2 starts half-way round; every request takes the next.
        assert!(lua.contains("next = ((id - 1) * 75) % 150"), "{lua}");
        assert!(lua.contains("next = next % 150 + 1"), "{lua}");
        assert!(lua.contains("AETHER_RESULT"));
    }

    #[test]
    fn a_function_script_posts_one_fixed_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "l", Traffic::Function("loop")).unwrap();
        let lua = std::fs::read_to_string(path).unwrap();
        let body = lua
            .lines()
            .find_map(|l| l.strip_prefix("wrk.body = [==["))
            .and_then(|l| l.strip_suffix("]==]"))
            .unwrap_or_else(|| panic!("{lua}"));
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            body,
            json!({"function": "loop", "input": {"msg": HELLO_MSG}})
        );
        assert!(!lua.contains("function request()"), "{lua}");
    }

    #[test]
    fn module_lookups_sum_the_sources() {
        let text = "# HELP aether_edge_module_loads_total Module lookups\n\
                    # TYPE aether_edge_module_loads_total counter\n\
                    aether_edge_module_loads_total{source=\"memory\"} 90\n\
                    aether_edge_module_loads_total{source=\"disk\"} 7\n\
                    aether_edge_module_loads_total{source=\"compiled\"} 3\n\
                    aether_edge_module_loads_totally_else 1000\n\
                    aether_edge_cache_evictions_total 5\n";
        assert_eq!(module_lookups(text), (100.0, 90.0));
        assert_eq!(module_lookups(""), (0.0, 0.0));
    }

    #[test]
    fn fairness_targets_judge_the_right_ratio() {
        let point = |p50_us, p99_us| Point {
            requests: 1,
            rps: 1.0,
            p50_us,
            p99_us,
            errors: 0,
        };
        let alone = 1000.0;
        let vs_alone = Target::P99VsAlone(2.0);
        assert_eq!(vs_alone.met(&point(100.0, 2000.0), alone), Some(true));
        assert_eq!(vs_alone.met(&point(100.0, 2001.0), alone), Some(false));
        let tail = Target::TailRatio(3.0);
        assert_eq!(tail.met(&point(500.0, 1500.0), alone), Some(true));
        assert_eq!(tail.met(&point(400.0, 1500.0), alone), Some(false));
        assert_eq!(Target::Baseline.met(&point(1.0, 9.0), alone), None);
        assert_eq!(vs_alone.describe(), "p99 ≤ 2× alone");
        assert_eq!(tail.describe(), "p99 ≤ 3× p50");

        let row = |hot_c| FairRow {
            scenario: "x",
            hot_c,
            hot: point(100.0, 1500.0),
            beside: None,
            target: tail,
        };
        assert_eq!(row(FAIR_HOT).vs_alone(alone), Some(1.5));
        assert_eq!(row(MIXED_GOOD).vs_alone(alone), None);
    }
}
