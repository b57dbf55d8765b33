//! Functions appearing and changing at run time, restarts and shutdown.

use std::time::Duration;

use serde_json::json;

use crate::{ECHO, LOOP, TestEdge, hello_world_wasm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_file_added_while_running_becomes_callable() {
    let edge = TestEdge::start().await;
    let (status, _) = edge.execute(json!({"function":"late"})).await;
    assert_eq!(status, 404);
    edge.install_wat("late", ECHO);
    // Served at once: an unknown name is looked up on disk.
    let (status, body) = edge.execute(json!({"function":"late","stdin":"hi"})).await;
    assert_eq!((status, body["output"].as_str()), (200, Some("hi")));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_function_file_is_served_without_restart() {
    let edge = TestEdge::start().await;
    edge.install_wat("f", ECHO);
    let (_, body) = edge.execute(json!({"function":"f","stdin":"v1"})).await;
    assert_eq!(body["output"], "v1");
    edge.install("f", &hello_world_wasm());
    let mut last = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, body) = edge
            .execute(json!({"function":"f","input":{"msg":"v2"}}))
            .await;
        if body["output"] == "v2" {
            last = Some(body);
            break;
        }
        assert_eq!(body["output"], r#"{"msg":"v2"}"#, "old or new, never a mix");
    }
    assert!(last.is_some(), "the new module was never served");
    // A deleted file stops being served.
    std::fs::remove_file(edge.func_dir.join("f.wasm")).unwrap();
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if edge.execute(json!({"function":"f"})).await.0 == 404 {
            gone = true;
            break;
        }
    }
    assert!(gone, "a deleted function was still served");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_edge_loads_from_disk_without_recompiling() {
    let root = tempfile::tempdir().unwrap();
    let edge = TestEdge::start_in(root.path(), |_| {}).await;
    edge.install("hello_world", &hello_world_wasm());
    let (_, body) = edge
        .execute(json!({"function":"hello_world","input":{"msg":"first"}}))
        .await;
    assert_eq!(body["output"], "first");
    let node_id = edge
        .get("/health")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["node_id"]
        .clone();
    edge.stop().await;

    // The start-up scan or the first request loads it, from the artifact.
    let edge = TestEdge::start_in(root.path(), |_| {}).await;
    let (status, body) = edge
        .execute(json!({"function":"hello_world","input":{"msg":"second"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "second");
    assert!(
        ["disk", "memory"].contains(&body["cache"].as_str().unwrap()),
        "{body}"
    );
    // The scanner's load may finish its bookkeeping a moment after the
    // request was served from what it inserted: wait for its count.
    let mut stats = edge.state.runtime().stats();
    for _ in 0..100 {
        if stats.disk_loads > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = edge.state.runtime().stats();
    }
    assert_eq!(
        stats.compiled, 0,
        "nothing recompiled after restart: {stats:?}"
    );
    assert_eq!(stats.disk_loads, 1, "{stats:?}");
    let health: serde_json::Value = edge.get("/health").await.json().await.unwrap();
    assert_eq!(health["node_id"], node_id, "same node after restart");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let mut edge = TestEdge::start_with(|c| c.limits.timeout = Duration::from_millis(800)).await;
    edge.install_wat("spin", LOOP);
    edge.install_wat("echo", ECHO);
    edge.execute(json!({"function":"echo"})).await;
    let in_flight = {
        let (client, url) = (edge.client.clone(), edge.url.clone());
        tokio::spawn(async move {
            let resp = client
                .post(format!("{url}/execute"))
                .json(&json!({"function":"spin"}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = edge.begin_stop();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
    server.await.unwrap().unwrap();
}

/// A crash between writing and renaming the node id, the saved manifest or
/// a downloaded module left `<file>.tmp` files that nothing removed. And
/// modules an older edge downloaded into `func_dir` move to the data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_files_of_writes_cut_short_are_removed_at_start() {
    let root = tempfile::tempdir().unwrap();
    let (data, functions) = (root.path().join("data"), root.path().join("functions"));
    let modules = data.join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::create_dir_all(&functions).unwrap();
    let blob = format!("{}.wasm", "ab".repeat(32));
    let mine = [
        data.join("node_id.tmp"),
        data.join("manifest.json.tmp"),
        modules.join(format!("{blob}.tmp")),
        // Where an older edge downloaded them.
        functions.join(format!("{blob}.tmp")),
    ];
    let not_mine = [data.join("notes.tmp"), functions.join("draft.wasm.tmp")];
    for f in mine.iter().chain(&not_mine) {
        std::fs::write(f, b"half").unwrap();
    }
    let old_blob = format!("{}.wasm", "cd".repeat(32));
    std::fs::write(functions.join(&old_blob), b"downloaded by an older edge").unwrap();
    let edge = TestEdge::start_in(root.path(), |c| {
        // Attached to a control plane that is not there: the edge keeps
        // retrying in the background.
        c.control_url = Some("http://127.0.0.1:9".into());
    })
    .await;
    assert!(!functions.join(&old_blob).exists());
    assert_eq!(
        std::fs::read(modules.join(&old_blob)).unwrap(),
        b"downloaded by an older edge"
    );
    for f in &mine {
        assert!(!f.exists(), "{} left", f.display());
    }
    for f in &not_mine {
        assert!(f.exists(), "{} removed", f.display());
    }
    edge.stop().await;
}

/// Compiled artifacts leave the disk with their function or version, and
/// the orphans a stopped edge left go at its next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_leave_the_disk_with_their_function_or_version() {
    let root = tempfile::tempdir().unwrap();
    let artifacts = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.path().join("data/artifacts"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".cwasm"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let until = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let edge = TestEdge::start_in(root.path(), |_| {}).await;
    edge.install_wat("f", ECHO);
    edge.install_wat("g", LOOP);
    until("two artifacts", &|| artifacts().len() == 2);
    let before = artifacts();

    // A new version of f: its old artifact goes, g's stays.
    edge.install("f", &hello_world_wasm());
    until("f's old artifact removed", &|| {
        let now = artifacts();
        now.len() == 2 && now != before
    });
    // A deleted function's artifact goes too.
    std::fs::remove_file(edge.func_dir.join("g.wasm")).unwrap();
    until("g's artifact removed", &|| artifacts().len() == 1);
    let kept = artifacts();
    edge.stop().await;

    // Stopped with f's artifact on disk; f's file removed meanwhile.
    std::fs::remove_file(root.path().join("functions/f.wasm")).unwrap();
    assert_eq!(artifacts(), kept);
    let edge = TestEdge::start_in(root.path(), |_| {}).await;
    until("the orphan removed at start", &|| artifacts().is_empty());
    edge.stop().await;
}
