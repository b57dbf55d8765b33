//! Soak: mixed good and hostile traffic against a real in-process edge for
//! a bounded time, sampling RSS and open file descriptors. Not part of CI.
//!
//! `cargo run --release -p aether-hostile --bin soak -- --duration 60s [--workers 16]`
//!
//! Exits non-zero if any answer was not the one expected for its request,
//! or if the edge stopped answering normal requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aether_hostile::{Edge, fixtures, proc, raw_exchange};
use serde_json::{Value, json};

/// A request kind: the function called and the answer expected.
struct Kind {
    name: &'static str,
    function: &'static str,
    status: u16,
    /// Share of the traffic, in percent.
    weight: u32,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "good",
        function: "echo",
        status: 200,
        weight: 70,
    },
    Kind {
        name: "loop",
        function: "spin",
        status: 504,
        weight: 3,
    },
    Kind {
        name: "sleep",
        function: "nap",
        status: 504,
        weight: 3,
    },
    Kind {
        name: "memory",
        function: "bomb",
        status: 507,
        weight: 4,
    },
    Kind {
        name: "flood",
        function: "flood",
        status: 502,
        weight: 4,
    },
    Kind {
        name: "trap",
        function: "trap",
        status: 500,
        weight: 4,
    },
    Kind {
        name: "recursion",
        function: "recurse",
        status: 500,
        weight: 4,
    },
    Kind {
        name: "invalid",
        function: "garbage",
        status: 422,
        weight: 3,
    },
    Kind {
        name: "bad json",
        function: "",
        status: 400,
        weight: 3,
    },
    Kind {
        name: "garbage tcp",
        function: "",
        status: 0,
        weight: 2,
    },
];

fn parse_args() -> anyhow::Result<(Duration, usize)> {
    let mut duration = Duration::from_secs(60);
    let mut workers = 16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))?;
        match arg.as_str() {
            "--duration" => duration = aether_proto::limits::parse_duration("duration", &value)?,
            "--workers" => workers = value.parse()?,
            other => anyhow::bail!("unknown argument {other}; use --duration 60s --workers 16"),
        }
    }
    Ok((duration, workers))
}

struct Counters {
    sent: Vec<AtomicU64>,
    unexpected: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (duration, workers) = parse_args()?;
    let edge = Arc::new(
        Edge::start_with(|c| {
            c.limits.timeout = Duration::from_millis(500);
            c.limits.max_stdout_bytes = 64 << 10;
        })
        .await,
    );
    edge.install_wat("spin", fixtures::SPIN);
    edge.install_wat("nap", &fixtures::sleep(1, 3_600_000_000_000, 0, false));
    edge.install_wat(
        "bomb",
        r#"(module (memory 1) (func (export "_start")
            (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable))"#,
    );
    edge.install_wat(
        "flood",
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 4096))
            (loop (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))) (br 0))))"#,
    );
    edge.install_wat("trap", &fixtures::partial_then_trap("partial", "dying"));
    edge.install_wat(
        "recurse",
        r#"(module (func $r (call $r)) (func (export "_start") (call $r)))"#,
    );
    edge.install("garbage", b"\0asm\x01\0\0\0 not a module");
    edge.assert_serves().await;

    let counters = Arc::new(Counters {
        sent: KINDS.iter().map(|_| AtomicU64::new(0)).collect(),
        unexpected: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let total_weight: u32 = KINDS.iter().map(|k| k.weight).sum();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (edge, counters, stop) = (edge.clone(), counters.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(w as u64);
            while !stop.load(Ordering::Relaxed) {
                let mut pick = rng.u32(..total_weight);
                let index = KINDS
                    .iter()
                    .position(|k| {
                        if pick < k.weight {
                            true
                        } else {
                            pick -= k.weight;
                            false
                        }
                    })
                    .unwrap_or(0);
                let kind = &KINDS[index];
                counters.sent[index].fetch_add(1, Ordering::Relaxed);
                let ok = match kind.name {
                    "garbage tcp" => {
                        let bytes: Vec<u8> = (0..rng.usize(1..2048)).map(|_| rng.u8(..)).collect();
                        let (answer, closed) =
                            raw_exchange(edge.addr, &bytes, Duration::from_secs(15)).await;
                        closed && (answer.is_empty() || answer.starts_with("HTTP/1.1 4"))
                    }
                    "bad json" => {
                        let (status, _) = edge
                            .post_raw(Some("application/json"), b"{\"function\": [1,".to_vec())
                            .await;
                        status == 400
                    }
                    _ => {
                        let tag = format!("soak {}", rng.u64(..));
                        let (status, body): (u16, Value) = edge
                            .execute(json!({"function": kind.function, "stdin": tag}))
                            .await;
                        status == kind.status && (status != 200 || body["output"] == tag.as_str())
                    }
                };
                if !ok {
                    counters.unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let started = Instant::now();
    let (rss0, fds0) = (proc::rss_kb(), proc::open_fds());
    println!(
        "soak: {workers} workers for {duration:?}; edge at {}",
        edge.url
    );
    println!(
        "{:>6} {:>10} {:>8} {:>6} {:>11}",
        "t(s)", "requests", "rss MiB", "fds", "unexpected"
    );
    let mut samples = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(10).min(duration.saturating_sub(started.elapsed())))
            .await;
        let sent: u64 = counters
            .sent
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let sample = (
            started.elapsed().as_secs(),
            sent,
            proc::rss_kb() / 1024,
            proc::open_fds(),
        );
        println!(
            "{:>6} {:>10} {:>8} {:>6} {:>11}",
            sample.0,
            sample.1,
            sample.2,
            sample.3,
            counters.unexpected.load(Ordering::Relaxed)
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    edge.assert_serves().await;
    let elapsed = started.elapsed();
    println!("\nby kind:");
    for (kind, sent) in KINDS.iter().zip(&counters.sent) {
        println!(
            "  {:<12} {:>9} (expect {})",
            kind.name,
            sent.load(Ordering::Relaxed),
            kind.status
        );
    }
    let sent: u64 = counters
        .sent
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum();
    let unexpected = counters.unexpected.load(Ordering::Relaxed);
    println!(
        "\n{sent} requests in {elapsed:.1?} ({:.0}/s), {unexpected} unexpected answers; rss {} -> {} MiB, fds {fds0} -> {}",
        sent as f64 / elapsed.as_secs_f64(),
        rss0 / 1024,
        proc::rss_kb() / 1024,
        proc::open_fds()
    );
    if let Ok(edge) = Arc::try_unwrap(edge) {
        edge.stop().await;
    }
    anyhow::ensure!(unexpected == 0, "{unexpected} unexpected answers");
    Ok(())
}
