//! `aether up`: a whole local stack in one process, stopped by SIGTERM.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Aether, hello_world};

#[test]
fn up_runs_a_connected_stack_until_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("stack");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aether"))
        .args([
            "up",
            "--json",
            "--control-port",
            "0",
            "--edge-port",
            "0",
            "--dir",
        ])
        .arg(&data)
        .env("HOME", home.path())
        .env_remove("AETHER_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let urls: serde_json::Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("{e}: first line of `aether up`: {first:?}"));
    let control = urls["control_url"].as_str().unwrap().to_owned();
    let edge = urls["edge_url"].as_str().unwrap().to_owned();
    assert!(control.starts_with("http://127.0.0.1:"), "{control}");
    assert!(edge.starts_with("http://127.0.0.1:"), "{edge}");

    // The README flow: deploy to the control plane, invoke on the edge,
    // which pulls the function from the control plane.
    let aether = || {
        Aether::new(home.path())
            .env("AETHER_CONTROL_URL", &control)
            .env("AETHER_EDGE_URL", &edge)
    };
    aether().run(["deploy".as_ref(), hello_world()]).ok();
    // The deploy is acknowledged before the edge has pulled it; give the
    // edge the moment it needs (see `Stack::wait_on_edge`).
    let invoke = || {
        aether().run([
            "invoke",
            "hello_world",
            "--input",
            r#"{"msg":"Hello from Aether!"}"#,
        ])
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut run = invoke();
    while run.code() != Some(0) && Instant::now() < deadline {
        assert!(run.stderr().contains("not found"), "{}", run.stderr());
        std::thread::sleep(Duration::from_millis(50));
        run = invoke();
    }
    assert_eq!(run.ok(), "Hello from Aether!");
    let nodes = aether().run(["nodes", "--json"]).json();
    assert_eq!(nodes[0]["url"], edge.as_str());
    assert!(data.join("control/control.db").is_file());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "aether up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn up_on_a_busy_port_is_one_line() {
    let home = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let run = Aether::new(home.path()).run([
        "up".as_ref(),
        "--control-port".as_ref(),
        port.as_ref(),
        "--edge-port".as_ref(),
        "0".as_ref(),
        "--dir".as_ref(),
        home.path().join("stack").as_os_str(),
    ]);
    let line = run.fails(1);
    assert!(
        line.contains(&format!("port {port} is unavailable")),
        "{line}"
    );
    assert!(line.contains("--control-port"), "{line}");
}
