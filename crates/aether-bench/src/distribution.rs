//! `aether-bench distribution`: deploy-to-ready across three edges, and the
//! cost of event reporting on the request path (one edge alone vs. the same
//! edge attached to a control plane, measured alternately in one run).

use std::time::{Duration, Instant};

use aether_e2e::{EdgeOptions, deploy, deploy_until_served, free_port, start_cluster, start_edge};
use anyhow::bail;

/// Deploys timed for deploy-to-ready.
const DEPLOYS: usize = 50;

/// A distinct module per deploy: it prints `v{i:06}`.
fn module(i: usize) -> anyhow::Result<Vec<u8>> {
    Ok(wat::parse_str(aether_fixtures::print_wat(&format!(
        "v{i:06}"
    )))?)
}

pub async fn run() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (control, edges) = start_cluster(root.path(), 3).await?;
    let mut times = Vec::with_capacity(DEPLOYS);
    for i in 0..DEPLOYS {
        let expected = format!("v{i:06}");
        let took = deploy_until_served(
            &control.url,
            &edges,
            "bench",
            &module(i)?,
            &expected,
            Duration::from_secs(30),
        )
        .await?;
        times.push(took);
    }
    times.sort();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "| deploy → served by all 3 edges ({DEPLOYS} deploys, loopback) | p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms |",
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    drop(edges);

    // Event reporting overhead: the same load against an edge alone and an
    // edge attached to the control plane, alternated to spread noise.
    let solo_dir = root.path().join("solo");
    std::fs::create_dir_all(solo_dir.join("functions"))?;
    std::fs::write(solo_dir.join("functions/bench.wasm"), module(0)?)?;
    let solo = aether_e2e::start_standalone_edge(&solo_dir, free_port()).await?;
    let attached = start_edge(
        &root.path().join("attached"),
        free_port(),
        &control.url,
        &EdgeOptions::quiet(),
    )
    .await?;
    deploy(&control.url, "bench", &module(0)?).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut alone, mut with_control) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        alone.push(load(&solo.url, Duration::from_secs(3), 16).await?);
        with_control.push(load(&attached.url, Duration::from_secs(3), 16).await?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "| /execute req/s, 16 connections, edge alone vs. attached to a control plane (events + stats flowing), 3 × 3 s alternated | {:.0} vs. {:.0} req/s (ratio {:.3}) |",
        mean(&alone),
        mean(&with_control),
        mean(&with_control) / mean(&alone)
    );
    Ok(())
}

/// Closed-loop load: `connections` clients send `POST /execute` back to
/// back for `duration`; returns requests per second.
async fn load(url: &str, duration: Duration, connections: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url) = (client.clone(), format!("{url}/execute"));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(r#"{"function":"bench"}"#)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!("status {}", resp.status());
                }
                resp.bytes().await?;
                n += 1;
            }
            Ok::<_, anyhow::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / duration.as_secs_f64())
}
