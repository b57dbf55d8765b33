//! Hostile guests through the real edge (the runtime's own tests cover the
//! basic loop, memory, stack and output limits; see docs/SECURITY.md).

use std::time::{Duration, Instant};

use aether_hostile::{Edge, code, fixtures};
use serde_json::json;

const HOUR_NS: u64 = 3_600_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_sleeping_for_an_hour_time_out_and_free_their_slots() {
    let edge = Edge::start_with(|c| {
        c.limits.timeout = Duration::from_millis(300);
        c.max_concurrency = 2;
    })
    .await;
    edge.install_wat("nap", &fixtures::sleep(1, HOUR_NS, 0, false));
    edge.install_wat("alarm", &fixtures::sleep(0, u64::MAX / 2, 1, false));
    edge.install_wat("naps", &fixtures::sleep(1, 1_000_000, 0, true));
    // Twice as many sleepers as slots: each must end at its own timeout.
    let started = Instant::now();
    let calls: Vec<_> = ["nap", "alarm", "naps", "nap"]
        .into_iter()
        .map(|f| {
            let (client, url) = (edge.client.clone(), edge.url.clone());
            tokio::spawn(async move {
                let r = client
                    .post(format!("{url}/execute"))
                    .json(&json!({ "function": f }))
                    .send()
                    .await
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                )
            })
        })
        .collect();
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!((status, code(&body)), (504, "timeout"), "{body}");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "sleepers held slots for {took:?}"
    );
    assert_eq!(edge.state.executor().running(), 0);
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_sleep_completes_normally() {
    let edge = Edge::start().await;
    edge.install_wat("nap", &fixtures::sleep(1, 20_000_000, 0, false));
    let (status, body) = edge.call("nap").await;
    assert_eq!(
        (status, body["exit_code"].as_i64()),
        (200, Some(0)),
        "{body}"
    );
    assert!(
        body["execution_time_ms"].as_f64().unwrap() >= 20.0,
        "{body}"
    );
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_tables_and_single_huge_growths_are_refused() {
    let edge = Edge::start().await;
    // 10 million table slots declared up front.
    edge.install_wat(
        "table",
        r#"(module (table 10000000 funcref) (func (export "_start")))"#,
    );
    // table.grow until refused, then trap.
    edge.install_wat(
        "table-bomb",
        r#"(module (table 1 funcref)
          (func (export "_start")
            (loop (br_if 0 (i32.ne (table.grow (ref.null func) (i32.const 1000)) (i32.const -1))))
            unreachable))"#,
    );
    // One memory.grow of 4 GiB.
    edge.install_wat(
        "grow-max",
        r#"(module (memory 1)
          (func (export "_start")
            (if (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))))"#,
    );
    let (status, body) = edge.call("table").await;
    assert_eq!((status, code(&body)), (422, "invalid_wasm"), "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("table"),
        "{body}"
    );
    let (status, body) = edge.call("table-bomb").await;
    assert_eq!((status, code(&body)), (500, "trap"), "{body}");
    let (status, body) = edge.call("grow-max").await;
    assert_eq!(
        (status, code(&body)),
        (507, "memory_limit_exceeded"),
        "{body}"
    );
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_wasm_features_are_refused_as_invalid_wasm() {
    let edge = Edge::start().await;
    for (name, wat) in [
        (
            "mem64",
            r#"(module (memory i64 1) (func (export "_start")))"#,
        ),
        (
            "multi-mem",
            r#"(module (memory 1) (memory 1) (func (export "_start")))"#,
        ),
    ] {
        edge.install_wat(name, wat);
        let (status, body) = edge.call(name).await;
        assert!(
            matches!(
                (status, code(&body)),
                (422, "invalid_wasm") | (500, "internal")
            ),
            "{name}: {status} {body}"
        );
        edge.assert_serves().await;
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursion_with_huge_frames_is_a_stack_overflow() {
    let edge = Edge::start().await;
    edge.install_wat(
        "fat-recursion",
        r#"(module
          (func $r (param i64) (result i64) (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
            (i64.add (call $r (local.get 0)) (local.get 1)))
          (func (export "_start") (drop (call $r (i64.const 1)))))"#,
    );
    for _ in 0..3 {
        let (status, body) = edge.call("fat-recursion").await;
        assert_eq!((status, code(&body)), (500, "trap"), "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("stack"),
            "{body}"
        );
    }
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_output_then_trap_returns_the_trap_and_stderr_not_the_output() {
    let edge = Edge::start().await;
    edge.install_wat(
        "half",
        &fixtures::partial_then_trap("half an answer", "dying"),
    );
    let (status, body) = edge.call("half").await;
    assert_eq!((status, code(&body)), (500, "trap"), "{body}");
    assert_eq!(body["error"]["stderr"], "dying");
    assert!(
        body.get("output").is_none(),
        "partial stdout must not look like a result: {body}"
    );
    assert!(!body.to_string().contains("half an answer"), "{body}");
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_exit_codes_are_reported_or_trapped_never_a_crash() {
    let edge = Edge::start().await;
    for (code_in, expect_ok) in [
        (0, true),
        (1, true),
        (125, true),
        (126, false),
        (255, false),
        (-1, false),
        (i32::MIN, false),
    ] {
        let name = format!("exit{}", code_in as u32);
        edge.install_wat(&name, &fixtures::exit_with(code_in));
        let (status, body) = edge.call(&name).await;
        if expect_ok {
            assert_eq!(
                (status, body["exit_code"].as_i64()),
                (200, Some(i64::from(code_in))),
                "{body}"
            );
        } else {
            assert_eq!(
                (status, code(&body)),
                (500, "trap"),
                "exit {code_in}: {body}"
            );
        }
    }
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_in_the_start_function_is_a_trap() {
    let edge = Edge::start().await;
    edge.install_wat(
        "bad-start",
        r#"(module (func $s unreachable) (start $s) (func (export "_start")))"#,
    );
    let (status, body) = edge.call("bad-start").await;
    assert_eq!((status, code(&body)), (500, "trap"), "{body}");
    edge.assert_serves().await;
    edge.stop().await;
}

/// Calls `call` (a WAT expression returning an errno) and exits with it.
fn errno_of(imports: &str, call: &str) -> String {
    format!(
        r#"(module
          {imports}
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 512) "hostile-created-file")
          (data (i32.const 600) "../../../../../../../tmp/hostile-created-file")
          (func (export "_start") (call $exit {call})))"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_and_socket_calls_fail_inside_the_guest() {
    let edge = Edge::start().await;
    let path_open = r#"(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#;
    let open = |fd: u32, ptr: u32, len: u32| {
        format!(
            "(call $open (i32.const {fd}) (i32.const 0) (i32.const {ptr}) (i32.const {len}) (i32.const 1) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))"
        )
    };
    let cases = [
        // No preopened directory: fd 3 does not exist.
        ("open-fd3", errno_of(path_open, &open(3, 512, 20)), 8),
        ("open-traversal", errno_of(path_open, &open(3, 600, 45)), 8),
        // stdin is not a directory.
        ("open-stdin", errno_of(path_open, &open(0, 512, 20)), 8),
        (
            "prestat",
            errno_of(
                r#"(import "wasi_snapshot_preview1" "fd_prestat_get" (func $p (param i32 i32) (result i32)))"#,
                "(call $p (i32.const 3) (i32.const 0))",
            ),
            8,
        ),
        (
            "accept",
            errno_of(
                r#"(import "wasi_snapshot_preview1" "sock_accept" (func $a (param i32 i32 i32) (result i32)))"#,
                "(call $a (i32.const 3) (i32.const 0) (i32.const 0))",
            ),
            8,
        ),
        (
            "accept-stdin",
            errno_of(
                r#"(import "wasi_snapshot_preview1" "sock_accept" (func $a (param i32 i32 i32) (result i32)))"#,
                "(call $a (i32.const 0) (i32.const 0) (i32.const 0))",
            ),
            57,
        ),
        (
            "send-stdout",
            errno_of(
                r#"(import "wasi_snapshot_preview1" "sock_send" (func $s (param i32 i32 i32 i32 i32) (result i32)))"#,
                "(call $s (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))",
            ),
            57,
        ),
    ];
    for (name, wat, errno) in cases {
        edge.install_wat(name, &wat);
        let (status, body) = edge.call(name).await;
        assert_eq!(
            (status, body["exit_code"].as_i64()),
            (200, Some(errno)),
            "{name}: {body}"
        );
    }
    for dir in [
        std::env::current_dir().unwrap(),
        edge.func_dir.clone(),
        std::env::temp_dir(),
        "/".into(),
    ] {
        assert!(
            !dir.join("hostile-created-file").exists(),
            "guest created a file in {}",
            dir.display()
        );
    }
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_bounds_pointers_in_host_calls_never_touch_host_memory() {
    let edge = Edge::start().await;
    let fd_write = r#"(import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))"#;
    let fd_read = r#"(import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))"#;
    let random =
        r#"(import "wasi_snapshot_preview1" "random_get" (func $g (param i32 i32) (result i32)))"#;
    let cases = [
        // iovec array itself out of bounds.
        (
            "w-iovs",
            errno_of(
                fd_write,
                "(call $w (i32.const 1) (i32.const 65530) (i32.const 1000) (i32.const 16))",
            ),
        ),
        // iovec pointing past the end of memory (ptr 0 holds 0, len at 4).
        (
            "w-buf",
            errno_of(
                fd_write,
                "(block (result i32) (i32.store (i32.const 0) (i32.const 65000)) (i32.store (i32.const 4) (i32.const 100000)) (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))",
            ),
        ),
        (
            "r-buf",
            errno_of(
                fd_read,
                "(block (result i32) (i32.store (i32.const 0) (i32.const -16)) (i32.store (i32.const 4) (i32.const 4096)) (call $r (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))",
            ),
        ),
        (
            "r-count",
            errno_of(
                fd_read,
                "(call $r (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 16))",
            ),
        ),
        (
            "random",
            errno_of(random, "(call $g (i32.const 65000) (i32.const 10000))"),
        ),
    ];
    for (name, wat) in cases {
        edge.install_wat(name, &wat);
        let (status, body) = edge
            .execute(json!({"function": name, "stdin": "some input"}))
            .await;
        // EFAULT (21) or EOVERFLOW/EINVAL inside the guest, or a trap:
        // never a success with data from outside the guest's memory.
        let errno = body["exit_code"].as_i64();
        assert!(
            (status == 200 && errno.is_some_and(|e| e != 0))
                || (status == 500 && code(&body) == "trap"),
            "{name}: {status} {body}"
        );
    }
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_random_get_inside_memory_is_served_quickly() {
    let edge = Edge::start().await;
    edge.install_wat(
        "random",
        r#"(module
          (import "wasi_snapshot_preview1" "random_get" (func $g (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 32)
          (func (export "_start") (call $exit (call $g (i32.const 0) (i32.const 2000000)))))"#,
    );
    let (status, body) = edge.call("random").await;
    assert_eq!(
        (status, body["exit_code"].as_i64()),
        (200, Some(0)),
        "{body}"
    );
    assert!(
        body["execution_time_ms"].as_f64().unwrap() < 2000.0,
        "{body}"
    );
    edge.assert_serves().await;
    edge.stop().await;
}

#[test]
fn huge_args_and_env_fail_inside_a_small_guest() {
    // The edge passes deployed args and env to every invocation; a guest
    // whose memory cannot hold them gets an error from args_get, the host
    // copies nothing out of bounds.
    let rt = aether_runtime::Runtime::new(aether_runtime::RuntimeConfig {
        max_instances: 4,
        ..Default::default()
    })
    .unwrap();
    let wasm = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_get" (func $env (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (drop (call $sizes (i32.const 0) (i32.const 4)))
            (if (i32.eqz (call $args (i32.const 16) (i32.const 1024))) (then (call $exit (i32.const 100))))
            (if (i32.eqz (call $env (i32.const 16) (i32.const 1024))) (then (call $exit (i32.const 101))))
            (call $exit (i32.const 7))))"#,
    )
    .unwrap();
    let (module, _) = rt
        .load(aether_runtime::ModuleHash::of(&wasm), || Ok(wasm))
        .unwrap();
    let args: Vec<String> = (0..20_000).map(|i| format!("{i:0>200}")).collect();
    let env: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("K{i}"), "v".repeat(200)))
        .collect();
    let started = Instant::now();
    let result = rt.execute_blocking(
        &module,
        aether_runtime::Invocation {
            name: "f",
            args: &args,
            env: &env,
            stdin: bytes::Bytes::new(),
            limits: Default::default(),
        },
    );
    match result {
        Ok(out) => assert_eq!(out.exit_code, 7, "args_get must fail in one page"),
        Err(failure) => assert!(
            matches!(failure.error, aether_runtime::InvokeError::Trap { .. }),
            "{failure}"
        ),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compile_bombs_are_refused_at_validation() {
    let edge = Edge::start().await;
    let bomb = fixtures::many_functions(aether_runtime::MAX_FUNCTIONS as usize + 1);
    let started = Instant::now();
    edge.install("bomb", &bomb);
    let (status, body) = edge.call("bomb").await;
    assert_eq!((status, code(&body)), (422, "invalid_wasm"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("functions"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused after {:?}",
        started.elapsed()
    );
    edge.assert_serves().await;
    edge.stop().await;
}

/// Compile time and memory of compile bombs, printed (not run in CI:
/// `cargo test -p aether-hostile --release -- --ignored measure --nocapture`).
#[test]
#[ignore = "measurement, minutes of CPU"]
fn measure_compile_bombs() {
    let rt = aether_runtime::Runtime::new(aether_runtime::RuntimeConfig {
        max_instances: 4,
        ..Default::default()
    })
    .unwrap();
    let mut shapes: Vec<(String, Vec<u8>)> = Vec::new();
    for n in [10_000usize, 50_000] {
        shapes.push((format!("{n} small functions"), fixtures::many_functions(n)));
    }
    for n in [1_000_000usize, 3_000_000] {
        shapes.push((
            format!("one function of {n} instructions"),
            fixtures::huge_function(n, 64),
        ));
    }
    for (what, wasm) in shapes {
        let t = Instant::now();
        let valid =
            aether_runtime::validate_command_module(aether_runtime::validation_engine(), &wasm);
        let validate = t.elapsed();
        let t = Instant::now();
        let compiled = rt.compile(&wasm);
        println!(
            "{what}: {} bytes, validate {validate:?} ({}), compile {:?} ({}), rss {} MiB",
            wasm.len(),
            if valid.is_ok() { "ok" } else { "refused" },
            t.elapsed(),
            if compiled.is_ok() { "ok" } else { "refused" },
            aether_hostile::proc::rss_kb() / 1024
        );
    }
}
