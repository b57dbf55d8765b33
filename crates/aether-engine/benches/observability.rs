//! Cost of observability on the hot path: hello_world through the
//! in-process edge router, side by side in one process, alternating runs
//! of
//!
//! - **on**: metrics recorder, request-id + span middleware, and a JSON
//!   tracing subscriber with the binary's default filter (`info`, with
//!   `wasmtime_wasi` at `warn`: what a production edge runs), and
//! - **off**: `AppState` with `telemetry = false` (no recorder, no
//!   middleware) and the subscriber's filter set to `off`.
//!
//! `cargo bench -p aether-engine --bench observability [-- SECONDS ROUNDS CONCURRENCY]`
//! (defaults 3 s per run, 5 rounds, 4 concurrent callers).
//! `AETHER_BENCH_LOG=off` keeps metrics and the middleware but no logging;
//! `AETHER_BENCH_AA=1` runs "off" against "off" (the noise floor). Needs
//! `examples/target/wasm32-wasip1/release/hello_world.wasm`
//! (`cd examples && cargo build --release`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aether_engine::{AppState, EngineConfig};
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, reload};

const BODY: &str = r#"{"function":"hello_world","input":{"msg":"Hello from Aether!"}}"#;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let seconds: f64 = args.first().map_or(Ok(3.0), |a| a.parse())?;
    let rounds: usize = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let concurrency: usize = args.get(2).map_or(Ok(4), |a| a.parse())?;
    let wasm_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/target/wasm32-wasip1/release/hello_world.wasm");
    let wasm = std::fs::read(&wasm_path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; build it with `cd examples && cargo build --release`",
            wasm_path.display()
        )
    })?;

    // AETHER_BENCH_AA=1 makes the "on" side a second "off" edge: an A/A
    // run whose differences are this machine's noise floor.
    let aa = std::env::var_os("AETHER_BENCH_AA").is_some();
    // The filter of the "on" runs (`info` unless AETHER_BENCH_LOG says
    // otherwise, e.g. `off` to measure metrics alone).
    let on_filter = if aa {
        "off".to_owned()
    } else {
        std::env::var("AETHER_BENCH_LOG")
            .unwrap_or_else(|_| aether_engine::DEFAULT_LOG_FILTER.into())
    };
    // One subscriber for the process; its filter is switched per run.
    let (filter, reload) = reload::Layer::new(EnvFilter::new("off"));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_span_list(false)
                .with_writer(std::io::sink),
        )
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let state = |name: &str, telemetry: bool| -> anyhow::Result<AppState> {
        let root = dir.path().join(name);
        let func_dir = root.join("functions");
        std::fs::create_dir_all(&func_dir)?;
        std::fs::write(func_dir.join("hello_world.wasm"), &wasm)?;
        let config = EngineConfig {
            port: 0,
            func_dir,
            data_dir: root.join("data"),
            telemetry,
            control_url: None,
            ..EngineConfig::default()
        };
        Ok(AppState::new(config)?)
    };
    let on = aether_engine::app(state("on", !aa)?);
    let off = aether_engine::app(state("off", false)?);

    println!(
        "observability overhead: hello_world via the in-process router, {concurrency} callers, {seconds} s per run, {rounds} rounds (off/on alternating){}",
        if aa {
            "; A/A: \"on\" is a second \"off\" edge"
        } else {
            ""
        }
    );
    let mut results: Vec<((f64, f64), (f64, f64))> = Vec::new();
    runtime.block_on(async {
        // Warm both (compile, caches) before measuring.
        run(&off, 1.0, concurrency).await;
        run(&on, 1.0, concurrency).await;
        for round in 0..rounds {
            reload.modify(|f| *f = EnvFilter::new("off"))?;
            let base = run(&off, seconds, concurrency).await;
            reload.modify(|f| *f = EnvFilter::new(&on_filter))?;
            let with = run(&on, seconds, concurrency).await;
            println!(
                "round {}: off {:.0} req/s {:.1} cpu-us/req, on {:.0} req/s {:.1} cpu-us/req (throughput {:+.2}%, cpu {:+.2}%)",
                round + 1,
                base.0,
                base.1,
                with.0,
                with.1,
                (with.0 / base.0 - 1.0) * 100.0,
                (with.1 / base.1 - 1.0) * 100.0
            );
            results.push((base, with));
        }
        anyhow::Ok(())
    })?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(results.iter().map(|r| r.0.0).collect());
    let with = median(results.iter().map(|r| r.1.0).collect());
    let paired = median(
        results
            .iter()
            .map(|r| (r.1.0 / r.0.0 - 1.0) * 100.0)
            .collect(),
    );
    let cpu_base = median(results.iter().map(|r| r.0.1).collect());
    let cpu_with = median(results.iter().map(|r| r.1.1).collect());
    let cpu_paired = median(
        results
            .iter()
            .map(|r| (r.1.1 / r.0.1 - 1.0) * 100.0)
            .collect(),
    );
    println!(
        "median: off {base:.0} req/s, on {with:.0} req/s; median paired throughput difference {paired:+.2}%"
    );
    println!(
        "median CPU per request: off {cpu_base:.1} us, on {cpu_with:.1} us; median paired difference {cpu_paired:+.2}%"
    );
    Ok(())
}

/// CPU time this process has used.
fn cpu_time() -> Duration {
    aether_fixtures::cpu_time(std::process::id()).expect("/proc/self/stat")
}

/// Requests per second of `app` over `seconds` with `concurrency` callers,
/// and CPU microseconds per request.
async fn run(
    app: &aether_http::RequestContext<axum::Router>,
    seconds: f64,
    concurrency: usize,
) -> (f64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = cpu_time();
    let started = Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (app, done, stop) = (app.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = Request::post("/execute")
                        .header("content-type", "application/json")
                        .body(Body::from(BODY))
                        .expect("valid request");
                    let response = app.clone().oneshot(request).await.expect("infallible");
                    assert!(response.status().is_success(), "{}", response.status());
                    axum::body::to_bytes(response.into_body(), usize::MAX)
                        .await
                        .expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.expect("caller");
    }
    let n = done.load(Ordering::Relaxed) as f64;
    let cpu_us = (cpu_time() - cpu).as_secs_f64() * 1e6 / n;
    (n / started.elapsed().as_secs_f64(), cpu_us)
}
