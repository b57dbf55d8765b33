//! `aether new`: the template builds, deploys and runs.

use crate::{Aether, Stack, repo};

#[test]
fn a_new_crate_in_the_repository_builds_deploys_and_runs() {
    let stack = Stack::start();
    // Inside the checkout, so the template uses the local aether-guest.
    let scratch = tempfile::Builder::new()
        .prefix(".aether-new-test-")
        .tempdir_in(repo())
        .unwrap();
    let dir = scratch.path().join("greeter");
    let out = stack
        .aether()
        .run([
            "new".as_ref(),
            "greeter".as_ref(),
            "--path".as_ref(),
            dir.as_os_str(),
        ])
        .ok();
    assert!(out.contains("created function crate greeter"), "{out}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"aether-guest = { path = "../../crates/aether-guest" }"#),
        "{manifest}"
    );
    let config = std::fs::read_to_string(dir.join(".cargo/config.toml")).unwrap();
    assert!(config.contains(r#"target = "wasm32-wasip1""#), "{config}");

    // Same dependency versions and target directory as the examples, so
    // the build reuses what they compiled and stays quick.
    std::fs::copy(repo().join("examples/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let body = stack
        .aether()
        .env("CARGO_TARGET_DIR", repo().join("examples/target"))
        .run(["deploy".as_ref(), dir.as_os_str(), "--json".as_ref()])
        .json();
    assert_eq!(body["function_id"], "greeter");
    stack.wait_on_edge("greeter");
    let out = stack
        .aether()
        .run(["invoke", "greeter", "--input", r#"{"name":"Ada"}"#])
        .ok();
    assert_eq!(out, "Hello, Ada!");
}

#[test]
fn outside_the_repository_the_template_uses_a_version() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("fn-one");
    let body = Aether::new(home.path())
        .run([
            "new".as_ref(),
            "fn-one".as_ref(),
            "--path".as_ref(),
            dir.as_os_str(),
            "--json".as_ref(),
        ])
        .json();
    assert_eq!(body["name"], "fn-one");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("aether-guest = \"{}\"", env!("CARGO_PKG_VERSION"))),
        "{manifest}"
    );
    assert!(dir.join("src/main.rs").is_file());

    // An existing directory is never overwritten.
    let line = Aether::new(home.path())
        .run([
            "new".as_ref(),
            "fn-one".as_ref(),
            "--path".as_ref(),
            dir.as_os_str(),
        ])
        .fails(1);
    assert!(line.contains("already exists"), "{line}");
    let line = Aether::new(home.path()).run(["new", "Bad_Name"]).fails(2);
    assert!(line.contains("function name"), "{line}");
}
