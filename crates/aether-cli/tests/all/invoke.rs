//! `aether invoke`: input, stdin, verbose and JSON output, failures.

use crate::{Stack, hello_world, wat_file};

use aether_fixtures::ECHO;

/// Exits with code 7.
const EXIT_7: &str = r#"
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))
"#;

/// Traps at once.
const TRAP: &str = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;

fn deploy(stack: &Stack, name: &str, wat: &str) {
    let wasm = wat_file(stack.dir.path(), name, wat);
    stack.deploy(&wasm, name);
}

#[test]
fn input_json_reaches_the_function_and_its_output_is_printed() {
    let stack = Stack::start();
    stack.deploy(hello_world(), "hello_world");
    let out = stack
        .aether()
        .run([
            "invoke",
            "hello_world",
            "--input",
            r#"{"msg":"Hello from Aether!"}"#,
        ])
        .ok();
    assert_eq!(out, "Hello from Aether!", "exact bytes when piped");
}

#[test]
fn stdin_is_sent_as_raw_text() {
    let stack = Stack::start();
    deploy(&stack, "echo", ECHO);
    let text = "line one\nnot JSON at all: {]\n";
    let out = stack
        .aether()
        .stdin(text)
        .run(["invoke", "echo", "--stdin"])
        .ok();
    assert_eq!(out, text);
    // --input is compact JSON on the function's stdin.
    let out = stack
        .aether()
        .run(["invoke", "echo", "--input", r#"{ "a" : [1, 2] }"#])
        .ok();
    assert_eq!(out, r#"{"a":[1,2]}"#);
}

#[test]
fn verbose_and_json_show_exit_code_time_memory_and_cache() {
    let stack = Stack::start();
    stack.deploy(hello_world(), "hello_world");
    let run = stack.aether().run([
        "invoke",
        "hello_world",
        "--input",
        r#"{"msg":"hi"}"#,
        "--verbose",
    ]);
    assert_eq!(run.ok(), "hi", "details go to stderr, not into the output");
    let details = run.stderr();
    for part in ["exit code 0", " ms", "KiB memory", "cache "] {
        assert!(details.contains(part), "{part:?} missing: {details}");
    }

    let body = stack
        .aether()
        .run([
            "invoke",
            "hello_world",
            "--input",
            r#"{"msg":"hi"}"#,
            "--json",
        ])
        .json();
    assert_eq!(body["output"], "hi");
    assert_eq!(body["exit_code"], 0);
    assert!(body["execution_time_ms"].is_number());
    assert!(body["memory_used_kb"].is_number());
    assert!(["memory", "disk", "compiled"].contains(&body["cache"].as_str().unwrap()));
}

#[test]
fn a_non_zero_exit_code_exits_3_after_printing_the_output() {
    let stack = Stack::start();
    deploy(&stack, "exit7", EXIT_7);
    let run = stack.aether().run(["invoke", "exit7"]);
    let line = run.fails(3);
    assert_eq!(line, "error: function exit7 exited with code 7");
    // --json still prints the response, for scripts to inspect.
    let run = stack.aether().run(["invoke", "exit7", "--json"]);
    run.fails(3);
    let body: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(body["exit_code"], 7);
}

#[test]
fn a_trap_exits_3_with_one_line() {
    let stack = Stack::start();
    deploy(&stack, "trap", TRAP);
    let run = stack.aether().run(["invoke", "trap"]);
    let line = run.fails(3);
    assert!(line.starts_with("error: function trap trapped: "), "{line}");
    assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
}

#[test]
fn unknown_functions_and_bad_input_are_one_line_errors() {
    let stack = Stack::start();
    let run = stack.aether().run(["invoke", "nope"]);
    let line = run.fails(1);
    assert!(line.contains("function nope not found"), "{line}");
    assert!(line.contains(&stack.edge_url), "{line}");
    assert_eq!(run.stderr().lines().count(), 1);

    let line = stack
        .aether()
        .run(["invoke", "hello_world", "--input", "{not json"])
        .fails(2);
    assert!(line.contains("--input is not valid JSON"), "{line}");
}
