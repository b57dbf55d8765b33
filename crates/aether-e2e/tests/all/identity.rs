//! One identity per edge, with the real binaries: an edge joins once with
//! the join token and keeps its own credential (mode 0600; the control
//! plane stores only its hash), a restart reuses it, an edge claiming a
//! joined node's id is refused, a removed edge is cut off, and admin
//! tokens rotate without a restart.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use aether_e2e::*;
use reqwest::Method;
use serde_json::Value;

async fn nodes(control: &Process) -> Vec<Value> {
    let (_, nodes) = admin(Method::GET, format!("{}/api/nodes", control.url), None)
        .await
        .unwrap_or_default();
    nodes.as_array().cloned().unwrap_or_default()
}

async fn functions_on(edge: &Process) -> u64 {
    let health: Value = client()
        .get(format!("{}/health", edge.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["functions"].as_u64().unwrap()
}

fn credential(dir: &Path) -> Value {
    let path = dir.join("data/node_credential.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_join_once_cannot_impersonate_each_other_and_are_cut_off_when_removed()
-> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let control = start_control(&root.path().join("control"), free_port(), "30s").await?;
    let a_dir = root.path().join("edge-a");
    let options = |extra: &[&str]| EdgeOptions {
        extra_args: extra.iter().map(|s| (*s).to_owned()).collect(),
        ..EdgeOptions::quiet()
    };
    let mut a = start_edge(
        &a_dir,
        free_port(),
        &control.url,
        &options(&["--node-id", "edge-a"]),
    )
    .await?;
    eventually(Duration::from_secs(10), "edge-a online", || async {
        nodes(&control)
            .await
            .iter()
            .any(|n| n["node_id"] == "edge-a" && n["status"] == "online")
    })
    .await?;
    let kept = credential(&a_dir);
    assert_eq!(kept["node_id"], "edge-a");
    let secret = kept["credential"].as_str().unwrap();
    assert!(secret.starts_with("aen1.edge-a."), "{secret}");
    // The control plane keeps only a hash of it.
    let db = std::fs::read(root.path().join("control/control.db"))?;
    let secret_part = secret.rsplit_once('.').unwrap().1.as_bytes();
    assert!(!db.windows(secret_part.len()).any(|w| w == secret_part));

    // A restart uses the kept credential (joining again would be refused).
    let a_url = a.url.clone();
    a.kill();
    let port: u16 = a_url.rsplit(':').next().unwrap().parse()?;
    let a = start_edge(
        &a_dir,
        port,
        &control.url,
        &options(&["--node-id", "edge-a"]),
    )
    .await?;
    deploy(&control.url, "one", &command("one")).await?;
    eventually(
        Duration::from_secs(10),
        "edge-a serves after its restart",
        || async { functions_on(&a).await == 1 },
    )
    .await?;
    assert_eq!(credential(&a_dir)["credential"], kept["credential"]);

    // Another machine with the join token claims edge-a's id.
    let impostor = start_edge(
        &root.path().join("impostor"),
        free_port(),
        &control.url,
        &options(&["--node-id", "edge-a"]),
    )
    .await?;
    eventually(
        Duration::from_secs(10),
        "the impostor is refused",
        || async {
            impostor
                .log_text()
                .contains("has joined with another credential")
        },
    )
    .await?;
    let listed = nodes(&control).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["url"], a.url.as_str(), "edge-a's address kept");
    assert!(
        !root
            .path()
            .join("impostor/data/node_credential.json")
            .exists()
    );

    // (Once edge-a is removed its id is free again: the impostor, still
    // retrying with the join token, would take it. Stop it first.)
    drop(impostor);

    // Revocation: edge-a is cut off, a new edge is not.
    let (status, _) = admin(
        Method::DELETE,
        format!("{}/api/nodes/edge-a", control.url),
        None,
    )
    .await?;
    assert_eq!(status, 200);
    eventually(
        Duration::from_secs(15),
        "edge-a logs why it is refused",
        || async { a.log_text().contains("node credential is not valid") },
    )
    .await?;
    let b = start_edge(
        &root.path().join("edge-b"),
        free_port(),
        &control.url,
        &options(&[]),
    )
    .await?;
    deploy(&control.url, "two", &command("two")).await?;
    eventually(
        Duration::from_secs(10),
        "edge-b has both functions",
        || async { functions_on(&b).await == 2 },
    )
    .await?;
    assert_eq!(functions_on(&a).await, 1, "a removed edge gets nothing new");
    let listed = nodes(&control).await;
    assert!(
        listed.iter().all(|n| n["node_id"] != "edge-a"),
        "{listed:?}"
    );
    let (status, events) = admin(Method::GET, format!("{}/api/events", control.url), None).await?;
    assert_eq!(status, 200);
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "node_removed" && e["node_id"] == "edge-a"),
        "{events}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_tokens_rotate_on_sighup_without_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("control.toml");
    let write = |tokens: &str| {
        std::fs::write(
            &config,
            format!("[auth]\nadmin_tokens = [{tokens}]\nnode_token = \"join\"\n"),
        )
    };
    write(r#""old", "new""#)?;
    let port = free_port();
    let mut args = control_args(dir.path(), port)?;
    args.extend(["--config".into(), config.display().to_string()]);
    let control = Process::start(
        &bin_dir().join("aether-control"),
        &args,
        &[],
        dir.path().join("control.log"),
        port,
    )
    .await?;
    let status = |token: &'static str| {
        let url = format!("{}/api/nodes", control.url);
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!((status("old").await, status("new").await), (200, 200));
    write(r#""new""#)?;
    let pid = control.pid().unwrap().to_string();
    let hangup = || {
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -HUP {pid}");
    };
    hangup();
    eventually(
        Duration::from_secs(10),
        "the old token stops working",
        || async { status("old").await == 401 },
    )
    .await?;
    assert_eq!(status("new").await, 200);
    assert!(control.log_text().contains("SIGHUP: tokens reloaded"));
    // A configuration that does not load keeps the current tokens.
    std::fs::write(&config, "[auth]\nadmin_tokens = [\"new\"]\n")?;
    hangup();
    eventually(
        Duration::from_secs(10),
        "the bad reload is logged",
        || async { control.log_text().contains("tokens unchanged") },
    )
    .await?;
    assert_eq!(status("new").await, 200);
    Ok(())
}

/// `POST /notify` on an edge: the node token opens it until the edge has
/// joined, then only the edge's own notify secret does; never nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edges_notify_wants_the_node_token_until_it_joins_then_its_own_secret() {
    let notify = |url: String, token: Option<String>| async move {
        let mut req = client().post(format!("{url}/notify"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap().status().as_u16()
    };
    // No control plane answers: the edge cannot join yet.
    let pending = TestEdge::start_with(|c| {
        c.control_url = Some(format!("http://127.0.0.1:{}", free_port()));
        c.node_token = aether_http::Secret::new(NODE_TOKEN);
    })
    .await;
    assert_eq!(notify(pending.url.clone(), None).await, 401);
    assert_eq!(notify(pending.url.clone(), Some("wrong".into())).await, 401);
    assert_eq!(
        notify(pending.url.clone(), Some(NODE_TOKEN.into())).await,
        202
    );
    pending.stop().await;

    let stack = TestStack::start().await;
    let kept: Value = serde_json::from_slice(
        &std::fs::read(stack.edge.data_dir.join(aether_engine::identity::FILE)).unwrap(),
    )
    .unwrap();
    let secret = kept["notify_secret"].as_str().unwrap().to_owned();
    let url = stack.edge.url.clone();
    assert_eq!(notify(url.clone(), None).await, 401);
    assert_eq!(notify(url.clone(), Some(NODE_TOKEN.into())).await, 401);
    assert_eq!(notify(url, Some(secret)).await, 202);
    stack.stop().await;
}
