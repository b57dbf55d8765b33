//! Hostile guests: each ends with its own typed error and the runtime keeps
//! serving.

use std::time::{Duration, Instant};

use aether_runtime::{InvokeError, Limits};

use crate::{ECHO, load, run, run_with, runtime, short_timeout};

fn assert_still_serves(rt: &aether_runtime::Runtime) {
    let (echo, _) = load(rt, ECHO);
    assert_eq!(&run(rt, &echo, "alive").unwrap().stdout[..], b"alive");
}

#[test]
fn infinite_loop_is_interrupted_by_deadline() {
    let rt = runtime();
    let (module, _) = load(&rt, r#"(module (func (export "_start") (loop (br 0))))"#);
    let started = Instant::now();
    let failure = run_with(&rt, &module, "", short_timeout()).unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        failure.error,
        InvokeError::Timeout {
            limit: Duration::from_millis(200)
        }
    );
    assert!(
        took >= Duration::from_millis(200),
        "stopped early: {took:?}"
    );
    assert!(took < Duration::from_millis(1500), "stopped late: {took:?}");
    assert_still_serves(&rt);
}

#[test]
fn infinite_loop_with_calls_is_interrupted() {
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module
          (func $f (result i32) (i32.const 1))
          (func (export "_start") (loop (drop (call $f)) (br 0))))"#,
    );
    let failure = run_with(&rt, &module, "", short_timeout()).unwrap_err();
    assert!(matches!(failure.error, InvokeError::Timeout { .. }));
    assert_still_serves(&rt);
}

#[test]
fn infinite_loop_in_a_start_function_is_interrupted() {
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module (func $s (loop (br 0))) (start $s) (func (export "_start")))"#,
    );
    let failure = run_with(&rt, &module, "", short_timeout()).unwrap_err();
    assert!(
        matches!(failure.error, InvokeError::Timeout { .. }),
        "{:?}",
        failure.error
    );
    assert_still_serves(&rt);
}

#[test]
fn memory_grow_bomb_hits_the_memory_limit() {
    let rt = runtime();
    // Grows one page at a time until refused, then traps like an allocator
    // that cannot get memory.
    let (module, _) = load(
        &rt,
        r#"(module (memory 1)
          (func (export "_start")
            (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
            unreachable))"#,
    );
    let failure = run(&rt, &module, "").unwrap_err();
    assert_eq!(
        failure.error,
        InvokeError::MemoryLimit {
            limit_bytes: Limits::default().memory_bytes
        }
    );
    assert_still_serves(&rt);
}

#[test]
fn growth_up_to_the_limit_succeeds_and_peak_is_reported() {
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module (memory 1)
          (func (export "_start")
            (if (i32.eq (memory.grow (i32.const 3)) (i32.const -1)) (then unreachable))))"#,
    );
    let limits = Limits {
        memory_bytes: 4 * 65536,
        ..Limits::default()
    };
    let out = run_with(&rt, &module, "", limits).unwrap();
    assert_eq!(out.peak_memory_bytes, 4 * 65536);
}

#[test]
fn huge_declared_initial_memory_is_refused() {
    let rt = runtime();
    // 1000 pages = 64 MB > the 16 MB default.
    let (module, _) = load(&rt, r#"(module (memory 1000) (func (export "_start")))"#);
    let failure = run(&rt, &module, "").unwrap_err();
    assert!(
        matches!(failure.error, InvokeError::MemoryLimit { .. }),
        "{:?}",
        failure.error
    );
    assert_still_serves(&rt);
}

#[test]
fn deep_recursion_is_a_stack_overflow_and_the_host_survives() {
    let rt = runtime();
    let (module, _) = load(
        &rt,
        r#"(module
          (func $r (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))
          (func (export "_start") (drop (call $r (i32.const 0)))))"#,
    );
    for _ in 0..3 {
        let failure = run(&rt, &module, "").unwrap_err();
        assert_eq!(failure.error, InvokeError::StackOverflow);
    }
    assert_still_serves(&rt);
}

/// Writes 4 KiB to `fd` forever, ignoring errors.
fn flood(fd: u32) -> String {
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 4096))
            (loop (drop (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 16))) (br 0))))"#
    )
}

#[test]
fn stdout_flood_stops_at_the_output_limit_at_once() {
    let rt = runtime();
    let (module, _) = load(&rt, &flood(1));
    let started = Instant::now();
    let failure = run(&rt, &module, "").unwrap_err();
    assert_eq!(
        failure.error,
        InvokeError::OutputLimit {
            stream: "stdout",
            limit_bytes: 1 << 20
        }
    );
    // Ended by the limit, not by the 3 s timeout.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_still_serves(&rt);
}

