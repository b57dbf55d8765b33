//! Deploy once, run on every edge: deploys, new versions, rollback and
//! delete converge on three edges.

use std::time::{Duration, Instant};

use aether_e2e::*;
use reqwest::Method;
use serde_json::json;

async fn serves(edge: &str, function: &str, input: serde_json::Value, expected: &str) -> bool {
    let (status, body) = execute(edge, json!({"function": function, "input": input})).await;
    status == 200 && body["output"] == expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_versions_rollback_and_delete_converge_on_three_edges() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "2s").await?;
    let mut edges = Vec::new();
    for i in 0..3 {
        // Periodic reconciles are rare here: convergence must come from
        // the control plane's notifications.
        edges.push(
            start_edge(
                &root.path().join(format!("edge{i}")),
                free_port(),
                &control.url,
                &EdgeOptions {
                    reconcile_interval: "60s",
                    ..EdgeOptions::default()
                },
            )
            .await?,
        );
    }
    eventually(Duration::from_secs(10), "3 nodes online", || async {
        let (_, nodes) = admin(Method::GET, format!("{}/api/nodes", control.url), None)
            .await
            .unwrap_or_default();
        nodes
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["status"] == "online").count() == 3)
    })
    .await?;

    // v1: hello_world on every edge; time from the acknowledgement.
    let msg = json!({"msg": "Hello from Aether!"});
    let v1 = deploy(&control.url, "greet", &hello_world_wasm()).await?;
    let acked = Instant::now();
    // Watched through /health, so no request triggers an on-demand pull.
    for edge in &edges {
        eventually(Duration::from_secs(5), "v1 notified to an edge", || async {
            let health: serde_json::Value =
                match client().get(format!("{}/health", edge.url)).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => return false,
                };
            health["functions"] == 1
        })
        .await?;
    }
    println!("deploy → held by all 3 edges in {:?}", acked.elapsed());
    for edge in &edges {
        assert!(serves(&edge.url, "greet", msg.clone(), "Hello from Aether!").await);
    }
    assert_eq!(v1["version"], 1);

    // v2: a different module.
    let v2 = deploy(&control.url, "greet", &echo_wasm()).await?;
    assert_eq!(v2["version"], 2);
    for edge in &edges {
        eventually(Duration::from_secs(5), "v2 on an edge", || {
            serves(&edge.url, "greet", json!({"a": 1}), r#"{"a":1}"#)
        })
        .await?;
    }

    // The nodes report which version they hold.
    eventually(Duration::from_secs(10), "nodes report v2", || async {
        let (_, nodes) = admin(Method::GET, format!("{}/api/nodes", control.url), None)
            .await
            .unwrap_or_default();
        nodes
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["functions"]["greet"] == 2))
    })
    .await?;

    // Rollback to v1.
    let (status, body) = admin(
        Method::POST,
        format!("{}/api/functions/greet/rollback", control.url),
        Some(json!({"version": 1})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    for edge in &edges {
        eventually(Duration::from_secs(5), "rollback on an edge", || {
            serves(&edge.url, "greet", msg.clone(), "Hello from Aether!")
        })
        .await?;
    }

    // Delete: 404 everywhere and the module files leave the edges.
    let (status, body) = admin(
        Method::DELETE,
        format!("{}/api/functions/greet", control.url),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    for (i, edge) in edges.iter().enumerate() {
        eventually(Duration::from_secs(5), "delete on an edge", || async {
            execute(&edge.url, json!({"function": "greet"})).await.0 == 404
        })
        .await?;
        let dir = root.path().join(format!("edge{i}/functions"));
        eventually(Duration::from_secs(10), "blobs removed", || async {
            std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .all(|e| !e.file_name().to_string_lossy().ends_with(".wasm"))
                })
                .unwrap_or(false)
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_not_yet_pulled_is_served_on_demand_not_404() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "30s").await?;
    // The edge advertises an address where nothing listens, so it never
    // gets notifications, and reconciles only every minute.
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &control.url,
        &EdgeOptions {
            reconcile_interval: "60s",
            advertise_url: Some(format!("http://127.0.0.1:{}", free_port())),
            ..EdgeOptions::default()
        },
    )
    .await?;
    // Let the start-up reconcile pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    deploy(&control.url, "late", &echo_wasm()).await?;
    let (status, body) = execute(&edge.url, json!({"function": "late", "input": [1]})).await;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("[1]")),
        "{body}"
    );
    Ok(())
}
