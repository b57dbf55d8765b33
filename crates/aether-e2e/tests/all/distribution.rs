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

/// The original quick start starts the edge before (or without) the
/// control plane: it serves its `func_dir` at once, says once that it
/// cannot reach the control plane, registers when one appears, and then
/// serves managed functions beside its local files. A managed function
/// hides a local file of the same name until it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_serves_func_dir_while_no_control_plane_answers_then_registers()
-> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let edge_dir = root.path().join("edge");
    let print = |text: &str| wat::parse_str(aether_fixtures::print_wat(text)).expect("valid wat");
    std::fs::create_dir_all(edge_dir.join("functions"))?;
    std::fs::write(edge_dir.join("functions/local.wasm"), print("from a file"))?;
    std::fs::write(edge_dir.join("functions/both.wasm"), print("file version"))?;
    let control_port = free_port();
    let control_url = format!("http://127.0.0.1:{control_port}");
    let edge = start_edge(&edge_dir, free_port(), &control_url, &EdgeOptions::quiet()).await?;

    assert!(serves(&edge.url, "local", json!(null), "from a file").await);
    // Several retries pass (backoff from 250 ms); one line says why.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = edge.log_text();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert_eq!(complaints.len(), 1, "one clear line, got: {complaints:#?}");
    assert!(
        complaints[0].contains("cannot reach the control plane")
            && complaints[0].contains(&control_url),
        "{}",
        complaints[0]
    );

    let control = start_control(&root.path().join("control"), control_port, "30s").await?;
    eventually(Duration::from_secs(10), "the edge registers", || async {
        let (_, nodes) = admin(Method::GET, format!("{}/api/nodes", control.url), None)
            .await
            .unwrap_or_default();
        nodes
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["status"] == "online"))
    })
    .await?;
    deploy(&control.url, "managed", &print("from the control plane")).await?;
    assert!(serves(&edge.url, "managed", json!(null), "from the control plane").await);
    assert!(serves(&edge.url, "local", json!(null), "from a file").await);

    deploy(&control.url, "both", &print("deployed version")).await?;
    eventually(Duration::from_secs(10), "the deploy hides the file", || {
        serves(&edge.url, "both", json!(null), "deployed version")
    })
    .await?;
    let (status, _) = admin(
        Method::DELETE,
        format!("{}/api/functions/both", control.url),
        None,
    )
    .await?;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(10), "the file is served again", || {
        serves(&edge.url, "both", json!(null), "file version")
    })
    .await?;
    // Downloaded modules live in the data dir, not among the operator's files.
    let files: Vec<String> = std::fs::read_dir(edge_dir.join("functions"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(std::fs::read_dir(edge_dir.join("data/modules"))?.count() >= 1);
    Ok(())
}
