//! The two TOML files of the original Aether description, exactly as it
//! printed them (comments included, in `original/`), loaded by the real
//! binaries. Both bind 0.0.0.0: the control plane's is refused without
//! tokens and the edge's without a node token while it is attached to a
//! control plane (its default), each with a message saying what to do.
//! The edge's is served once given a node token, or run `--standalone`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aether_e2e::*;

fn original(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/all/original")
        .join(name)
}

/// Runs `binary` with the flags in `cwd` and expects it to exit at once
/// with an error; returns its stderr.
fn refused(binary: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(bin_dir().join(binary))
        .args(args)
        .current_dir(cwd)
        .env_remove("AETHER_NODE_TOKEN")
        .env_remove("AETHER_ADMIN_TOKEN")
        .output()
        .expect("binary runs");
    assert!(!out.status.success(), "{binary} {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_original_edge_toml_loads_with_every_value() {
    let config = |extra: &[&str]| {
        let mut argv = vec!["aether-engine", "--config"];
        let path = original("edge.toml");
        argv.push(path.to_str().unwrap());
        argv.extend(extra);
        let flags = <aether_engine::Flags as clap::Parser>::try_parse_from(argv).unwrap();
        aether_engine::EngineConfig::load(&flags)
    };
    let cfg = config(&["--node-token", "n"]).expect("accepted with a node token");
    assert_eq!((cfg.host.as_str(), cfg.port), ("0.0.0.0", 9091));
    assert_eq!(cfg.limits.timeout, Duration::from_secs(3));
    assert_eq!(cfg.limits.memory_bytes, 16_000_000);
    assert_eq!(cfg.cache_size, 100);
    assert_eq!(cfg.control_url.as_deref(), Some("http://127.0.0.1:9090"));
    let standalone = config(&["--standalone"]).expect("accepted standalone");
    assert_eq!(standalone.control_url, None);
    let err = config(&[])
        .expect_err("attached, 0.0.0.0, no node token")
        .to_string();
    for hint in ["0.0.0.0", "AETHER_NODE_TOKEN", "--standalone", "--insecure"] {
        assert!(err.contains(hint), "{err}");
    }
}

#[test]
fn the_original_control_toml_is_refused_without_tokens_and_loads_with_them() {
    let path = original("control.toml");
    let argv = |extra: &[&str]| {
        let mut argv = vec!["aether-control", "--config", path.to_str().unwrap()];
        argv.extend(extra);
        <aether_control::Cli as clap::Parser>::try_parse_from(argv).unwrap()
    };
    let err = aether_control::Config::load(&argv(&[]))
        .expect_err("0.0.0.0 without tokens")
        .to_string();
    for hint in [
        "0.0.0.0",
        "AETHER_ADMIN_TOKEN",
        "AETHER_NODE_TOKEN",
        "--insecure",
    ] {
        assert!(err.contains(hint), "{err}");
    }
    let cfg = aether_control::Config::load(&argv(&["--admin-token", "a", "--node-token", "n"]))
        .expect("accepted with tokens");
    assert_eq!((cfg.host.as_str(), cfg.port), ("0.0.0.0", 9090));
    assert_eq!(cfg.db_path, Path::new("./data/control.db"));
    assert_eq!(cfg.node_timeout, Duration::from_secs(30));
}

/// The binaries themselves: refused with the message on stderr, or served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_refuse_or_serve_the_original_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (control_toml, edge_toml) = (original("control.toml"), original("edge.toml"));
    let port = free_port().to_string();
    let stderr = refused(
        "aether-control",
        &["--config", control_toml.to_str().unwrap(), "--port", &port],
        dir.path(),
    );
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0 without tokens"),
        "{stderr}"
    );
    let stderr = refused(
        "aether-engine",
        &["--config", edge_toml.to_str().unwrap(), "--port", &port],
        dir.path(),
    );
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0") && stderr.contains("AETHER_NODE_TOKEN"),
        "{stderr}"
    );

    let port = free_port();
    let args: Vec<String> = [
        "--config",
        edge_toml.to_str().unwrap(),
        "--port",
        &port.to_string(),
        "--func-dir",
        dir.path().join("functions").to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--standalone",
    ]
    .map(str::to_owned)
    .to_vec();
    std::fs::create_dir_all(dir.path().join("functions"))?;
    std::fs::write(
        dir.path().join("functions/hello_world.wasm"),
        hello_world_wasm(),
    )?;
    let edge = Process::start(
        &bin_dir().join("aether-engine"),
        &args,
        &[],
        dir.path().join("edge.log"),
        port,
    )
    .await?;
    let (status, body) = execute(
        &edge.url,
        serde_json::json!({"function": "hello_world", "input": {"msg": "Hello from Aether!"}}),
    )
    .await;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("Hello from Aether!")),
        "{body}"
    );
    Ok(())
}
