//! Components: preview-2 commands run like modules, `wasi:http` components
//! answer requests, and both are precompiled to disk artifacts and told
//! apart at load and at deploy.

use std::sync::Arc;

use aether_runtime::{
    EgressPolicy, GuestResponse, HttpInvocation, Limits, ModuleHash, ModuleSource, Runtime,
    RuntimeConfig, WasmShape,
};
use http_body_util::{BodyExt, Full};

use crate::{run_with, runtime};

#[test]
fn a_preview_2_command_runs_with_stdin_stdout_and_its_limits() {
    let rt = runtime();
    let wasm = aether_fixtures::hello_world_p2_wasm();
    let (module, source) = rt.load(ModuleHash::of(&wasm), || Ok(wasm.clone())).unwrap();
    assert_eq!(source, ModuleSource::Compiled);
    assert_eq!(module.shape(), WasmShape::CommandComponent);
    let out = run_with(&rt, &module, r#"{"msg":"p2"}"#, Limits::default()).unwrap();
    assert_eq!(&out.stdout[..], b"p2");
    assert_eq!(out.exit_code, 0);
    assert!(out.peak_memory_bytes >= 64 << 10);

    // The same memory limit as a module's: a limit below what the
    // component's memories start with is refused at instantiation.
    let tight = Limits {
        memory_bytes: 64 << 10,
        ..Limits::default()
    };
    let failure = run_with(&rt, &module, "{}", tight).unwrap_err();
    assert!(
        matches!(
            failure.error,
            aether_runtime::InvokeError::MemoryLimit { .. }
        ),
        "{failure}"
    );
}

#[test]
fn components_are_precompiled_to_disk_and_loaded_back_with_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        max_instances: 16,
        artifact_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let command = aether_fixtures::hello_world_p2_wasm();
    let http = aether_fixtures::http_hello_wasm();
    {
        let rt = Runtime::new(config.clone()).unwrap();
        for wasm in [&command, &http] {
            let (_, source) = rt.load(ModuleHash::of(wasm), || Ok(wasm.clone())).unwrap();
            assert_eq!(source, ModuleSource::Compiled);
        }
    }
    let rt = Runtime::new(config).unwrap();
    let no_wasm = || Err(std::io::Error::other("must come from the artifact"));
    let (module, source) = rt.load(ModuleHash::of(&command), no_wasm).unwrap();
    assert_eq!(
        (source, module.shape()),
        (ModuleSource::Disk, WasmShape::CommandComponent)
    );
    let (module, source) = rt.load(ModuleHash::of(&http), no_wasm).unwrap();
    assert_eq!(
        (source, module.shape()),
        (ModuleSource::Disk, WasmShape::HttpComponent)
    );
}

#[test]
fn inspect_tells_the_three_shapes_apart_and_refuses_a_component_that_is_neither() {
    assert_eq!(
        aether_runtime::inspect(&aether_fixtures::hello_world_wasm()).unwrap(),
        WasmShape::CommandModule
    );
    assert_eq!(
        aether_runtime::inspect(&aether_fixtures::hello_world_p2_wasm()).unwrap(),
        WasmShape::CommandComponent
    );
    assert_eq!(
        aether_runtime::inspect(&aether_fixtures::http_hello_wasm()).unwrap(),
        WasmShape::HttpComponent
    );
    let empty = wat::parse_str("(component)").unwrap();
    let err = aether_runtime::inspect(&empty).unwrap_err();
    assert!(err.to_string().contains("wasi:cli/run"), "{err}");
    let foreign = wat::parse_str(r#"(component (import "acme:db/query" (func)))"#).unwrap();
    let err = aether_runtime::inspect(&foreign).unwrap_err();
    assert!(err.to_string().contains("acme:db/query"), "{err}");
}

#[test]
fn an_http_component_answers_a_request_in_process_and_is_refused_by_execute() {
    let rt = runtime();
    let wasm = aether_fixtures::http_hello_wasm();
    let (module, _) = rt.load(ModuleHash::of(&wasm), || Ok(wasm.clone())).unwrap();
    assert!(module.shape().is_http());
    let failure = run_with(&rt, &module, "", Limits::default()).unwrap_err();
    assert!(failure.to_string().contains("/fn"), "{failure}");

    let request = http::Request::put("/a/b?c=d")
        .header("host", "localhost")
        .header("x-demo", "hello")
        .body(Full::new(bytes::Bytes::from_static(b"payload")))
        .unwrap();
    let call = rt
        .http_call(
            &module,
            HttpInvocation {
                env: &[],
                request,
                https: false,
                limits: Limits::default(),
                max_request_body: 1 << 20,
                egress: Arc::new(EgressPolicy::deny_all()),
            },
        )
        .unwrap();
    let (outcome, body) = wasmtime_wasi::runtime::in_tokio(async {
        tokio::join!(call.guest, async {
            match call.response.recv().await {
                GuestResponse::Response(r) => {
                    assert_eq!(r.status(), 200);
                    r.into_body().collect().await.unwrap().to_bytes()
                }
                _ => panic!("no response"),
            }
        })
    });
    outcome.result.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/a/b");
    assert_eq!(body["query"], "c=d");
    assert_eq!(body["header"], "hello");
    assert_eq!(body["body"], "payload");
}

/// A command component that sleeps an hour in one wasi:clocks call (no
/// wasm runs meanwhile, so epoch interruption alone cannot stop it).
const SLEEPER: &str = r#"(component $c
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $p (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow $p))))
  ))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer $c $pollable (type $outer))
    (export "pollable" (type $p (eq $outer)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))
  ))
  (alias export $clock "subscribe-duration" (func $subscribe))
  (alias export $poll "[method]pollable.block" (func $block))
  (core func $subscribe_core (canon lower (func $subscribe)))
  (core func $block_core (canon lower (func $block)))
  (core module $m
    (import "" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "" "block" (func $block (param i32)))
    (func (export "run") (result i32)
      (call $block (call $subscribe (i64.const 3600000000000)))
      (i32.const 0)))
  (core instance $i (instantiate $m
    (with "" (instance (export "subscribe" (func $subscribe_core)) (export "block" (func $block_core))))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance))
)"#;

#[test]
fn a_command_component_blocked_in_a_host_call_is_stopped_at_its_time_limit() {
    let rt = runtime();
    let wasm = wat::parse_str(SLEEPER).expect("valid component");
    let (module, _) = rt.load(ModuleHash::of(&wasm), || Ok(wasm.clone())).unwrap();
    assert_eq!(module.shape(), WasmShape::CommandComponent);
    let limits = Limits {
        timeout: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let failure = run_with(&rt, &module, "", limits).unwrap_err();
    assert!(
        matches!(failure.error, aether_runtime::InvokeError::Timeout { .. }),
        "{failure}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
