//! Control-plane numbers for BENCHMARKS.md: deploys per second of a 100 KB
//! module over HTTP, manifest latency with 10 000 functions registered, and
//! database size per function.
//!
//! Run with `cargo bench -p aether-control --bench control`; set
//! `AETHER_BENCH_FUNCTIONS` to change the 10 000.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_control::{AppState, Config, app};
use aether_store::{DeploySpec, RedbStore, Store, StoreOptions};
use base64::Engine as _;

/// Size of the module of the deploy benchmark.
const MODULE_SIZE: usize = 100 * 1024;
/// Deploys per concurrency level.
const DEPLOYS: usize = 200;
/// Manifest requests measured.
const MANIFEST_REQUESTS: usize = 50;

/// A valid command module of about `size` bytes, unique per `tag`.
fn module(tag: usize, size: usize) -> Vec<u8> {
    let filler = "a".repeat(size.saturating_sub(64));
    wat::parse_str(format!(
        r#"(module (memory 2) (data (i32.const 0) "{tag:016}{filler}") (func (export "_start")))"#
    ))
    .expect("valid wat")
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn serve(dir: &Path) -> anyhow::Result<(String, Arc<RedbStore>)> {
    let config = Config {
        port: 0,
        db_path: dir.join("control.db"),
        blob_dir: dir.join("blobs"),
        ..Config::default()
    };
    let store = Arc::new(RedbStore::open(StoreOptions::new(
        &config.db_path,
        &config.blob_dir,
    ))?);
    let state = AppState::new(store.clone(), &config).expect("state over the store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        // The product's own accept loop (time limits, request context).
        let options = aether_http::ServeOptions::new(aether_control::server::BODY_READ_TIMEOUT);
        let forever = std::future::pending::<()>();
        if let Err(e) = aether_http::serve(listener, app(state), forever, options).await {
            eprintln!("server failed: {e}");
        }
    });
    Ok((url, store))
}

async fn deploys_per_second(
    url: &str,
    concurrency: usize,
    first_tag: usize,
) -> anyhow::Result<f64> {
    let bodies: Vec<String> = (0..DEPLOYS)
        .map(|i| {
            let wasm = module(first_tag + i, MODULE_SIZE);
            serde_json::json!({
                "name": format!("bench-{}", i % 50),
                "wasm_b64": base64::engine::general_purpose::STANDARD.encode(wasm),
            })
            .to_string()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (bodies, next, client, url) =
                (bodies.clone(), next.clone(), client.clone(), url.to_owned());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return anyhow::Ok(());
                    };
                    let r = client
                        .post(format!("{url}/api/functions"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    anyhow::ensure!(r.status() == 201, "deploy answered {}", r.status());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(DEPLOYS as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let functions: usize = std::env::var("AETHER_BENCH_FUNCTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    // 1. Deploys per second of a 100 KB module, POST /api/functions (base64
    //    JSON), validation + blob fsync + directory fsync + redb commit.
    let deploy_dir = tempfile::tempdir()?;
    let (url, _store) = serve(deploy_dir.path()).await?;
    // Warm the validation engine and the connection pool.
    deploys_per_second(&url, 1, 1_000_000).await?;
    println!("module size: {} bytes", module(0, MODULE_SIZE).len());
    for concurrency in [1, 4] {
        let rate = deploys_per_second(&url, concurrency, concurrency * 10_000).await?;
        println!("deploys/s, 100 KB module, JSON, {concurrency} concurrent client(s): {rate:.0}");
    }

    // 2. Manifest latency with `functions` registered (seeded through the
    //    store, each deploy its own durable commit as over HTTP).
    let manifest_dir = tempfile::tempdir()?;
    let (url, store) = serve(manifest_dir.path()).await?;
    let seed_start = Instant::now();
    let spec = DeploySpec::default();
    let seeders: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            let spec = spec.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                for i in (t..functions).step_by(4) {
                    let wasm = module(i, 200);
                    store.deploy(&format!("fn-{i:05}"), &wasm, &spec)?;
                }
                Ok(())
            })
        })
        .collect();
    for s in seeders {
        s.join()
            .map_err(|_| anyhow::anyhow!("seeding thread panicked"))??;
    }
    let seed = seed_start.elapsed();
    println!(
        "seeded {functions} functions through the store (4 threads) in {:.1} s: {:.0} deploys/s of a ~200 B module",
        seed.as_secs_f64(),
        functions as f64 / seed.as_secs_f64()
    );
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(MANIFEST_REQUESTS);
    let mut body_len = 0;
    for _ in 0..MANIFEST_REQUESTS + 5 {
        let start = Instant::now();
        let r = client
            .get(format!("{url}/api/functions/manifest"))
            .send()
            .await?;
        let bytes = r.bytes().await?;
        latencies.push(start.elapsed());
        body_len = bytes.len();
    }
    latencies.drain(..5);
    latencies.sort();
    println!(
        "manifest with {functions} functions: p50 {:.1} ms, p99 {:.1} ms, {:.1} MB body",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        body_len as f64 / 1e6
    );

    // 3. Database size per function (one version each, ~200 B modules).
    let db_size = std::fs::metadata(manifest_dir.path().join("control.db"))?.len();
    let blob_size = dir_size(&manifest_dir.path().join("blobs"));
    println!(
        "database: {:.2} MB for {functions} functions = {:.0} bytes/function (blobs separate: {:.0} bytes/function)",
        db_size as f64 / 1e6,
        db_size as f64 / functions as f64,
        blob_size as f64 / functions as f64
    );
    let deploy_db = std::fs::metadata(deploy_dir.path().join("control.db"))?.len();
    println!(
        "database after the deploy benchmark (50 functions, {} versions): {:.2} MB",
        DEPLOYS * 2 + DEPLOYS,
        deploy_db as f64 / 1e6
    );
    Ok(())
}
