//! Several control planes on one PostgreSQL database: real `aether-control`
//! replicas, real edges and a real PostgreSQL server
//! ([`aether_fixtures::postgres`]), all on loopback.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aether_e2e::*;
use aether_fixtures::postgres::Cluster;
use reqwest::Method;
use serde_json::{Value, json};

/// The test process's PostgreSQL server, or `None` after
/// [`aether_fixtures::skip_or_fail`].
fn shared_cluster() -> Option<&'static Cluster> {
    match aether_fixtures::postgres::shared() {
        Ok(cluster) => Some(cluster),
        Err(reason) => {
            aether_fixtures::skip_or_fail(&format!("no PostgreSQL server: {reason}"));
            None
        }
    }
}

/// sha256 of `bytes`, lowercase hex.
fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn function(control: &str, name: &str) -> anyhow::Result<(u16, Value)> {
    admin(Method::GET, format!("{control}/api/functions/{name}"), None).await
}

/// The module of `name` at `version`, downloaded from `control`.
async fn blob(control: &str, name: &str, version: u64) -> anyhow::Result<Vec<u8>> {
    let resp = client()
        .get(format!(
            "{control}/api/functions/{name}/wasm?version={version}"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?;
    Ok(resp.bytes().await?.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deploys_survive_a_replica_killed_mid_stream_fifty_times() -> anyhow::Result<()>
{
    let Some(cluster) = shared_cluster() else {
        return Ok(());
    };
    let db = cluster.fresh_database("kill").map_err(anyhow::Error::msg)?;
    let root = tempfile::tempdir()?;
    let survivor = start_replica(&root.path().join("b"), free_port(), &db, "30s").await?;
    // name, version → sha256 of what the acknowledged deploy sent.
    let mut acknowledged: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut cut_short = 0;
    for round in 0..50 {
        let mut victim = start_replica(&root.path().join("a"), free_port(), &db, "30s").await?;
        let url = victim.url.clone();
        // Deploys one after another until the replica dies under them;
        // every acknowledgement is kept.
        let stream = tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0.. {
                // Two names, so both new functions and new versions of
                // existing ones are cut.
                let name = format!("f{}", i % 2);
                let wasm = command(&format!("round {round} deploy {i}"));
                let sent = client()
                    .put(format!("{url}/api/functions/{name}"))
                    .bearer_auth(ADMIN_TOKEN)
                    .header("content-type", "application/wasm")
                    .body(wasm.clone())
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().as_u16() == 201 => {
                        let body: Value = resp.json().await.unwrap_or_default();
                        match body["version"].as_u64() {
                            Some(v) => acks.push((name, v, sha256(&wasm))),
                            // The answer was cut after the status line.
                            None => return (acks, true),
                        }
                    }
                    Ok(resp) => panic!("deploy answered {}", resp.status()),
                    Err(_) => return (acks, true),
                }
            }
            (acks, false)
        });
        tokio::time::sleep(Duration::from_millis(50 + fastrand::u64(0..400))).await;
        victim.kill();
        let (acks, cut) = stream.await?;
        cut_short += usize::from(cut);
        for (name, version, sha) in acks {
            let previous = acknowledged.insert((name.clone(), version), sha);
            assert!(previous.is_none(), "{name} v{version} acknowledged twice");
        }
    }
    assert!(
        acknowledged.len() >= 50,
        "only {} deploys acknowledged in 50 rounds",
        acknowledged.len()
    );
    // Everything acknowledged is there through the other replica, with
    // its bytes.
    for ((name, version), sha) in &acknowledged {
        let (status, info) = function(&survivor.url, name).await?;
        assert_eq!(status, 200, "{name}: {info}");
        let listed = info["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["version"] == *version))
            .unwrap_or_else(|| panic!("{name} v{version} lost: {info}"));
        assert_eq!(listed["sha256"], *sha, "{name} v{version}");
        let bytes = blob(&survivor.url, name, *version).await?;
        assert_eq!(sha256(&bytes), *sha, "{name} v{version}: blob damaged");
    }
    // Versions stay gapless: a deploy cut before its commit left nothing.
    for name in ["f0", "f1"] {
        let (_, info) = function(&survivor.url, name).await?;
        let versions: Vec<u64> = info["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    }
    eprintln!(
        "{} deploys acknowledged over 50 kills ({cut_short} cut mid-request)",
        acknowledged.len()
    );
    Ok(())
}

/// `GET path` through `control`: its status and body, giving up after
/// `bound` (a hang fails the test).
async fn get_within(control: &str, path: &str, bound: Duration) -> (u16, Value) {
    let started = Instant::now();
    let answer = tokio::time::timeout(bound, admin(Method::GET, format!("{control}{path}"), None))
        .await
        .unwrap_or_else(|_| panic!("GET {path} hung past {bound:?}"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    eprintln!("GET {path} -> {} in {:?}", answer.0, started.elapsed());
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_replicas_answer_503_edges_keep_serving_and_all_resumes()
-> anyhow::Result<()> {
    // Its own server: this test stops it.
    let mut cluster = match Cluster::start() {
        Ok(c) => c,
        Err(reason) => {
            aether_fixtures::skip_or_fail(&format!("no PostgreSQL server: {reason}"));
            return Ok(());
        }
    };
    let db = cluster
        .fresh_database("outage")
        .map_err(anyhow::Error::msg)?;
    let root = tempfile::tempdir()?;
    let a = start_replica(&root.path().join("a"), free_port(), &db, "3s").await?;
    let b = start_replica(&root.path().join("b"), free_port(), &db, "3s").await?;
    // The edge knows both replicas.
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &format!("{},{}", a.url, b.url),
        &EdgeOptions {
            node_timeout: "3s",
            reconcile_interval: "1s",
            ..EdgeOptions::default()
        },
    )
    .await?;
    deploy(&a.url, "hello", &hello_world_wasm()).await?;
    let hello = json!({"function": "hello", "input": {"msg": "hi"}});
    eventually(Duration::from_secs(10), "hello served", || async {
        execute(&edge.url, hello.clone()).await.0 == 200
    })
    .await?;

    cluster.stop().map_err(anyhow::Error::msg)?;
    let bound = Duration::from_secs(10);
    for replica in [&a, &b] {
        for path in ["/api/functions", "/api/functions/hello", "/api/nodes"] {
            let (status, body) = get_within(&replica.url, path, bound).await;
            assert_eq!(status, 503, "{path}: {body}");
            assert_eq!(code(&body), "unavailable", "{body}");
        }
        let refused = tokio::time::timeout(bound, deploy(&replica.url, "other", &command("x")))
            .await
            .expect("a deploy hung while the database was down");
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("503"), "{message}");
    }
    // The edge serves what it holds for as long as the outage lasts.
    for _ in 0..5 {
        assert_eq!(execute(&edge.url, hello.clone()).await.0, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Nothing died or hangs: /health says the replica cannot serve (a load
    // balancer takes it out), quickly and in JSON.
    for replica in [&a, &b] {
        let (status, body) = get_within(&replica.url, "/health", bound).await;
        assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    }

    cluster.resume().map_err(anyhow::Error::msg)?;
    eventually(
        Duration::from_secs(20),
        "replica b accepts deploys again",
        || async {
            deploy(&b.url, "after", &command("after the outage"))
                .await
                .is_ok()
        },
    )
    .await?;
    eventually(
        Duration::from_secs(20),
        "the edge runs what b took",
        || async {
            let (status, _) = execute(&edge.url, json!({"function": "after"})).await;
            status == 200
        },
    )
    .await?;
    eventually(
        Duration::from_secs(20),
        "the edge shows online through both",
        || async {
            let mut online = 0;
            for replica in [&a, &b] {
                if let Ok((200, nodes)) =
                    admin(Method::GET, format!("{}/api/nodes", replica.url), None).await
                    && nodes[0]["status"] == "online"
                {
                    online += 1;
                }
            }
            online == 2
        },
    )
    .await?;
    for replica in [&a, &b] {
        let log = replica.log_text();
        assert!(!log.contains("panicked"), "a replica panicked:\n{log}");
    }
    // Losing a replica for good: the edge carries on with the other.
    let mut a = a;
    a.kill();
    deploy(&b.url, "without-a", &command("without a")).await?;
    eventually(
        Duration::from_secs(20),
        "the edge runs what b took after a died",
        || async { execute(&edge.url, json!({"function": "without-a"})).await.0 == 200 },
    )
    .await?;
    let (status, nodes) = admin(Method::GET, format!("{}/api/nodes", b.url), None).await?;
    assert_eq!(
        (status, nodes[0]["status"].as_str()),
        (200, Some("online")),
        "{nodes}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_started_at_once_on_an_empty_database_initialise_it_once() -> anyhow::Result<()>
{
    let Some(cluster) = shared_cluster() else {
        return Ok(());
    };
    let db = cluster.fresh_database("init").map_err(anyhow::Error::msg)?;
    let root = tempfile::tempdir()?;
    let (dir_a, dir_b) = (root.path().join("a"), root.path().join("b"));
    let (a, b) = tokio::join!(
        start_replica(&dir_a, free_port(), &db, "30s"),
        start_replica(&dir_b, free_port(), &db, "30s"),
    );
    let (a, b) = (a?, b?);
    let db_name = db.rsplit('/').next().unwrap();
    let applied = cluster
        .psql(db_name, "SELECT count(*) FROM aether_schema")
        .map_err(anyhow::Error::msg)?;
    assert_eq!(applied.trim(), aether_store_schema_version().to_string());
    let migrated = [&a, &b]
        .iter()
        .map(|r| r.log_text().matches("database schema migrated").count())
        .sum::<usize>();
    assert_eq!(
        migrated,
        aether_store_schema_version() as usize,
        "migrations applied once in all"
    );
    // Both serve the one database.
    deploy(&a.url, "both", &command("both")).await?;
    let (status, _) = function(&b.url, "both").await?;
    assert_eq!(status, 200);
    // A graceful stop is clean: regression, a replica on PostgreSQL
    // aborted on SIGTERM (its connections closed on an async worker).
    let (mut a, mut b) = (a, b);
    for replica in [&mut a, &mut b] {
        let status = replica.terminate(Duration::from_secs(15))?;
        assert!(status.success(), "{status}; log:\n{}", replica.log_text());
    }
    Ok(())
}

fn aether_store_schema_version() -> u64 {
    aether_store::PG_SCHEMA_VERSION
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_act_as_one_for_deploys_rollbacks_nodes_notifications_and_stats()
-> anyhow::Result<()> {
    let Some(cluster) = shared_cluster() else {
        return Ok(());
    };
    let db = cluster.fresh_database("one").map_err(anyhow::Error::msg)?;
    let root = tempfile::tempdir()?;
    let a = start_replica(&root.path().join("a"), free_port(), &db, "30s").await?;
    let b = start_replica(&root.path().join("b"), free_port(), &db, "30s").await?;
    // The edge talks to b only and reconciles rarely: what it runs within
    // seconds of a deploy through a, a notification sent by a brought.
    let edge = start_edge(
        &root.path().join("edge"),
        free_port(),
        &b.url,
        &EdgeOptions::quiet(),
    )
    .await?;
    eventually(Duration::from_secs(10), "the edge registered", || async {
        matches!(admin(Method::GET, format!("{}/api/nodes", a.url), None).await, Ok((200, n)) if n.as_array().is_some_and(|n| n.len() == 1))
    })
    .await?;
    deploy(&a.url, "shared", &command("v1")).await?;
    deploy(&a.url, "shared", &echo_wasm()).await?;
    let took = eventually(
        Duration::from_secs(5),
        "the edge runs v2 (notified by a)",
        || async {
            let (status, body) =
                execute(&edge.url, json!({"function": "shared", "input": "ping"})).await;
            status == 200 && body["output"] == "\"ping\""
        },
    )
    .await?;
    eprintln!("deploy through a -> served by an edge of b in {took:?}");
    // A rollback through b reads the same through a.
    let (status, body) = admin(
        Method::POST,
        format!("{}/api/functions/shared/rollback", b.url),
        Some(json!({"version": 1})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (_, through_a) = function(&a.url, "shared").await?;
    let (_, through_b) = function(&b.url, "shared").await?;
    assert_eq!(through_a, through_b);
    assert_eq!(through_a["current_version"], 1);
    // Stats an edge reports to one replica show through the other: sent
    // to a with the edge's own credential, as the edge would.
    let credential: Value = serde_json::from_slice(&std::fs::read(
        root.path().join("edge/data/node_credential.json"),
    )?)?;
    let resp = client()
        .post(format!("{}/callback", a.url))
        .bearer_auth(credential["credential"].as_str().unwrap())
        .json(&json!({"event": "function_stats", "node_id": credential["node_id"], "data": {"function": "shared", "invocations": 7, "errors": 1, "p50_ms": 1.0, "p99_ms": 2.0}}))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 202);
    eventually(Duration::from_secs(5), "stats through b", || async {
        matches!(admin(Method::GET, format!("{}/api/functions/shared/stats", b.url), None).await, Ok((200, s)) if s["invocations"].as_u64().is_some_and(|n| n >= 7))
    })
    .await?;
    Ok(())
}
