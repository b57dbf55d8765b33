//! An edge given several control-plane URLs (`--control-url a,b`) uses
//! whichever answers: it registers through the next URL when the first is
//! down, and moves on when the one in use dies, saying so once.
//!
//! The two control planes here are independent (separate data dirs), not
//! replicas of one database: enough to see which one the edge talks to.

use std::time::Duration;

use aether_e2e::*;
use reqwest::Method;
use serde_json::json;

async fn serves(edge: &str, function: &str, expected: &str) -> bool {
    let (status, body) = execute(edge, json!({ "function": function })).await;
    status == 200 && body["output"] == expected
}

fn print(text: &str) -> Vec<u8> {
    wat::parse_str(aether_fixtures::print_wat(text)).expect("valid wat")
}

/// Whether `control` lists an online edge.
async fn has_online_edge(control: &str) -> bool {
    let (_, nodes) = admin(Method::GET, format!("{control}/api/nodes"), None)
        .await
        .unwrap_or_default();
    nodes
        .as_array()
        .is_some_and(|n| n.iter().any(|n| n["status"] == "online"))
}

/// The edge log's lines about changing control planes.
fn switches(edge: &Process) -> Vec<String> {
    edge.log_text()
        .lines()
        .filter(|l| l.contains("unreachable; using"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_joins_and_is_served_by_the_next_control_plane_when_the_first_is_down()
-> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let b = start_control(&root.path().join("b"), free_port(), "30s").await?;
    // With tokens: the join itself goes to the next URL.
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &format!("{dead},{}", b.url),
        &EdgeOptions::default(),
    )
    .await?;
    eventually(Duration::from_secs(10), "the edge registers with B", || {
        has_online_edge(&b.url)
    })
    .await?;
    deploy(&b.url, "hello", &print("from B")).await?;
    eventually(
        Duration::from_secs(10),
        "the edge serves B's function",
        || serves(&edge.url, "hello", "from B"),
    )
    .await?;

    let said = switches(&edge);
    assert_eq!(said.len(), 1, "one line, got {said:#?}");
    assert!(
        said[0].contains("WARN")
            && said[0].contains(&format!(
                "control plane {dead} unreachable; using {}",
                b.url
            )),
        "{}",
        said[0]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_moves_to_the_next_control_plane_when_the_one_in_use_dies() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    // Without tokens: independent control planes do not share the edge's
    // credential, as replicas of one database do.
    let open = |name: &'static str| {
        let dir = root.path().join(name);
        async move {
            let port = free_port();
            let mut args = control_args(&dir, port)?;
            args.extend(["--node-timeout".into(), "30s".into()]);
            let bin = bin_dir().join("aether-control");
            Process::start(&bin, &args, &[], dir.join("control.log"), port).await
        }
    };
    let mut a = open("a").await?;
    let b = open("b").await?;
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &format!("{},{}", a.url, b.url),
        &EdgeOptions {
            token: "",
            ..EdgeOptions::default()
        },
    )
    .await?;
    eventually(Duration::from_secs(10), "the edge registers with A", || {
        has_online_edge(&a.url)
    })
    .await?;
    deploy(&a.url, "one", &print("from A")).await?;
    eventually(
        Duration::from_secs(10),
        "the edge serves A's function",
        || serves(&edge.url, "one", "from A"),
    )
    .await?;
    assert!(
        !has_online_edge(&b.url).await,
        "B is not used while A answers"
    );
    assert!(switches(&edge).is_empty(), "{:#?}", switches(&edge));

    a.kill();
    // Its heartbeats (every 2s/3) go to B now.
    eventually(Duration::from_secs(5), "the edge registers with B", || {
        has_online_edge(&b.url)
    })
    .await?;
    deploy(&b.url, "two", &print("from B")).await?;
    let took = eventually(
        Duration::from_secs(5),
        "the edge serves B's function",
        || serves(&edge.url, "two", "from B"),
    )
    .await?;
    eprintln!("served from B {took:?} after the deploy");

    let said = switches(&edge);
    assert_eq!(said.len(), 1, "one line, got {said:#?}");
    assert!(
        said[0].contains(&format!(
            "control plane {} unreachable; using {}",
            a.url, b.url
        )),
        "{}",
        said[0]
    );
    Ok(())
}
