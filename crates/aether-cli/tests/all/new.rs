//! `aether new`: the template builds, deploys and runs.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{ADMIN, Aether, Stack, repo};

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
fn a_new_crate_outside_the_repository_builds_deploys_and_runs() {
    // Regression: outside a checkout the template depended on
    // `aether-guest = "0.1.0"`, which is on no registry, so the build
    // failed with "no matching package named `aether-guest` found".
    let stack = Stack::start();
    let cwd = tempfile::tempdir().unwrap();
    assert!(!cwd.path().starts_with(repo().canonicalize().unwrap()));
    let out = aether_in(&stack, cwd.path(), &["new", "greeter"]);
    assert!(out.contains("created function crate greeter"), "{out}");
    let dir = cwd.path().join("greeter");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"aether-guest = { path = "vendor/aether-guest" }"#),
        "{manifest}"
    );

    // The examples' lock file, so the build reuses what they compiled in
    // the same target directory (see aether_in); serde and serde_json
    // still come from crates.io.
    std::fs::copy(repo().join("examples/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = aether_in(&stack, cwd.path(), &["deploy", "greeter", "--json"]);
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["function_id"], "greeter");
    stack.wait_on_edge("greeter");
    let out = aether_in(
        &stack,
        cwd.path(),
        &["invoke", "greeter", "--input", r#"{"name":"Ada"}"#],
    );
    assert_eq!(out, "Hello, Ada!");
}

/// `aether ARGS...` run from `cwd` (where [`Stack::aether`] runs from the
/// test's directory, inside the checkout) with the same environment, and
/// `examples/target` as cargo's target directory so builds reuse what the
/// examples compiled. Asserts success; returns stdout.
fn aether_in(stack: &Stack, cwd: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aether"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AETHER_") {
            cmd.env_remove(key);
        }
    }
    let home = stack.dir.path();
    let out = cmd
        .current_dir(cwd)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("RUST_LOG", "warn")
        .env("AETHER_CONTROL_URL", &stack.control_url)
        .env("AETHER_EDGE_URL", &stack.edge_url)
        .env("AETHER_TOKEN", ADMIN)
        .env("CARGO_TARGET_DIR", repo().join("examples/target"))
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("aether runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "aether {args:?} in {} failed ({})\nstdout: {stdout}\nstderr: {}",
        cwd.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn outside_the_repository_the_template_vendors_aether_guest() {
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
    assert_eq!(body["aether_guest"], r#"{ path = "vendor/aether-guest" }"#);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"aether-guest = { path = "vendor/aether-guest" }"#),
        "{manifest}"
    );
    assert!(dir.join("src/main.rs").is_file());
    let vendored = dir.join("vendor/aether-guest");
    let manifest = std::fs::read_to_string(vendored.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("version = \"{}\"", env!("CARGO_PKG_VERSION"))),
        "{manifest}"
    );
    assert!(!manifest.contains("workspace = true"), "{manifest}");
    assert_eq!(
        std::fs::read_to_string(vendored.join("src/lib.rs")).unwrap(),
        std::fs::read_to_string(repo().join("crates/aether-guest/src/lib.rs")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(vendored.join("LICENSE")).unwrap(),
        std::fs::read_to_string(repo().join("LICENSE")).unwrap()
    );

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

#[test]
fn a_new_http_function_builds_to_a_component() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("hello-http");
    let body = Aether::new(home.path())
        .run([
            "new".as_ref(),
            "hello-http".as_ref(),
            "--http".as_ref(),
            "--path".as_ref(),
            dir.as_os_str(),
            "--json".as_ref(),
        ])
        .json();
    assert_eq!(body["name"], "hello-http");
    assert_eq!(body["kind"], "http");
    assert!(body.get("aether_guest").is_none(), "{body}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(r#"wasi = "0.14""#), "{manifest}");
    assert!(
        manifest.contains(r#"crate-type = ["cdylib"]"#),
        "{manifest}"
    );
    let config = std::fs::read_to_string(dir.join(".cargo/config.toml")).unwrap();
    assert!(config.contains(r#"target = "wasm32-wasip2""#), "{config}");
    assert!(dir.join("src/lib.rs").is_file());
    assert!(
        !dir.join("vendor").exists(),
        "no aether-guest in a component"
    );

    // http_hello's lock file and target directory: the same wasi crate,
    // already compiled by the examples' build.
    let example = repo().join("examples/http_hello");
    std::fs::copy(example.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let built = Aether::new(home.path())
        .env("CARGO_TARGET_DIR", example.join("target"))
        .run(["build".as_ref(), dir.as_os_str(), "--json".as_ref()])
        .json();
    assert_eq!(built["name"], "hello-http", "the package's name");
    assert_eq!(built["target"], "wasm32-wasip2");
    let wasm = std::path::PathBuf::from(built["wasm"].as_str().unwrap());
    assert!(
        wasm.ends_with("wasm32-wasip2/release/hello_http.wasm"),
        "{}",
        wasm.display()
    );
    let bytes = std::fs::read(&wasm).unwrap();
    assert_eq!(
        bytes[..8],
        *b"\0asm\x0d\x00\x01\x00",
        "a component, not a core module"
    );
}

#[test]
fn build_prints_where_a_command_module_is() {
    // A binary crate still builds for wasm32-wasip1: examples/hello_world.
    let home = tempfile::tempdir().unwrap();
    let out = Aether::new(home.path())
        .env("CARGO_TARGET_DIR", repo().join("examples/target"))
        .run([
            "build".as_ref(),
            repo().join("examples/hello_world").as_os_str(),
        ])
        .ok();
    assert!(
        out.starts_with("built hello_world for wasm32-wasip1: ")
            && out
                .trim_end()
                .ends_with("wasm32-wasip1/release/hello_world.wasm"),
        "{out}"
    );
}
