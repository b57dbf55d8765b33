//! `aether functions`: list, show, rollback, rm.

use crate::{Stack, wat_file};

/// A command module whose bytes depend on `tag`.
fn tagged(tag: &str) -> String {
    format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{tag}") (func (export "_start")))"#
    )
}

#[test]
fn list_show_rollback_and_rm_manage_versions() {
    let stack = Stack::start();
    for tag in ["one", "two"] {
        let wasm = wat_file(stack.dir.path(), "versions", &tagged(tag));
        stack
            .aether()
            .run(["deploy".as_ref(), wasm.as_os_str()])
            .ok();
    }

    let list = stack.aether().run(["functions", "--json"]).json();
    let entry = &list["functions"][0];
    assert_eq!(entry["name"], "versions");
    assert_eq!(entry["version"], 2);
    assert_eq!(entry["kind"], "command");
    let table = stack.aether().run(["functions"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME  ") && lines[0].contains(" KIND "),
        "{table}"
    );
    assert!(
        lines[1].starts_with("versions ")
            && lines[1].contains(" command ")
            && lines[1].contains(" 2 "),
        "{table}"
    );
    assert_eq!(stack.aether().run(["functions", "list"]).ok(), table);

    let show = stack
        .aether()
        .run(["functions", "show", "versions", "--json"])
        .json();
    assert_eq!(show["current_version"], 2);
    assert_eq!(show["versions"].as_array().unwrap().len(), 2);
    let human = stack.aether().run(["functions", "show", "versions"]).ok();
    assert!(human.contains("current:  version 2"), "{human}");
    assert!(human.contains("kind:     command"), "{human}");

    let out = stack
        .aether()
        .run(["functions", "rollback", "versions", "1"])
        .ok();
    let v1 = show["versions"][0]["sha256"].as_str().unwrap();
    assert_eq!(
        out.trim(),
        format!("versions now runs version 1 (sha256 {v1})")
    );
    let show = stack
        .aether()
        .run(["functions", "show", "versions", "--json"])
        .json();
    assert_eq!(show["current_version"], 1);

    let line = stack
        .aether()
        .run(["functions", "rollback", "versions", "9"])
        .fails(1);
    assert!(line.contains("409 conflict"), "{line}");

    let out = stack.aether().run(["functions", "rm", "versions"]).ok();
    assert_eq!(out.trim(), "removed versions (2 versions)");
    let line = stack
        .aether()
        .run(["functions", "show", "versions"])
        .fails(1);
    assert!(line.contains("function versions not found"), "{line}");
    let line = stack.aether().run(["functions", "rm", "versions"]).fails(1);
    assert!(line.contains("not found"), "{line}");
    let list = stack.aether().run(["functions", "--json"]).json();
    assert_eq!(list["functions"], serde_json::json!([]));
}

#[test]
fn removed_functions_stop_running_on_the_edge() {
    let stack = Stack::start();
    let wasm = wat_file(stack.dir.path(), "gone", &tagged("x"));
    stack.deploy(&wasm, "gone");
    stack.aether().run(["invoke", "gone"]).ok();
    stack
        .aether()
        .run(["functions", "rm", "gone", "--json"])
        .json();
    // The edge drops it once notified.
    stack.wait_for(|s| s.aether().run(["invoke", "gone"]).code() == Some(1));
    let line = stack.aether().run(["invoke", "gone"]).fails(1);
    assert!(line.contains("function gone not found"), "{line}");
}
