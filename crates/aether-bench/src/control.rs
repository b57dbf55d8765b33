//! `aether-bench control`: the control plane on its embedded redb file
//! (`--db FILE --func-dir BLOBDIR`) vs. on PostgreSQL (`--database-url`),
//! side by side in one run. Real release `aether-control` and
//! `aether-engine` binaries (beside this one) and a throwaway PostgreSQL
//! server ([`aether_fixtures::postgres::Cluster`]), all on loopback, tokens
//! on:
//!
//! 1. deploys per second of distinct ~100 KiB modules (`PUT
//!    /api/functions/{name}`, `application/wasm`) with 1 and 4 clients;
//! 2. `GET /api/functions/manifest` latency with 10 000 functions;
//! 3. deploy acknowledged → served by 3 edges: two PostgreSQL replicas
//!    (edges 1 and 3 on replica A, edge 2 on replica B, deploys through
//!    A) vs. one redb control plane with 3 edges.
//!
//! Every measurement runs both backends in alternating rounds (which one
//! goes first alternates too), so drift on a shared machine hits both
//! alike. `--smoke` runs the same code with tiny sizes (a CI check; its
//! numbers mean nothing).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aether_e2e::{
    ADMIN_TOKEN, EdgeOptions, Process, free_port, start_control, start_edge, start_replica,
};
use aether_fixtures::postgres::Cluster;
use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::load::{command_line, load_average, machine};

/// Options of `aether-bench control`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// A quick check that everything works (10 deploys, 200 functions,
    /// 3 rounds), for CI; its numbers mean nothing.
    #[arg(long)]
    pub smoke: bool,
}

/// How much of each measurement to do.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Timed deploys per backend and concurrency.
    deploys: usize,
    /// Alternating rounds those deploys are split into.
    deploy_rounds: usize,
    /// Most time one backend may spend on one concurrency level; deploys
    /// stop being sent after it (the count says how many were made).
    deploy_budget: Duration,
    /// Functions registered before the manifest is timed.
    functions: usize,
    /// Functions deployed per alternating seeding chunk.
    seed_chunk: usize,
    /// Manifest requests timed per backend.
    manifest_requests: usize,
    /// Deploy → served rounds per backend.
    served_rounds: usize,
}

const FULL: Sizes = Sizes {
    deploys: 200,
    deploy_rounds: 8,
    deploy_budget: Duration::from_secs(120),
    functions: 10_000,
    seed_chunk: 1_000,
    manifest_requests: 200,
    served_rounds: 20,
};

const SMOKE: Sizes = Sizes {
    deploys: 10,
    deploy_rounds: 2,
    deploy_budget: Duration::from_secs(60),
    functions: 200,
    seed_chunk: 100,
    manifest_requests: 10,
    served_rounds: 3,
};

/// Data bytes of a deploy-benchmark module (the module is a few bytes
/// more).
const MODULE_DATA: usize = 100 * 1024;
/// Deploy-throughput concurrency levels.
const CLIENTS: [usize; 2] = [1, 4];
/// Parallel clients registering the manifest's functions.
const SEED_CLIENTS: usize = 8;
/// Untimed deploys per backend before the deploy rounds.
const WARMUP_DEPLOYS: usize = 4;
/// Untimed manifest requests per backend.
const WARMUP_MANIFESTS: usize = 5;
/// Edges of the deploy → served measurement.
const EDGES: usize = 3;
/// How often an edge is asked whether it serves the new version.
const POLL: Duration = Duration::from_millis(5);
/// A deploy not served by every edge within this is an error.
const SERVED_LIMIT: Duration = Duration::from_secs(30);
/// Node timeout of the control planes and edges: heartbeats every 10 s.
const NODE_TIMEOUT: &str = "30s";
/// The edges' periodic reconcile: rare, so notifications move deploys.
const RECONCILE_INTERVAL: &str = "60s";

/// The two backends, in the order of every `[T; 2]` here.
const BACKENDS: [&str; 2] = ["redb", "PostgreSQL"];
const REDB: usize = 0;
const PG: usize = 1;

/// Which backend goes first in round `round`: alternates.
fn order(round: usize) -> [usize; 2] {
    if round.is_multiple_of(2) {
        [REDB, PG]
    } else {
        [PG, REDB]
    }
}

