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
