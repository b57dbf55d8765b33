//! The real binary: starts with no config file, refuses an unauthenticated
//! public address, reads env and files, stops cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{binary, free_port, wait_healthy};

#[test]
fn binary_refuses_a_public_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(binary())
        .args(["--host", "0.0.0.0", "--port", "0"])
        .env("AETHER_DB", dir.path().join("c.db"))
        .env_remove("AETHER_ADMIN_TOKEN")
        .env_remove("AETHER_NODE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(
        !dir.path().join("c.db").exists(),
        "nothing is opened before validation"
    );
}

#[test]
fn binary_reports_bad_config_files_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.toml");
    std::fs::write(&path, "[registry]\nnode_timeout = \"soon\"\n").unwrap();
    let out = std::process::Command::new(binary())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node_timeout"), "{stderr}");
}

#[tokio::test]
async fn binary_serves_from_a_config_file_with_env_tokens_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("control.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhost = \"0.0.0.0\"\nport = {port}\n[database]\npath = \"{}\"\n",
            dir.path().join("data/control.db").display()
        ),
    )
    .unwrap();
    let child = tokio::process::Command::new(binary())
        .arg("--config")
        .arg(&config)
        .env("AETHER_ADMIN_TOKEN", "the-admin-token")
        .env("AETHER_NODE_TOKEN", "the-node-token")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    wait_healthy(&url).await.unwrap();
    let r = client
        .get(format!("{url}/api/functions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{url}/api/functions"))
        .bearer_auth("the-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        dir.path().join("data/blobs").is_dir(),
        "blob dir defaults next to the db"
    );

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let logs =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("listening"), "{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(
        !logs.contains("the-admin-token") && !logs.contains("the-node-token"),
        "{logs}"
    );
}
