//! Every failure is one `error:` line on stderr and a documented exit code.

use aether_fixtures::free_port;

use crate::{ADMIN, Aether, Stack, hello_world};

#[test]
fn an_unreachable_server_is_named_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = Aether::new(home.path())
        .env("AETHER_CONTROL_URL", &url)
        .run(["functions"]);
    let line = run.fails(1);
    assert!(
        line.contains(&format!("cannot reach the control plane at {url}")),
        "{line}"
    );
    assert!(line.contains("aether up"), "{line}");
    assert_eq!(run.stderr().lines().count(), 1);

    let run = Aether::new(home.path())
        .env("AETHER_EDGE_URL", &url)
        .run(["invoke", "hello_world"]);
    let line = run.fails(1);
    assert!(
        line.contains(&format!("cannot reach the edge at {url}")),
        "{line}"
    );

    // A flag wins over the variable.
    let line = Aether::new(home.path())
        .env("AETHER_CONTROL_URL", "http://127.0.0.1:1")
        .run(["nodes", "--control-url", &url])
        .fails(1);
    assert!(line.contains(&url), "{line}");
}

#[test]
fn a_missing_or_wrong_token_says_so() {
    let stack = Stack::start();
    let run = stack
        .aether()
        .env("AETHER_TOKEN", "wrong")
        .run(["functions"]);
    let line = run.fails(1);
    assert!(line.contains("refused the token"), "{line}");
    assert_eq!(run.stderr().lines().count(), 1);

    let line = stack
        .aether()
        .env_remove("AETHER_TOKEN")
        .run(["deploy".as_ref(), hello_world()])
        .fails(1);
    assert!(
        line.contains("requires a token") && line.contains("AETHER_TOKEN"),
        "{line}"
    );

    // --token works as well as the variable.
    stack
        .aether()
        .env_remove("AETHER_TOKEN")
        .run(["nodes", "--token", ADMIN])
        .ok();
}

#[test]
fn invalid_wasm_shows_the_reason() {
    let stack = Stack::start();
    let file = stack.dir.path().join("notwasm.wasm");
    std::fs::write(&file, "this is not a module\n").unwrap();
    let run = stack.aether().run(["deploy".as_ref(), file.as_os_str()]);
    let line = run.fails(1);
    assert!(line.starts_with("error: invalid wasm"), "{line}");
    assert!(line.contains("magic"), "{line}");
    assert_eq!(run.stderr().lines().count(), 1);

    // Valid wasm that is not a WASI command.
    let reactor = crate::wat_file(
        stack.dir.path(),
        "reactor",
        r#"(module (func (export "_initialize")))"#,
    );
    let line = stack
        .aether()
        .run(["deploy".as_ref(), reactor.as_os_str()])
        .fails(1);
    assert!(line.starts_with("error: invalid wasm"), "{line}");
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let run = Aether::new(home.path()).run(["deploy"]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    let run = Aether::new(home.path()).run(["frobnicate"]);
    assert_eq!(run.code(), Some(2));
    let line = Aether::new(home.path())
        .run(["functions", "show", "../etc"])
        .fails(2);
    assert!(line.contains("function name"), "{line}");
    let line = Aether::new(home.path())
        .env("AETHER_CONTROL_URL", "127.0.0.1:9090")
        .run(["functions"])
        .fails(1);
    assert!(line.contains("expected http://HOST:PORT"), "{line}");
    let help = Aether::new(home.path()).run(["--help"]).ok();
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn the_config_file_supplies_endpoints_and_token() {
    let stack = Stack::start();
    let config_dir = stack.dir.path().join(".config/aether");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "control_url = \"{}\"\nedge_url = \"{}\"\ntoken = \"{ADMIN}\"\n",
            stack.control_url, stack.edge_url
        ),
    )
    .unwrap();
    let bare = || Aether::new(stack.dir.path());
    bare().run(["deploy".as_ref(), hello_world()]).ok();
    stack.wait_on_edge("hello_world");
    let out = bare()
        .run([
            "invoke",
            "hello_world",
            "--input",
            r#"{"msg":"from config"}"#,
        ])
        .ok();
    assert_eq!(out, "from config");

    // --config names another file; a broken one is one line.
    let other = stack.dir.path().join("broken.toml");
    std::fs::write(&other, "token = \n").unwrap();
    let line = bare()
        .run(["functions".as_ref(), "--config".as_ref(), other.as_os_str()])
        .fails(1);
    assert!(line.contains("invalid config file"), "{line}");
}
