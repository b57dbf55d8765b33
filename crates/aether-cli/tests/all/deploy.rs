//! `aether deploy`: files, crate directories, args/env/limits, outbound
//! hosts, large modules over `PUT`.

use crate::{Stack, hello_world, repo, wat_file};

#[test]
fn deploying_a_file_prints_name_version_and_sha256() {
    let stack = Stack::start();
    let out = stack.aether().run(["deploy".as_ref(), hello_world()]).ok();
    let show = stack
        .aether()
        .run(["functions", "show", "hello_world", "--json"])
        .json();
    let sha = show["versions"][0]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    assert_eq!(
        out.trim(),
        format!(
            "deployed hello_world version 1 (sha256 {sha}, {} KiB)",
            show["versions"][0]["size_kb"]
        )
    );

    // The same bytes again: no new version, and scripts can tell.
    let again = stack
        .aether()
        .run(["deploy".as_ref(), hello_world(), "--json".as_ref()])
        .json();
    assert_eq!(again["created"], false);
    assert_eq!(again["version"], 1);
    assert_eq!(again["sha256"], sha.as_str());
    assert_eq!(again["function_id"], "hello_world");
}

#[test]
fn deploying_a_crate_directory_builds_it_first() {
    let stack = Stack::start();
    let dir = repo().join("examples/hello_world");
    let run = stack
        .aether()
        .run(["deploy".as_ref(), dir.as_os_str(), "--json".as_ref()]);
    let body = run.json();
    assert_eq!(
        body["function_id"], "hello_world",
        "named after the crate's binary"
    );
    assert_eq!(body["version"], 1);
    assert!(
        run.stderr().contains("building hello_world"),
        "{}",
        run.stderr()
    );
    stack.wait_on_edge("hello_world");

    let out = stack
        .aether()
        .run([
            "invoke",
            "hello_world",
            "--input",
            r#"{"msg":"built from source"}"#,
        ])
        .ok();
    assert_eq!(out, "built from source");
}

#[test]
fn args_env_and_limits_are_stored_with_the_version() {
    let stack = Stack::start();
    let wasm = wat_file(
        stack.dir.path(),
        "noop",
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    stack
        .aether()
        .run([
            "deploy".as_ref(),
            wasm.as_os_str(),
            "--name".as_ref(),
            "configured".as_ref(),
            "--env".as_ref(),
            "GREETING=hi=there".as_ref(),
            "--env".as_ref(),
            "EMPTY=".as_ref(),
            "--arg".as_ref(),
            "--verbose".as_ref(),
            "--timeout".as_ref(),
            "2s".as_ref(),
            "--memory".as_ref(),
            "32MiB".as_ref(),
        ])
        .ok();
    let show = stack
        .aether()
        .run(["functions", "show", "configured", "--json"])
        .json();
    let v = &show["versions"][0];
    assert_eq!(
        v["env"],
        serde_json::json!({"GREETING": "hi=there", "EMPTY": ""})
    );
    assert_eq!(v["args"], serde_json::json!(["--verbose"]));
    assert_eq!(
        v["limits"],
        serde_json::json!({"timeout": "2s", "memory": "32MiB"})
    );

    let human = stack.aether().run(["functions", "show", "configured"]).ok();
    assert!(human.contains("env:      GREETING=hi=there"), "{human}");
    assert!(human.contains("timeout:  2s"), "{human}");
}

/// A minimal `wasi:http/proxy` component: valid, and exporting the
/// handler interface by name (the control plane inspects, never runs it).
const HTTP_COMPONENT: &str = r#"(component
    (core module $m (func (export "handle")))
    (core instance $i (instantiate $m))
    (func $f (canon lift (core func $i "handle")))
    (instance $api (export "handle" (func $f)))
    (export "wasi:http/incoming-handler@0.2.0" (instance $api)))"#;

