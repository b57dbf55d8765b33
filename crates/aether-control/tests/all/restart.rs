//! A restarted control plane over the same files keeps everything.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestControl, command, control_config, sha256_hex};

#[tokio::test]
async fn restart_keeps_functions_versions_nodes_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = command("one");
    let v2 = command("two");
    {
        let s = TestControl::start_in(dir.path(), |c| c).await;
        s.deploy_as("f", &v1, None).await;
        s.deploy_as("f", &v2, None).await;
        s.deploy_as("g", &command("g"), None).await;
        s.client
            .post(s.at("/api/functions/f/rollback"))
            .json(&json!({"version": 1}))
            .send()
            .await
            .unwrap();
        s.client
            .delete(s.at("/api/functions/g"))
            .send()
            .await
            .unwrap();
        s.client
            .post(s.at("/register"))
            .json(&json!({"node_id": "edge-1", "url": "http://127.0.0.1:9091"}))
            .send()
            .await
            .unwrap();
        s.client
            .post(s.at("/callback"))
            .json(&json!([{"event": "a"}, {"event": "b"}]))
            .send()
            .await
            .unwrap();
        s.stop().await;
    }
    let s = TestControl::start_in(dir.path(), |c| c).await;
    let info: Value = s
        .client
        .get(s.at("/api/functions/f"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["current_version"], 1);
    assert_eq!(info["versions"].as_array().unwrap().len(), 2);
    assert_eq!(info["versions"][1]["sha256"], sha256_hex(&v2));
    let r = s
        .client
        .get(s.at("/api/functions/f/wasm?version=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), v2.as_slice());
    assert_eq!(
        s.client
            .get(s.at("/api/functions/g"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let nodes: Value = s
        .client
        .get(s.at("/api/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodes[0]["node_id"], "edge-1");
    let events: Value = s
        .client
        .get(s.at("/api/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    // Versions continue after the highest one, event ids after the last.
    let r = s.deploy_as("f", &command("three"), None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 3);
    let r = s
        .client
        .post(s.at("/callback"))
        .json(&json!({"event": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["last_id"], 3);
    s.stop().await;
}

// Regression: `Server::run` returned while the background tasks it had
// aborted (and a store operation they had started) still held the store,
// which was then closed later on a runtime thread, with a commit and a
// header write: a restart in the same process could find the database
// still open, and a copy taken right after a stop could be torn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_closed_when_stop_returns() {
    let dir = tempfile::tempdir().unwrap();
    let config = control_config(dir.path());
    for i in 0..20 {
        let s = TestControl::start_config(config.clone()).await.unwrap();
        let r = s.deploy_as("f", &command(&i.to_string()), None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        s.stop().await;
        // Opened at once, without giving the runtime a chance to catch up.
        let reopened = aether_store::RedbStore::open(aether_store::StoreOptions::new(
            &config.db_path,
            &config.blob_dir,
        ));
        assert!(reopened.is_ok(), "stop {i}: {:?}", reopened.err());
    }
}