/// Runs the benchmark and prints its tables (markdown).
pub async fn run(o: Options) -> anyhow::Result<()> {
    let sizes = if o.smoke { SMOKE } else { FULL };
    let cluster = Cluster::start()
        .map_err(|e| anyhow::anyhow!("cannot start PostgreSQL for the benchmark: {e}"))?;
    let pg_version = cluster
        .psql("postgres", "show server_version")
        .map_err(anyhow::Error::msg)?
        .trim()
        .to_owned();
    let pg_settings = ["fsync", "synchronous_commit", "shared_buffers"]
        .iter()
        .map(|s| {
            let value = cluster
                .psql("postgres", &format!("show {s}"))
                .unwrap_or_default();
            format!("{s} {}", value.trim())
        })
        .collect::<Vec<_>>()
        .join(", ");
    let work = tempfile::tempdir()?;
    let root = work.path();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;

    let fsync_before = fsync_probe(root)?;
    eprintln!("control: 1/3 deploys per second");
    let deploys = deploy_throughput(&client, &cluster, &root.join("deploys"), sizes).await?;
    eprintln!("control: 2/3 manifest latency");
    let manifest = manifest_latency(&client, &cluster, &root.join("manifest"), sizes).await?;
    eprintln!("control: 3/3 deploy → served by {EDGES} edges");
    let served = deploy_to_served(&client, &cluster, &root.join("served"), sizes).await?;

    let fsync = [fsync_before, fsync_probe(root)?];
    let mut s = String::new();
    facts(&mut s, &o, &pg_version, &pg_settings, fsync);
    tables(&mut s, sizes, &deploys, &manifest, &served);
    print!("{s}");
    Ok(())
}

/// Starts a control plane of `backend` over `dir`: redb under `dir`, or a
/// fresh database of `cluster`.
async fn start_backend(backend: usize, dir: &Path, cluster: &Cluster) -> anyhow::Result<Process> {
    if backend == REDB {
        start_control(dir, free_port(), NODE_TIMEOUT).await
    } else {
        let db = cluster
            .fresh_database("bench")
            .map_err(anyhow::Error::msg)?;
        start_replica(dir, free_port(), &db, NODE_TIMEOUT).await
    }
}

/// Starts one control plane per backend under `dir/redb`, `dir/pg`.
async fn start_both(dir: &Path, cluster: &Cluster) -> anyhow::Result<[Process; 2]> {
    Ok([
        start_backend(REDB, &dir.join("redb"), cluster).await?,
        start_backend(PG, &dir.join("pg"), cluster).await?,
    ])
}