#[test]
fn outbound_hosts_are_stored_and_an_http_component_is_listed_as_http() {
    let stack = Stack::start();
    let wasm = wat_file(stack.dir.path(), "proxy", HTTP_COMPONENT);
    let out = stack
        .aether()
        .run([
            "deploy".as_ref(),
            wasm.as_os_str(),
            "--allow-outbound".as_ref(),
            "https://api.example.com".as_ref(),
            "--allow-outbound".as_ref(),
            "http://127.0.0.1:8080".as_ref(),
        ])
        .ok();
    assert!(
        out.starts_with("deployed proxy version 1 (http: /fn/proxy/…, sha256 "),
        "{out}"
    );
    let hosts = serde_json::json!(["https://api.example.com", "http://127.0.0.1:8080"]);
    let show = stack
        .aether()
        .run(["functions", "show", "proxy", "--json"])
        .json();
    assert_eq!(show["versions"][0]["kind"], "http");
    assert_eq!(show["versions"][0]["allowed_outbound_hosts"], hosts);
    let human = stack.aether().run(["functions", "show", "proxy"]).ok();
    assert!(human.contains("kind:     http"), "{human}");
    assert!(
        human.contains("outbound: https://api.example.com\noutbound: http://127.0.0.1:8080"),
        "{human}"
    );
    let list = stack.aether().run(["functions", "--json"]).json();
    assert_eq!(list["functions"][0]["kind"], "http");
    assert_eq!(list["functions"][0]["allowed_outbound_hosts"], hosts);
    let table = stack.aether().run(["functions"]).ok();
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("proxy  http ")),
        "{table}"
    );

    // A bad entry: the control plane refuses it and says which.
    let line = stack
        .aether()
        .run([
            "deploy".as_ref(),
            wasm.as_os_str(),
            "--allow-outbound".as_ref(),
            "ftp://files.example.com".as_ref(),
        ])
        .fails(1);
    assert!(line.contains("\"ftp://files.example.com\""), "{line}");
    let show = stack
        .aether()
        .run(["functions", "show", "proxy", "--json"])
        .json();
    assert_eq!(show["current_version"], 1, "nothing new was stored");
}

#[test]
fn large_modules_are_uploaded_raw_with_their_limits() {
    let stack = Stack::start();
    // 1.5 MB of data makes a module past the raw-upload threshold.
    let data = "a".repeat(1_500_000);
    let wasm = wat_file(
        stack.dir.path(),
        "big",
        &format!(
            r#"(module (memory (export "memory") 24) (data (i32.const 0) "{data}") (func (export "_start")))"#
        ),
    );
    let body = stack
        .aether()
        .run([
            "deploy".as_ref(),
            wasm.as_os_str(),
            "--timeout".as_ref(),
            "1500ms".as_ref(),
            "--json".as_ref(),
        ])
        .json();
    assert_eq!(body["function_id"], "big");
    assert!(body["size_kb"].as_u64().unwrap() > 1400, "{body}");
    let show = stack
        .aether()
        .run(["functions", "show", "big", "--json"])
        .json();
    assert_eq!(show["versions"][0]["limits"]["timeout"], "1500ms");
    stack.wait_on_edge("big");
    let out = stack.aether().run(["invoke", "big", "--json"]).json();
    assert_eq!(out["exit_code"], 0);
}

#[test]
fn local_mistakes_are_usage_errors_before_any_upload() {
    let stack = Stack::start();
    let line = stack
        .aether()
        .run([
            "deploy".as_ref(),
            hello_world(),
            "--env".as_ref(),
            "NOVALUE".as_ref(),
        ])
        .fails(2);
    assert!(line.contains("KEY=VALUE"), "{line}");
    let line = stack
        .aether()
        .run([
            "deploy".as_ref(),
            hello_world(),
            "--timeout".as_ref(),
            "soon".as_ref(),
        ])
        .fails(2);
    assert!(line.contains("timeout"), "{line}");
    let line = stack
        .aether()
        .run([
            "deploy".as_ref(),
            hello_world(),
            "--name".as_ref(),
            "Bad Name".as_ref(),
        ])
        .fails(2);
    assert!(line.contains("function name"), "{line}");
    let missing = stack.dir.path().join("missing.wasm");
    let line = stack
        .aether()
        .run(["deploy".as_ref(), missing.as_os_str()])
        .fails(1);
    assert!(
        line.contains("cannot read") && line.contains("missing.wasm"),
        "{line}"
    );
    // Nothing reached the control plane.
    let list = stack.aether().run(["functions", "--json"]).json();
    assert_eq!(list["functions"], serde_json::json!([]));
}
