//! `aether nodes` and `aether events`.

use std::io::BufRead as _;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::Stack;

#[test]
fn nodes_lists_the_registered_edge() {
    let stack = Stack::start();
    let nodes = stack.aether().run(["nodes", "--json"]).json();
    let node = &nodes[0];
    assert_eq!(node["url"], stack.edge_url.as_str());
    assert_eq!(node["status"], "online");

    let table = stack.aether().run(["nodes"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NODE"), "{table}");
    assert!(
        lines[1].contains(&stack.edge_url) && lines[1].contains("online"),
        "{table}"
    );
}

fn report(stack: &Stack, function: &str, n: u64) {
    let status = stack.post_node(
        "/callback",
        json!({"event": "execution_failed", "data": {"function": function, "node_id": "edge-x", "n": n}}),
    );
    assert_eq!(status, 202);
}

#[test]
fn events_are_listed_filtered_and_limited() {
    let stack = Stack::start();
    for n in 1..=3 {
        report(&stack, "evt-a", n);
    }
    report(&stack, "evt-b", 4);

    let page = stack
        .aether()
        .run(["events", "--function", "evt-a", "--json"])
        .json();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e["function"] == "evt-a"));
    assert_eq!(page["next_since"], events[2]["id"]);

    // --limit keeps the newest.
    let page = stack
        .aether()
        .run(["events", "--function", "evt-a", "--limit", "1", "--json"])
        .json();
    assert_eq!(page["events"][0]["data"]["n"], 3);

    let text = stack.aether().run(["events", "--function", "evt-b"]).ok();
    assert_eq!(text.lines().count(), 1, "{text}");
    // Attributed to the edge whose credential sent it, not to the
    // `node_id` its body claims ("edge-x").
    let sender = format!("node={}", stack.servers.edge.state.node_id());
    assert!(
        text.contains("execution_failed")
            && text.contains("function=evt-b")
            && text.contains(&sender),
        "{text}"
    );
    let line = stack
        .aether()
        .run(["events", "--function", "Not A Name"])
        .fails(2);
    assert!(line.contains("function name"), "{line}");
}

#[test]
fn events_follow_prints_new_events_as_they_arrive() {
    let stack = Stack::start();
    report(&stack, "evt-f", 1);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aether"))
        .args(["events", "--follow", "--function", "evt-f", "--json"])
        .env("AETHER_CONTROL_URL", &stack.control_url)
        .env("AETHER_TOKEN", crate::ADMIN)
        .env("HOME", stack.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line for {what}"));
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    assert_eq!(next("the existing event")["data"]["n"], 1);
    report(&stack, "evt-f", 2);
    report(&stack, "evt-other", 3);
    report(&stack, "evt-f", 4);
    assert_eq!(next("the first new event")["data"]["n"], 2);
    assert_eq!(next("the second new event")["data"]["n"], 4);
    child.kill().unwrap();
    child.wait().unwrap();
}
