//! Faults of the host: damaged database and blobs, a full disk, damaged
//! files in the edge's directories. (SIGKILL of the control plane during
//! deploys is aether-control's tests/all/crash.rs; a killed edge is
//! aether-e2e's tests/all/faults.rs; corrupt artifacts are
//! aether-runtime's tests/all/cache.rs.)

use std::path::Path;
use std::time::Duration;

use aether_hostile::{Control, Edge, code, control_config, fixtures};
use serde_json::json;

/// A control plane over `dir` with three deployed functions, stopped.
async fn populated(dir: &Path) {
    let control = Control::start_config(control_config(dir)).await.unwrap();
    for name in ["a", "b", "c"] {
        assert_eq!(control.deploy(name, &fixtures::command(name)).await.0, 201);
    }
    control.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_a_clear_error_at_start_never_silent_loss() {
    let original = tempfile::tempdir().unwrap();
    populated(original.path()).await;
    let db_len = std::fs::metadata(original.path().join("control.db"))
        .unwrap()
        .len() as usize;
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 4] = [
        ("header overwritten", |b| b[..512].fill(0xA5)),
        ("middle overwritten", |b| {
            let (mid, len) = (b.len() / 2, 4096.min(b.len() / 4));
            b[mid..mid + len].fill(0x5A)
        }),
        ("truncated to half", |b| b.truncate(b.len() / 2)),
        ("truncated to 100 bytes", |b| b.truncate(100)),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let db = dir.path().join("control.db");
        let mut bytes = std::fs::read(&db).unwrap();
        damage(&mut bytes);
        std::fs::write(&db, &bytes).unwrap();
        match Control::start_config(control_config(dir.path())).await {
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains("store") || message.contains("database"),
                    "{what}: {message}"
                );
                assert_eq!(
                    std::fs::read(&db).unwrap(),
                    bytes,
                    "{what}: the damaged file was modified"
                );
                eprintln!("{what} ({db_len} byte file): refused at start: {message}");
            }
            Ok(control) => {
                // Repaired: then nothing acknowledged may be missing.
                let names = control.manifest_names().await;
                assert!(
                    ["a", "b", "c"]
                        .iter()
                        .all(|n| names.contains(&n.to_string())),
                    "{what}: started with {names:?}: acknowledged deploys lost"
                );
                eprintln!("{what}: repaired at start, all functions present");
                control.assert_serves().await;
                control.stop().await;
            }
        }
    }
    // The undamaged original still opens with everything in it.
    let control = Control::start_config(control_config(original.path()))
        .await
        .unwrap();
    assert_eq!(control.manifest_names().await.len(), 3);
    control.assert_serves().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_is_refused_by_the_edge_that_pulls_it() {
    let control = Control::start_with(|c| c).await;
    // The edge serves the control plane's functions: `echo` for the
    // normal request, `f` to corrupt.
    let (status, body) = control
        .deploy("echo", &wat::parse_str(fixtures::ECHO).unwrap())
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = control.deploy("f", &fixtures::command("corrupt me")).await;
    assert_eq!(status, 201, "{body}");
    let sha = body["sha256"].as_str().unwrap().to_owned();
    let blob = control.dir.join("blobs").join(format!("{sha}.wasm"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    // The control plane serves what is on its disk (it does not re-hash on
    // every download); the edge checks the sha256 and refuses it.
    let edge = Edge::start_with(|c| {
        c.control_url = Some(control.url.clone());
        c.reconcile_interval = Duration::from_millis(200);
    })
    .await;
    for _ in 0..10 {
        let (status, body) = edge.execute(json!({"function": "f", "stdin": "x"})).await;
        assert_ne!(
            status, 200,
            "a module that does not match its sha256 ran: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    edge.assert_serves().await;
    control.assert_serves().await;
    edge.stop().await;
    control.stop().await;
}

/// Mounts a 2 MiB tmpfs at `dir`; `Err` says why it cannot.
fn mount_small_tmpfs(dir: &Path) -> Result<(), String> {
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_deploys_is_an_error_with_no_partial_state() {
    let dir = tempfile::tempdir().unwrap();
    if let Err(why) = mount_small_tmpfs(dir.path()) {
        // .ci/run runs as root, where `mount -t tmpfs` works.
        aether_fixtures::skip_or_fail(&format!(
            "cannot mount a 2 MiB tmpfs (needs root and `mount`): {why}"
        ));
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());
    // Room to give back later, as an operator would.
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 512 << 10]).unwrap();
    let control = Control::start_config(control_config(dir.path()))
        .await
        .unwrap();
    let (mut ok, mut refused) = (Vec::new(), Vec::new());
    for i in 0..8 {
        let name = format!("big{i}");
        let wasm = fixtures::command(&format!("{i}{}", "z".repeat(400_000)));
        let (status, body) = control.deploy(&name, &wasm).await;
        match status {
            201 => ok.push(name),
            500 | 507 => {
                assert!(body["error"]["message"].is_string(), "{body}");
                refused.push(name);
            }
            other => panic!("{name}: {other} {body}"),
        }
    }
    eprintln!(
        "tmpfs 2 MiB: {} deploys stored, {} refused",
        ok.len(),
        refused.len()
    );
    assert!(!refused.is_empty(), "the disk never filled up");
    let names = control.manifest_names().await;
    for name in &ok {
        assert!(names.contains(name), "acknowledged {name} is missing");
    }
    for name in &refused {
        assert!(!names.contains(name), "refused {name} is listed");
        let r = control
            .admin(reqwest::Method::GET, &format!("/api/functions/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "refused {name} left metadata");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
    // Freeing space makes deploys work again.
    std::fs::remove_file(&filler).unwrap();
    control.assert_serves().await;
    let names = control.manifest_names().await;
    assert!(ok.iter().all(|n| names.contains(n)), "{names:?}");
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_module_is_refused_until_it_is_complete() {
    let edge = Edge::start().await;
    let wasm = wat::parse_str(fixtures::ECHO).unwrap();
    // Written in place, not renamed: a reader can see half of it.
    std::fs::write(edge.func_dir.join("half.wasm"), &wasm[..wasm.len() / 2]).unwrap();
    let (status, body) = edge.call("half").await;
    assert_eq!((status, code(&body)), (422, "invalid_wasm"), "{body}");
    std::fs::write(edge.func_dir.join("half.wasm"), &wasm).unwrap();
    let mut served = false;
    for _ in 0..50 {
        let (status, body) = edge
            .execute(json!({"function": "half", "stdin": "whole"}))
            .await;
        if status == 200 {
            assert_eq!(body["output"], "whole");
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the completed module was never served");
    edge.assert_serves().await;
    edge.stop().await;
}

#[test]
fn an_artifact_path_that_is_not_a_directory_is_a_clear_start_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/artifacts"), b"not a directory").unwrap();
    let config = aether_engine::EngineConfig {
        func_dir: dir.path().join("functions"),
        data_dir: dir.path().join("data"),
        control_url: None,
        ..aether_engine::EngineConfig::default()
    };
    let err = aether_engine::AppState::new(config).err().expect("refused");
    assert!(err.to_string().contains("artifact"), "{err}");
}
