//! Faults: a killed edge, a stopped control plane, a lost notification, a
//! wrong node token.

use std::time::Duration;

use aether_e2e::*;
use reqwest::Method;
use serde_json::json;

async fn node_status(control: &str, node_url: &str) -> Option<serde_json::Value> {
    let (_, nodes) = admin(Method::GET, format!("{control}/api/nodes"), None)
        .await
        .ok()?;
    nodes
        .as_array()?
        .iter()
        .find(|n| n["url"] == node_url)
        .cloned()
}

async fn events(control: &str) -> Vec<serde_json::Value> {
    let (_, page) = admin(
        Method::GET,
        format!("{control}/api/events?limit=1000"),
        None,
    )
    .await
    .unwrap_or_default();
    page["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_edge_goes_offline_and_comes_back_warm() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "2s").await?;
    let port = free_port();
    let dir = root.path().join("edge");
    let mut edge = start_edge(&dir, port, &control.url, &EdgeOptions::default()).await?;
    deploy(&control.url, "hello", &hello_world_wasm()).await?;
    eventually(Duration::from_secs(10), "served", || async {
        execute(&edge.url, json!({"function": "hello"})).await.0 == 200
    })
    .await?;

    edge.kill();
    let took = eventually(Duration::from_secs(6), "offline", || async {
        node_status(&control.url, &edge.url)
            .await
            .is_some_and(|n| n["status"] == "offline")
    })
    .await?;
    println!("SIGKILLed edge marked offline after {took:?} (node_timeout 2s)");

    let edge = start_edge(&dir, port, &control.url, &EdgeOptions::default()).await?;
    // It holds the function at once (restored from its saved manifest), even
    // before it reconciles.
    let (status, body) = execute(
        &edge.url,
        json!({"function": "hello", "input": {"msg": "back"}}),
    )
    .await;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("back")),
        "{body}"
    );
    assert_ne!(
        body["cache"], "compiled",
        "first request after restart recompiled"
    );
    eventually(Duration::from_secs(6), "online again", || async {
        node_status(&control.url, &edge.url)
            .await
            .is_some_and(|n| n["status"] == "online" && n["functions"]["hello"] == 1)
    })
    .await?;
    // The restarted edge loaded the module from its artifact, not by
    // compiling: its function_loaded events say so.
    eventually(
        Duration::from_secs(5),
        "function_loaded from disk reported",
        || async {
            // (The first run's own report may have died with it.)
            events(&control.url)
                .await
                .iter()
                .any(|e| e["event"] == "function_loaded" && e["data"]["source"] == "disk")
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_serve_without_the_control_plane_and_converge_after_it_returns() -> anyhow::Result<()>
{
    let root = tempfile::tempdir()?;
    let control_dir = root.path().join("control");
    let control_port = free_port();
    let mut control = start_control(&control_dir, control_port, "2s").await?;
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &control.url,
        &EdgeOptions::default(),
    )
    .await?;
    deploy(&control.url, "one", &echo_wasm()).await?;
    eventually(Duration::from_secs(10), "served", || async {
        execute(&edge.url, json!({"function": "one", "input": 1}))
            .await
            .0
            == 200
    })
    .await?;

    control.kill();
    for i in 0..20 {
        let (status, body) = execute(&edge.url, json!({"function": "one", "input": i})).await;
        assert_eq!(
            (status, body["output"].clone()),
            (200, json!(i.to_string()))
        );
    }

    let control = start_control(&control_dir, control_port, "2s").await?;
    deploy(&control.url, "two", &hello_world_wasm()).await?;
    eventually(
        Duration::from_secs(10),
        "converged after restart",
        || async {
            execute(
                &edge.url,
                json!({"function": "two", "input": {"msg": "ok"}}),
            )
            .await
            .1["output"]
                == "ok"
        },
    )
    .await?;
    // The edge reported the dropped events while the control plane was
    // down, not hung.
    let health: serde_json::Value = client()
        .get(format!("{}/health", edge.url))
        .send()
        .await?
        .json()
        .await?;
    assert!(health["events_dropped"].is_u64());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notification_heals_by_periodic_reconcile() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "30s").await?;
    // Notifications go to an address where nothing listens: every one is lost.
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &control.url,
        &EdgeOptions {
            reconcile_interval: "1s",
            advertise_url: Some(format!("http://127.0.0.1:{}", free_port())),
            ..EdgeOptions::default()
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    deploy(&control.url, "healed", &echo_wasm()).await?;
    // Without asking for it by name (which would pull on demand), the edge
    // reports holding it once its periodic reconcile ran.
    eventually(Duration::from_secs(10), "periodic reconcile", || async {
        let health: serde_json::Value =
            match client().get(format!("{}/health", edge.url)).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => return false,
            };
        health["functions"] == 1
    })
    .await?;
    let (status, _) = execute(&edge.url, json!({"function": "healed"})).await;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_with_a_wrong_node_token_is_refused_and_says_why() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "30s").await?;
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &control.url,
        &EdgeOptions {
            token: "not-the-node-token",
            ..EdgeOptions::default()
        },
    )
    .await?;
    eventually(
        Duration::from_secs(10),
        "the refusal in the edge's log",
        || async { edge.log_text().contains("refused this edge's join token") },
    )
    .await?;
    assert!(
        node_status(&control.url, &edge.url).await.is_none(),
        "an impostor was registered"
    );
    // It still serves (nothing) and answers health.
    let (status, _) = execute(&edge.url, json!({"function": "x"})).await;
    assert_eq!(status, 404);
    Ok(())
}