#[test]
fn stderr_flood_stops_at_the_output_limit() {
    let rt = runtime();
    let (module, _) = load(&rt, &flood(2));
    let limits = Limits {
        max_stderr_bytes: 10_000,
        ..Limits::default()
    };
    let failure = run_with(&rt, &module, "", limits).unwrap_err();
    assert_eq!(
        failure.error,
        InvokeError::OutputLimit {
            stream: "stderr",
            limit_bytes: 10_000
        }
    );
    assert_eq!(failure.stderr.len(), 10_000, "captured up to the limit");
}

#[test]
fn output_exactly_at_the_limit_is_fine() {
    let rt = runtime();
    let (module, _) = load(&rt, ECHO);
    let limits = Limits {
        max_stdout_bytes: 5,
        ..Limits::default()
    };
    assert_eq!(
        &run_with(&rt, &module, "12345", limits).unwrap().stdout[..],
        b"12345"
    );
    let failure = run_with(&rt, &module, "123456", limits).unwrap_err();
    assert!(matches!(failure.error, InvokeError::OutputLimit { .. }));
}

/// One `poll_oneoff` on a clock subscription (`clock` 0 = realtime,
/// 1 = monotonic; `flags` 1 = absolute), then `proc_exit(errno)`; or the
/// call in a loop forever.
fn sleeper(clock: u32, timeout_ns: u64, flags: u32, repeat: bool) -> String {
    let call = "(call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))";
    let body = if repeat {
        format!("(loop $again (drop {call}) (br $again))")
    } else {
        format!("(call $exit {call})")
    };
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i64.store (i32.const 0) (i64.const 42))
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const {clock}))
            (i64.store (i32.const 24) (i64.const {timeout_ns}))
            (i32.store16 (i32.const 40) (i32.const {flags}))
            {body}))"#
    )
}

#[test]
fn sleeping_in_poll_oneoff_ends_at_the_timeout() {
    // Regression: epoch interruption cannot stop a host call, and
    // wasmtime-wasi's poll_oneoff slept as long as the guest asked, so a
    // guest sleeping for an hour held its execution thread for an hour.
    let rt = runtime();
    let hour = 3_600_000_000_000u64;
    let far_wall = u64::MAX / 2;
    for (what, wat) in [
        ("relative monotonic", sleeper(1, hour, 0, false)),
        ("relative realtime", sleeper(0, hour, 0, false)),
        ("absolute monotonic", sleeper(1, hour, 1, false)),
        ("absolute realtime", sleeper(0, far_wall, 1, false)),
        ("short sleeps forever", sleeper(1, 1_000_000, 0, true)),
    ] {
        let (module, _) = load(&rt, &wat);
        let started = Instant::now();
        let failure = run_with(&rt, &module, "", short_timeout()).unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            failure.error,
            InvokeError::Timeout {
                limit: Duration::from_millis(200)
            },
            "{what}"
        );
        assert!(took >= Duration::from_millis(190), "{what}: {took:?}");
        assert!(took < Duration::from_millis(1500), "{what}: {took:?}");
    }
    assert_still_serves(&rt);
}

#[test]
fn a_sleep_within_the_timeout_still_sleeps_as_asked() {
    let rt = runtime();
    let (module, _) = load(&rt, &sleeper(1, 50_000_000, 0, false));
    let started = Instant::now();
    let out = run_with(&rt, &module, "", short_timeout()).unwrap();
    assert_eq!(out.exit_code, 0, "poll_oneoff succeeded");
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn random_get_beyond_the_memory_limit_is_refused_before_the_host_allocates() {
    // Regression: wasmtime-wasi allocates and fills the whole buffer (up to
    // 64 MiB by default) before checking it against guest memory, so a
    // one-page guest looping on a 60 MB `random_get` made the host churn
    // 60 MB per call. Requests above the memory limit now trap at once.
    let rt = runtime();
    let random = |len: u32, pages: u32| {
        format!(
            r#"(module
              (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory (export "memory") {pages})
              (func (export "_start") (call $exit (call $r (i32.const 0) (i32.const {len})))))"#
        )
    };
    let (module, _) = load(&rt, &random(60_000_000, 1));
    let failure = run(&rt, &module, "").unwrap_err();
    match failure.error {
        InvokeError::Trap { message } => assert!(message.contains("exceeds limit"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // A buffer that fits in the guest's memory is filled.
    let (module, _) = load(&rt, &random(4 << 20, 64));
    assert_eq!(run(&rt, &module, "").unwrap().exit_code, 0);
    assert_still_serves(&rt);
}