/// A valid WASI command module with `data` bytes of pseudo-random data
/// seeded by `tag` (distinct per tag) in a 2-page memory.
fn big_module(tag: u64, data: usize) -> anyhow::Result<Vec<u8>> {
    let mut wat = String::with_capacity(data * 3 + 80);
    wat.push_str(r#"(module (memory 2) (data (i32.const 0) ""#);
    let mut x = tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..data {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(wat, "\\{:02x}", x as u8);
    }
    wat.push_str(r#"") (func (export "_start")))"#);
    Ok(wat::parse_str(&wat)?)
}

/// A minimal command module, distinct per `i` (the manifest's functions).
fn tiny_module(i: usize) -> anyhow::Result<Vec<u8>> {
    Ok(wat::parse_str(format!(
        r#"(module (memory 1) (data (i32.const 0) "fn {i}") (func (export "_start")))"#
    ))?)
}

/// A module printing `text` (the deploy → served measurement).
fn print_module(text: &str) -> anyhow::Result<Vec<u8>> {
    Ok(wat::parse_str(aether_fixtures::print_wat(text))?)
}

/// `PUT {control}/api/functions/{name}` with `wasm` as `application/wasm`
/// (admin token); its latency. An error unless it answers 201 (a new
/// version).
async fn put(
    client: &reqwest::Client,
    control: &str,
    name: &str,
    wasm: Vec<u8>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let resp = client
        .put(format!("{control}/api/functions/{name}"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .with_context(|| format!("deploying {name} to {control}"))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let took = started.elapsed();
    ensure!(
        status.as_u16() == 201,
        "deploy of {name} to {control} answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(took)
}

/// What one batch of deploys took.
#[derive(Debug, Default, Clone)]
struct Batch {
    /// Wall-clock time of the batch.
    elapsed: Duration,
    /// One latency per deploy made.
    latencies: Vec<Duration>,
}

impl Batch {
    fn add(&mut self, other: Batch) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Deploys `modules` (name, wasm) to `control` with `clients` concurrent
/// clients, each taking the next module when its previous deploy is
/// acknowledged; none is sent after `deadline`.
async fn deploy_batch(
    client: &reqwest::Client,
    control: &str,
    modules: Vec<(String, Vec<u8>)>,
    clients: usize,
    deadline: Instant,
) -> anyhow::Result<Batch> {
    let queue = Arc::new(Mutex::new(modules.into_iter()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (queue, client, control) = (queue.clone(), client.clone(), control.to_owned());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let next = queue.lock().expect("queue lock").next();
                let Some((name, wasm)) = next else { break };
                latencies.push(put(&client, &control, &name, wasm).await?);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    Ok(Batch {
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Measurement 1 at one client count.
#[derive(Debug, Default, Clone)]
struct Level {
    /// All rounds of each backend.
    total: [Batch; 2],
    /// PostgreSQL / redb deploys per second, round by round.
    paired: Vec<f64>,
}

/// Measurement 1: one [`Level`] per [`CLIENTS`].
async fn deploy_throughput(
    client: &reqwest::Client,
    cluster: &Cluster,
    dir: &Path,
    sizes: Sizes,
) -> anyhow::Result<Vec<Level>> {
    let controls = start_both(dir, cluster).await?;
    // Tags: distinct across backends, levels and rounds, so every deploy
    // is a new version (201). 50 names: new functions and new versions.
    let mut tag = 0u64;
    let mut modules = |n: usize| -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        (0..n)
            .map(|_| {
                tag += 1;
                Ok((format!("big-{}", tag % 50), big_module(tag, MODULE_DATA)?))
            })
            .collect()
    };
    for backend in [REDB, PG] {
        let warmup = modules(WARMUP_DEPLOYS)?;
        let far = Instant::now() + Duration::from_secs(600);
        deploy_batch(client, &controls[backend].url, warmup, 1, far).await?;
    }
    let per_round = sizes.deploys.div_ceil(sizes.deploy_rounds);
    let round_budget = sizes.deploy_budget / sizes.deploy_rounds as u32;
    let mut results = Vec::new();
    for clients in CLIENTS {
        let mut level = Level::default();
        for round in 0..sizes.deploy_rounds {
            let n = per_round.min(sizes.deploys.saturating_sub(round * per_round));
            let mut rates = [0.0; 2];
            for backend in order(round) {
                let batch = modules(n)?;
                let deadline = Instant::now() + round_budget;
                let done =
                    deploy_batch(client, &controls[backend].url, batch, clients, deadline).await?;
                rates[backend] = done.per_second();
                level.total[backend].add(done);
            }
            level.paired.push(rates[PG] / rates[REDB]);
        }
        eprintln!(
            "  {}: redb {:.0}/s, PostgreSQL {:.0}/s, per round {}",
            self::clients(clients),
            level.total[REDB].per_second(),
            level.total[PG].per_second(),
            level
                .paired
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        results.push(level);
    }
    Ok(results)
}

/// What the manifest measurement found, per backend.
#[derive(Debug, Default, Clone)]
struct Manifest {
    /// The registering deploys (tiny modules, [`SEED_CLIENTS`] clients).
    seeding: Batch,
    /// One latency per timed request.
    latencies: Vec<Duration>,
    /// Size of the answer.
    body_bytes: usize,
}

/// `GET {control}/api/functions/manifest` (admin token), body read; its
/// latency and the body.
async fn get_manifest(
    client: &reqwest::Client,
    control: &str,
) -> anyhow::Result<(Duration, bytes::Bytes)> {
    let started = Instant::now();
    let resp = client
        .get(format!("{control}/api/functions/manifest"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let took = started.elapsed();
    ensure!(
        status.is_success(),
        "manifest of {control} answered {status}"
    );
    Ok((took, body))
}

/// Measurement 2.
async fn manifest_latency(
    client: &reqwest::Client,
    cluster: &Cluster,
    dir: &Path,
    sizes: Sizes,
) -> anyhow::Result<[Manifest; 2]> {
    let controls = start_both(dir, cluster).await?;
    let mut results: [Manifest; 2] = Default::default();
    let chunks = sizes.functions.div_ceil(sizes.seed_chunk);
    let far = Instant::now() + Duration::from_secs(3600);
    for chunk in 0..chunks {
        let range = chunk * sizes.seed_chunk..((chunk + 1) * sizes.seed_chunk).min(sizes.functions);
        for backend in order(chunk) {
            let modules = range
                .clone()
                .map(|i| Ok((format!("fn-{i:05}"), tiny_module(i)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let done =
                deploy_batch(client, &controls[backend].url, modules, SEED_CLIENTS, far).await?;
            results[backend].seeding.add(done);
        }
    }
    for backend in [REDB, PG] {
        let count = results[backend].seeding.latencies.len();
        ensure!(
            count == sizes.functions,
            "{} registered {count} of {} functions",
            BACKENDS[backend],
            sizes.functions
        );
        for _ in 0..WARMUP_MANIFESTS {
            let (_, body) = get_manifest(client, &controls[backend].url).await?;
            let listed = serde_json::from_slice::<Value>(&body)?["functions"]
                .as_array()
                .map_or(0, Vec::len);
            ensure!(
                listed == sizes.functions,
                "the manifest of {} lists {listed} functions, not {}",
                BACKENDS[backend],
                sizes.functions
            );
            results[backend].body_bytes = body.len();
        }
    }
    eprintln!(
        "  seeded {} functions: redb {:.0}/s, PostgreSQL {:.0}/s",
        sizes.functions,
        results[REDB].seeding.per_second(),
        results[PG].seeding.per_second()
    );
    for round in 0..sizes.manifest_requests {
        for backend in order(round) {
            let (took, _) = get_manifest(client, &controls[backend].url).await?;
            results[backend].latencies.push(took);
        }
    }
    Ok(results)
}

/// What the deploy → served measurement found, per backend.
#[derive(Debug, Default, Clone)]
struct Served {
    /// Deploy acknowledged → every edge serves the new version.
    served: Vec<Duration>,
    /// The deploy's own latency (until acknowledged).
    acks: Vec<Duration>,
}

/// Polls `GET {control}/api/nodes` until it lists `n` nodes.
async fn wait_nodes(client: &reqwest::Client, control: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = match client
            .get(format!("{control}/api/nodes"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
        {
            Ok(resp) => resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0),
            Err(_) => 0,
        };
        if listed == n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{control} lists {listed} nodes, not {n}, after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deploys a module printing `text` as `function` through `control`, then
/// polls every edge (concurrently, every [`POLL`]) until it answers
/// `/execute` with 200 and `text`; the deploy's latency and the time from
/// its acknowledgement until the last edge served it.
async fn deploy_until_served(
    client: &reqwest::Client,
    control: &str,
    edges: &[String],
    function: &str,
    text: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let ack = put(client, control, function, print_module(text)?).await?;
    let acked = Instant::now();
    let mut pollers = tokio::task::JoinSet::new();
    for edge in edges {
        let (client, url) = (client.clone(), format!("{edge}/execute"));
        let (function, text) = (function.to_owned(), text.to_owned());
        pollers.spawn(async move {
            loop {
                let answer = client
                    .post(&url)
                    .json(&json!({ "function": function }))
                    .send()
                    .await;
                if let Ok(resp) = answer
                    && resp.status().as_u16() == 200
                    && let Ok(body) = resp.json::<Value>().await
                    && body["output"] == text.as_str()
                {
                    return Ok(acked.elapsed());
                }
                if acked.elapsed() > SERVED_LIMIT {
                    bail!("{function} printing {text:?} never reached {url}");
                }
                tokio::time::sleep(POLL).await;
            }
        });
    }
    let mut last = Duration::ZERO;
    while let Some(done) = pollers.join_next().await {
        last = last.max(done??);
    }
    Ok((ack, last))
}

/// Measurement 3.
async fn deploy_to_served(
    client: &reqwest::Client,
    cluster: &Cluster,
    dir: &Path,
    sizes: Sizes,
) -> anyhow::Result<[Served; 2]> {
    let edge_options = EdgeOptions {
        node_timeout: NODE_TIMEOUT,
        reconcile_interval: RECONCILE_INTERVAL,
        ..EdgeOptions::default()
    };
    // redb: one control plane, three edges on it.
    let redb = start_backend(REDB, &dir.join("redb"), cluster).await?;
    // PostgreSQL: replicas A and B on one database; edges 1 and 3 on A,
    // edge 2 on B; deploys go through A.
    let db = cluster
        .fresh_database("served")
        .map_err(anyhow::Error::msg)?;
    let a = start_replica(&dir.join("pg-a"), free_port(), &db, NODE_TIMEOUT).await?;
    let b = start_replica(&dir.join("pg-b"), free_port(), &db, NODE_TIMEOUT).await?;
    let mut edges: [Vec<Process>; 2] = Default::default();
    for i in 0..EDGES {
        edges[REDB].push(
            start_edge(
                &dir.join(format!("redb-edge{}", i + 1)),
                free_port(),
                &redb.url,
                &edge_options,
            )
            .await?,
        );
        let replica = if i == 1 { &b.url } else { &a.url };
        edges[PG].push(
            start_edge(
                &dir.join(format!("pg-edge{}", i + 1)),
                free_port(),
                replica,
                &edge_options,
            )
            .await?,
        );
    }
    wait_nodes(client, &redb.url, EDGES).await?;
    wait_nodes(client, &a.url, EDGES).await?;
    wait_nodes(client, &b.url, EDGES).await?;
    let controls = [&redb.url, &a.url];
    let urls: [Vec<String>; 2] = [
        edges[REDB].iter().map(|e| e.url.clone()).collect(),
        edges[PG].iter().map(|e| e.url.clone()).collect(),
    ];
    // Untimed: the first deploy, so every edge knows the function.
    for backend in [REDB, PG] {
        deploy_until_served(
            client,
            controls[backend],
            &urls[backend],
            "bench",
            "warm-up",
        )
        .await?;
    }
    let mut results: [Served; 2] = Default::default();
    for round in 0..sizes.served_rounds {
        for backend in order(round) {
            let text = format!("round-{round:04}");
            let (ack, served) =
                deploy_until_served(client, controls[backend], &urls[backend], "bench", &text)
                    .await?;
            results[backend].acks.push(ack);
            results[backend].served.push(served);
        }
    }
    Ok(results)
}

fn sorted(values: &[Duration]) -> Vec<Duration> {
    let mut v = values.to_vec();
    v.sort();
    v
}

fn p(values: &[Duration], q: f64) -> Duration {
    crate::percentile(&sorted(values), q)
}

fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn clients(n: usize) -> String {
    if n == 1 {
        "1 client".into()
    } else {
        format!("{n} clients")
    }
}

fn ratio(pg: f64, redb: f64) -> String {
    format!("{:.2}×", pg / redb)
}

fn row(s: &mut String, what: &str, redb: String, pg: String, ratio: String) {
    let _ = writeln!(s, "| {what} | {redb} | {pg} | {ratio} |");
}

/// A latency row: both backends' `q` quantile and their ratio.
fn latency_row(s: &mut String, what: &str, v: &[Vec<Duration>; 2], q: f64) {
    let (redb, pg) = (p(&v[REDB], q), p(&v[PG], q));
    row(
        s,
        what,
        fmt_ms(redb),
        fmt_ms(pg),
        ratio(pg.as_secs_f64(), redb.as_secs_f64()),
    );
}

fn max_row(s: &mut String, what: &str, v: &[Vec<Duration>; 2]) {
    let max = |v: &[Duration]| v.iter().copied().max().unwrap_or_default();
    let (redb, pg) = (max(&v[REDB]), max(&v[PG]));
    row(
        s,
        what,
        fmt_ms(redb),
        fmt_ms(pg),
        ratio(pg.as_secs_f64(), redb.as_secs_f64()),
    );
}

fn header(s: &mut String, title: &str) {
    let _ = writeln!(s, "\n{title}\n");
    let _ = writeln!(s, "| | redb | PostgreSQL | PostgreSQL / redb |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
}

fn tables(
    s: &mut String,
    sizes: Sizes,
    deploys: &[Level],
    manifest: &[Manifest; 2],
    served: &[Served; 2],
) {
    let module_kib = big_module(0, MODULE_DATA).map_or(0, |m| m.len()) as f64 / 1024.0;
    header(
        s,
        &format!(
            "Deploys per second: distinct {module_kib:.1} KiB modules, `PUT /api/functions/{{name}}` \
             (`application/wasm`), {} per backend and client count in {} alternating rounds:",
            sizes.deploys, sizes.deploy_rounds
        ),
    );
    let mut deploy_ratios = Vec::new();
    let mut paired_medians = Vec::new();
    for (n, level) in CLIENTS.iter().zip(deploys) {
        let (redb, pg) = (level.total[REDB].per_second(), level.total[PG].per_second());
        deploy_ratios.push(pg / redb);
        let level_totals = &level.total;
        let counts = if level_totals[REDB].latencies.len() == sizes.deploys
            && level_totals[PG].latencies.len() == sizes.deploys
        {
            String::new()
        } else {
            format!(
                " ({} / {} deploys within the time budget)",
                level_totals[REDB].latencies.len(),
                level_totals[PG].latencies.len()
            )
        };
        row(
            s,
            &format!("deploys/s, {}{counts}", clients(*n)),
            format!("{redb:.0}"),
            format!("{pg:.0}"),
            ratio(pg, redb),
        );
        let mut paired = level.paired.clone();
        paired.sort_by(f64::total_cmp);
        let median = match paired.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => paired[n / 2],
            n => (paired[n / 2 - 1] + paired[n / 2]) / 2.0,
        };
        paired_medians.push(median);
        row(
            s,
            &format!(
                "deploys/s, {}: PostgreSQL / redb round by round, median (min–max of {})",
                clients(*n),
                paired.len()
            ),
            String::new(),
            String::new(),
            format!(
                "{median:.2}× ({:.2}–{:.2})",
                paired.first().copied().unwrap_or(f64::NAN),
                paired.last().copied().unwrap_or(f64::NAN)
            ),
        );
        let lat = [
            level_totals[REDB].latencies.clone(),
            level_totals[PG].latencies.clone(),
        ];
        latency_row(
            s,
            &format!("deploy latency p50, {}", clients(*n)),
            &lat,
            0.5,
        );
        latency_row(
            s,
            &format!("deploy latency p99, {}", clients(*n)),
            &lat,
            0.99,
        );
    }

    header(
        s,
        &format!(
            "`GET /api/functions/manifest` (admin token, body read) with {} functions, {} requests \
             per backend, alternating:",
            sizes.functions, sizes.manifest_requests
        ),
    );
    let lat = [
        manifest[REDB].latencies.clone(),
        manifest[PG].latencies.clone(),
    ];
    latency_row(s, "manifest p50", &lat, 0.5);
    latency_row(s, "manifest p99", &lat, 0.99);
    max_row(s, "manifest max", &lat);
    row(
        s,
        "manifest body",
        format!("{:.2} MB", manifest[REDB].body_bytes as f64 / 1e6),
        format!("{:.2} MB", manifest[PG].body_bytes as f64 / 1e6),
        ratio(
            manifest[PG].body_bytes as f64,
            manifest[REDB].body_bytes as f64,
        ),
    );
    let (seed_redb, seed_pg) = (
        manifest[REDB].seeding.per_second(),
        manifest[PG].seeding.per_second(),
    );
    row(
        s,
        &format!(
            "registering them: deploys/s of a tiny module, {SEED_CLIENTS} clients, chunks of {} alternating",
            sizes.seed_chunk
        ),
        format!("{seed_redb:.0}"),
        format!("{seed_pg:.0}"),
        ratio(seed_pg, seed_redb),
    );
    let seed_lat = [
        manifest[REDB].seeding.latencies.clone(),
        manifest[PG].seeding.latencies.clone(),
    ];
    latency_row(s, "their deploy latency p50", &seed_lat, 0.5);
    latency_row(s, "their deploy latency p99", &seed_lat, 0.99);

    header(
        s,
        &format!(
            "Deploy acknowledged → served by all {EDGES} edges (new version of one function, each \
             edge polled every {} ms until `/execute` answers 200 with the new output; periodic \
             reconcile {RECONCILE_INTERVAL}, so notifications move it), {} rounds per backend, \
             alternating. redb: one control plane, {EDGES} edges on it. PostgreSQL: replicas A \
             and B on one database, edges 1 and 3 on A, edge 2 on B, deploys through A:",
            POLL.as_millis(),
            sizes.served_rounds
        ),
    );
    let lat = [served[REDB].served.clone(), served[PG].served.clone()];
    latency_row(s, "served by all edges p50", &lat, 0.5);
    latency_row(s, "served by all edges p99", &lat, 0.99);
    max_row(s, "served by all edges max", &lat);
    let acks = [served[REDB].acks.clone(), served[PG].acks.clone()];
    latency_row(s, "the deploy itself (until acknowledged) p50", &acks, 0.5);

    // The issue's targets.
    let worst = deploy_ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let met = |ok: bool| if ok { "met" } else { "missed" };
    let manifest_p99 = p(&manifest[PG].latencies, 0.99);
    let _ = writeln!(
        s,
        "\nTargets: PostgreSQL within 2× of redb on deploys/s — {} (PostgreSQL / redb over all \
         rounds {}; round-by-round medians {}); PostgreSQL manifest p99 under 50 ms with {} \
         functions — {} ({}).",
        met(worst >= 0.5),
        deploy_ratios
            .iter()
            .zip(CLIENTS)
            .map(|(r, c)| format!("{r:.2} at {}", clients(c)))
            .collect::<Vec<_>>()
            .join(", "),
        paired_medians
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        sizes.functions,
        met(manifest_p99 < Duration::from_millis(50)),
        fmt_ms(manifest_p99)
    );
}

/// Appends + `fdatasync`s timed by [`fsync_probe`].
const FSYNC_PROBES: usize = 50;

/// The median time of a 4 KiB append followed by `fdatasync`, in `dir`:
/// what one durable commit costs at least on this disk right now.
fn fsync_probe(dir: &Path) -> anyhow::Result<Duration> {
    use std::io::Write as _;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0x5a_u8; 4096];
    let mut times = Vec::with_capacity(FSYNC_PROBES);
    for _ in 0..FSYNC_PROBES {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(p(&times, 0.5))
}

/// The machine, versions, date and command, as the load benchmark prints
/// them.
fn facts(s: &mut String, o: &Options, pg_version: &str, pg_settings: &str, fsync: [Duration; 2]) {
    // target/<profile>/aether-bench
    let profile = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "release".into());
    let _ = writeln!(s, "## Control plane: redb vs PostgreSQL\n");
    let _ = writeln!(
        s,
        "- Machine: {}; the benchmark client, the control planes, the edges and PostgreSQL \
         share the cores.",
        machine()
    );
    let _ = writeln!(
        s,
        "- Versions: aether {} ({}), {}, PostgreSQL {pg_version} (a throwaway server from \
         `aether_fixtures::postgres`, loopback TCP; {pg_settings}).",
        env!("CARGO_PKG_VERSION"),
        command_line("git", &["describe", "--always", "--dirty"]),
        command_line("rustc", &["-V"]),
    );
    let _ = writeln!(
        s,
        "- Date: {}. Command: `cargo build{release} -p aether-control -p aether-engine -p \
         aether-bench && ./target/{profile}/aether-bench control{smoke}` ({profile} binaries \
         beside aether-bench, tokens on, redb: `--db FILE --func-dir BLOBDIR`, PostgreSQL: \
         `AETHER_DATABASE_URL`).",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        release = if profile == "release" {
            " --release"
        } else {
            ""
        },
        smoke = if o.smoke { " --smoke" } else { "" },
    );
    let _ = writeln!(
        s,
        "- Disk: a 4 KiB append + `fdatasync` in the temporary directory (where the redb file, \
         the blobs and PostgreSQL's data and WAL are), p50 of {FSYNC_PROBES}: {} before the \
         run, {} after (every deploy waits for at least one).",
        fmt_ms(fsync[0]),
        fmt_ms(fsync[1])
    );
    let _ = writeln!(
        s,
        "- Load average when the tables were written (other work on the box skews every row): {}.",
        load_average()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_valid_distinct_commands() {
        let engine = aether_runtime::validation_engine();
        let a = big_module(1, MODULE_DATA).unwrap();
        let b = big_module(2, MODULE_DATA).unwrap();
        assert_ne!(a, b);
        assert!(
            a.len() > MODULE_DATA && a.len() < MODULE_DATA + 200,
            "{}",
            a.len()
        );
        for wasm in [a, b, tiny_module(7).unwrap(), print_module("x").unwrap()] {
            aether_runtime::validate_command_module(engine, &wasm).unwrap();
        }
    }

    #[test]
    fn rounds_alternate_and_cover_every_deploy() {
        assert_eq!(order(0), [REDB, PG]);
        assert_eq!(order(1), [PG, REDB]);
        for sizes in [FULL, SMOKE] {
            let per_round = sizes.deploys.div_ceil(sizes.deploy_rounds);
            let total: usize = (0..sizes.deploy_rounds)
                .map(|r| per_round.min(sizes.deploys.saturating_sub(r * per_round)))
                .sum();
            assert_eq!(total, sizes.deploys);
        }
    }
}
