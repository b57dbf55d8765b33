//! Crash safety of the real binary: deploys run concurrently while the
//! process is killed with SIGKILL at random moments; after each restart
//! every acknowledged deploy is present with a blob matching its sha256.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use aether_e2e::{Process, control_args};

use crate::support::{b64, binary, command, free_port, sha256_hex};

/// Kill-and-restart rounds; each lasts well under a second.
const ROUNDS: usize = 8;
/// Concurrent deploying tasks.
const WRITERS: usize = 4;

/// A deploy the server answered 200/201 to.
#[derive(Debug, Clone)]
struct Acked {
    name: String,
    version: u64,
    sha256: String,
}

/// The real binary over `dir` on a free port, without tokens.
async fn start(dir: &std::path::Path) -> Process {
    let port = free_port();
    let mut args = control_args(dir, port).unwrap();
    args.extend(["--host".into(), "127.0.0.1".into()]);
    let envs = [("RUST_LOG", "warn".to_owned())];
    Process::start(&binary(), &args, &envs, dir.join("server.log"), port)
        .await
        .expect("the control plane starts")
}

/// Checks every acknowledged deploy and every blob the manifest serves.
async fn verify(url: &str, acked: &[Acked], dir: &std::path::Path) {
    let client = reqwest::Client::new();
    for a in acked {
        let r = client
            .get(format!(
                "{url}/api/functions/{}/wasm?version={}",
                a.name, a.version
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {a:?} is missing");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let bytes = r.bytes().await.unwrap();
        assert_eq!(etag, format!("\"{}\"", a.sha256), "{a:?}");
        assert_eq!(
            sha256_hex(&bytes),
            a.sha256,
            "blob of {a:?} does not match its hash"
        );
    }
    let manifest: Value = client
        .get(format!("{url}/api/functions/manifest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for f in manifest["functions"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let info: Value = client
            .get(format!("{url}/api/functions/{name}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for v in info["versions"].as_array().unwrap() {
            let r = client
                .get(format!(
                    "{url}/api/functions/{name}/wasm?version={}",
                    v["version"]
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let etag = r.headers()["etag"]
                .to_str()
                .unwrap()
                .trim_matches('"')
                .to_owned();
            assert_eq!(
                sha256_hex(&r.bytes().await.unwrap()),
                etag,
                "half-written blob served for {name}"
            );
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("blobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files survived the restart: {leftovers:?}"
    );
}

async fn writer(
    url: String,
    task: usize,
    round: usize,
    acked: Arc<Mutex<Vec<Acked>>>,
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for i in 0.. {
        if *stop.borrow() {
            return;
        }
        let name = format!("f{task}-{}", i % 3);
        let wasm = command(&format!("round {round} task {task} deploy {i}"));
        let body = serde_json::json!({"name": name, "wasm_b64": b64(&wasm)});
        let send = client
            .post(format!("{url}/api/functions"))
            .json(&body)
            .send();
        let response = tokio::select! {
            r = send => r,
            _ = stop.changed() => return,
        };
        let Ok(response) = response else { return };
        let status = response.status().as_u16();
        let Ok(body) = response.json::<Value>().await else {
            return;
        };
        if status == 200 || status == 201 {
            assert_eq!(body["sha256"], sha256_hex(&wasm));
            acked.lock().unwrap().push(Acked {
                name,
                version: body["version"].as_u64().unwrap(),
                sha256: sha256_hex(&wasm),
            });
        } else {
            panic!("deploy refused with {status}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deploys_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let mut rng = fastrand::Rng::new();
    let mut last_round_count = 0;
    for round in 0..ROUNDS {
        let mut control = start(dir.path()).await;
        let snapshot = acked.lock().unwrap().clone();
        verify(&control.url, &snapshot, dir.path()).await;

        let (stop_tx, stop_rx) = watch::channel(false);
        let writers: Vec<_> = (0..WRITERS)
            .map(|task| {
                tokio::spawn(writer(
                    control.url.clone(),
                    task,
                    round,
                    acked.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.u64(100..600))).await;
        let status = control.kill().expect("it was running"); // SIGKILL
        assert!(!status.success());
        stop_tx.send(true).unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let count = acked.lock().unwrap().len();
        eprintln!(
            "round {round}: {} deploys acknowledged before SIGKILL",
            count - last_round_count
        );
        last_round_count = count;
    }
    let control = start(dir.path()).await;
    let all = acked.lock().unwrap().clone();
    assert!(
        all.len() >= ROUNDS,
        "too few deploys to mean anything: {}",
        all.len()
    );
    verify(&control.url, &all, dir.path()).await;
}
