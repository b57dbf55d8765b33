//! Normal execution: I/O, exit codes, isolation between invocations.

use aether_runtime::{InvokeError, ModuleSource};

use crate::{ECHO, load, run, runtime};

#[test]
fn stdin_is_echoed_to_stdout() {
    let rt = runtime();
    let (module, source) = load(&rt, ECHO);
    assert_eq!(source, ModuleSource::Compiled);
    let out = run(&rt, &module, "hello, edge").unwrap();
    assert_eq!(&out.stdout[..], b"hello, edge");
    assert_eq!(out.exit_code, 0);
    assert!(out.stderr.is_empty());
    assert_eq!(out.peak_memory_bytes, 64 * 1024, "one page declared");
}

#[test]
fn large_input_is_echoed_completely() {
    let rt = runtime();
    let (module, _) = load(&rt, ECHO);
    let input = "0123456789abcdef".repeat(10_000);
    let out = run(&rt, &module, &input).unwrap();
    assert_eq!(out.stdout.len(), input.len());
    assert_eq!(&out.stdout[..], input.as_bytes());
}

fn exit_module(
    rt: &aether_runtime::Runtime,
    code: i32,
) -> std::sync::Arc<aether_runtime::LoadedModule> {
    load(
        rt,
        &format!(
            r#"(module
                  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                  (memory (export "memory") 1)
                  (func (export "_start") (call $exit (i32.const {code}))))"#
        ),
    )
    .0
}

#[test]
fn proc_exit_code_is_reported_not_an_error() {
    let rt = runtime();
    for code in [0, 1, 7, 125] {
        let out = run(&rt, &exit_module(&rt, code), "").unwrap();
        assert_eq!(out.exit_code, code);
    }
}

#[test]
fn proc_exit_codes_outside_wasi_range_are_a_trap() {
    // WASI reserves exit statuses of 126 and above (wasmtime-wasi refuses
    // them); the caller gets a trap that says so, not a crash.
    let rt = runtime();
    for code in [126, 255, -1, i32::MAX] {
        let failure = run(&rt, &exit_module(&rt, code), "").unwrap_err();
        match failure.error {
            InvokeError::Trap { message } => {
                assert!(message.contains("exit status"), "{message}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }
}

#[test]
fn unreachable_is_a_trap_with_its_message() {
    let rt = runtime();
    let (module, _) = load(&rt, r#"(module (func (export "_start") unreachable))"#);
    let failure = run(&rt, &module, "").unwrap_err();
    match failure.error {
        InvokeError::Trap { message } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // The host is fine and the module still runs.
    assert!(run(&rt, &module, "").is_err());
    let (echo, _) = load(&rt, ECHO);
    assert_eq!(&run(&rt, &echo, "ok").unwrap().stdout[..], b"ok");
}

#[test]
fn stderr_written_before_a_trap_is_kept() {
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "partial")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 7))
            (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
            unreachable))"#,
    );
    let failure = run(&rt, &module, "").unwrap_err();
    assert!(matches!(failure.error, InvokeError::Trap { .. }));
    assert_eq!(&failure.stderr[..], b"partial");
}

#[test]
fn state_never_leaks_between_invocations() {
    // Increments a global and a memory cell and prints both as digits: a
    // fresh instance always prints "11".
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $g (mut i32) (i32.const 0))
          (func (export "_start")
            (global.set $g (i32.add (global.get $g) (i32.const 1)))
            (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (i32.const 1)))
            (i32.store8 (i32.const 64) (i32.add (i32.const 48) (global.get $g)))
            (i32.store8 (i32.const 65) (i32.add (i32.const 48) (i32.load (i32.const 100))))
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 2))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
    );
    for _ in 0..5 {
        assert_eq!(&run(&rt, &module, "").unwrap().stdout[..], b"11");
    }
}

#[test]
fn parallel_invocations_get_their_own_outputs() {
    let rt = runtime();
    let (module, _) = load(&rt, ECHO);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (rt, module) = (&rt, &module);
            s.spawn(move || {
                for i in 0..50 {
                    let input = format!("thread {t} call {i}");
                    let out = run(rt, module, &input).unwrap();
                    assert_eq!(out.stdout, input.as_bytes());
                }
            });
        }
    });
}

#[test]
fn args_and_env_are_visible_to_the_guest() {
    // args_sizes_get / environ_sizes_get report counts; the guest exits with
    // argc * 10 + envc.
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module
          (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (drop (call $args (i32.const 0) (i32.const 4)))
            (drop (call $env (i32.const 8) (i32.const 12)))
            (call $exit (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10)) (i32.load (i32.const 8))))))"#,
    );
    let args = vec!["--a".to_owned(), "b".to_owned()];
    let env = vec![("K".to_owned(), "V".to_owned())];
    let out = rt
        .execute_blocking(
            &module,
            aether_runtime::Invocation {
                name: "f",
                args: &args,
                env: &env,
                stdin: bytes::Bytes::new(),
                limits: Default::default(),
            },
        )
        .unwrap();
    assert_eq!(out.exit_code, 31, "argv = [f, --a, b], one env var");
}
