//! The examples beyond hello_world: a JSON transform with serde_json and a
//! function written in C.

use std::process::Command;

use crate::{Stack, example_wasm, repo};

#[test]
fn json_transform_aggregates_items() {
    let stack = Stack::start();
    let wasm = example_wasm("json_transform");
    stack.deploy(&wasm, "json_transform");
    let input = r#"{"items":[
        {"sku":"b1","category":"books","price":12.5,"qty":2},
        {"sku":"g1","category":"games","price":40},
        {"sku":"b2","category":"books","price":7.5,"qty":4}]}"#;
    let out = stack
        .aether()
        .run(["invoke", "json_transform", "--input", input])
        .ok();
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["count"], 3);
    assert_eq!(stats["total_qty"], 7);
    assert_eq!(stats["revenue"], 95.0);
    assert_eq!(stats["min_price"], 7.5);
    assert_eq!(stats["max_price"], 40.0);
    assert_eq!(stats["by_category"]["books"]["revenue"], 55.0);
    assert_eq!(stats["by_category"]["games"]["qty"], 1);

    let run = stack
        .aether()
        .run(["invoke", "json_transform", "--input", r#"{"things":[]}"#]);
    let line = run.fails(3);
    assert!(line.contains("exited with code 2"), "{line}");
    let body: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert!(body["error"].as_str().unwrap().contains("items"), "{body}");
}

#[test]
fn c_hello_built_with_clang_and_wasi_libc_runs_with_its_env() {
    let have_clang = Command::new("clang").arg("--version").output().is_ok();
    if !have_clang {
        // .ci/run installs it.
        aether_fixtures::skip_or_fail(
            "clang is not installed (apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32)",
        );
        return;
    }
    let dir = repo().join("examples/c_hello");
    let build = Command::new("bash")
        .arg(dir.join("build.sh"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "build.sh failed: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let stack = Stack::start();
    let wasm = dir.join("c_hello.wasm");
    stack
        .aether()
        .run([
            "deploy".as_ref(),
            wasm.as_os_str(),
            "--env".as_ref(),
            "GREETING=Bonjour".as_ref(),
        ])
        .ok();
    stack.wait_on_edge("c_hello");
    let out = stack
        .aether()
        .run(["invoke", "c_hello", "--input", r#""Ada""#])
        .ok();
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"greeting": "Bonjour from C!", "function": "c_hello", "input_bytes": 5})
    );
}
