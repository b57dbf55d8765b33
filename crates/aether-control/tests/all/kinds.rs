//! Function kinds and outbound hosts (issue 16): the control plane finds
//! the kind from the module it is given (`http` for a `wasi:http`
//! component, `command` for a preview-1 module or a command component),
//! keeps it and the deploy's `allowed_outbound_hosts` with the version,
//! and hands both to the edges in the manifest.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestControl, assert_error, b64, command};

/// A minimal `wasi:http/proxy` component: it exports an instance named
/// like the handler interface. Enough for the control plane, which
/// inspects modules but never runs them.
fn http_component(tag: &str) -> Vec<u8> {
    component("wasi:http/incoming-handler@0.2.0", "handle", tag)
}

/// A minimal preview-2 command component (exports `wasi:cli/run`).
fn command_component(tag: &str) -> Vec<u8> {
    component("wasi:cli/run@0.2.0", "run", tag)
}

fn component(interface: &str, func: &str, tag: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
             (core module $m
               (memory 1) (data (i32.const 0) "{tag}")
               (func (export "{func}")))
             (core instance $i (instantiate $m))
             (func $f (canon lift (core func $i "{func}")))
             (instance $api (export "{func}" (func $f)))
             (export "{interface}" (instance $api)))"#
    ))
    .expect("valid component")
}

async fn manifest_entry(s: &TestControl, name: &str) -> Value {
    let manifest = s.get_json("/api/functions/manifest").await;
    manifest["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {manifest}"))
        .clone()
}

#[tokio::test]
async fn a_wasi_http_component_is_accepted_as_http_and_a_module_as_command() {
    let s = TestControl::start().await;
    let r = s.deploy_as("proxy", &http_component("one"), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "http", "{body}");
    assert_eq!(manifest_entry(&s, "proxy").await["kind"], "http");

    let r = s.deploy_as("module", &command("one"), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "command");
    let r = s.deploy_as("run", &command_component("one"), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let module = manifest_entry(&s, "module").await;
    assert_eq!(module["kind"], "command");
    assert!(
        module.get("allowed_outbound_hosts").is_none(),
        "empty hosts are not sent: {module}"
    );
    assert_eq!(manifest_entry(&s, "run").await["kind"], "command");

    // The listing and the detail say it too.
    let list = s.get_json("/api/functions").await;
    let kinds: Vec<(&str, &str)> = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("module", "command"), ("proxy", "http"), ("run", "command")]
    );
    let info = s.get_json("/api/functions/proxy").await;
    assert_eq!(info["versions"][0]["kind"], "http", "{info}");
    s.stop().await;
}

#[tokio::test]
async fn the_real_http_example_and_a_wasip2_command_get_their_kinds() {
    let s = TestControl::start().await;
    let (status, body) = s
        .deploy("http_hello", &aether_fixtures::http_hello_wasm())
        .await;
    assert_eq!((status, &body["kind"]), (201, &json!("http")), "{body}");
    let (status, body) = s
        .deploy("hello_p2", &aether_fixtures::hello_world_p2_wasm())
        .await;
    assert_eq!((status, &body["kind"]), (201, &json!("command")), "{body}");
    assert_eq!(manifest_entry(&s, "http_hello").await["kind"], "http");
    assert_eq!(manifest_entry(&s, "hello_p2").await["kind"], "command");
    s.stop().await;
}

#[tokio::test]
async fn a_bad_allow_list_entry_is_refused_with_400_naming_it() {
    let s = TestControl::start().await;
    for bad in [
        "not a url",
        "ftp://files.example.com",
        "https://api.example.com/v1",
        "",
    ] {
        let r = s
            .deploy_json(
                json!({"name": "proxy", "wasm_b64": b64(&http_component("one")),
                       "allowed_outbound_hosts": ["https://api.example.com", bad]}),
                None,
            )
            .await;
        let message = assert_error(r, 400, "invalid_request").await;
        assert!(
            message.contains(&format!("{bad:?}")) && message.contains("allowed_outbound_hosts"),
            "{bad:?}: {message}"
        );
    }
    // Not a list of strings: the body's shape is wrong.
    let r = s
        .deploy_json(
            json!({"name": "proxy", "wasm_b64": b64(&http_component("one")),
                   "allowed_outbound_hosts": "https://api.example.com"}),
            None,
        )
        .await;
    assert_error(r, 400, "invalid_request").await;
    // Nothing was stored.
    assert_error(
        s.client
            .get(s.at("/api/functions/proxy"))
            .send()
            .await
            .unwrap(),
        404,
        "function_not_found",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn hosts_round_trip_to_the_manifest_and_rollback_restores_kind_and_hosts() {
    let s = TestControl::start().await;
    let component = http_component("one");
    let hosts = json!([
        "https://api.example.com",
        "http://127.0.0.1:8080",
        "https://*.example.com:8443"
    ]);
    let deploy = |hosts: Value, wasm: &[u8]| {
        s.deploy_json(
            json!({"name": "proxy", "wasm_b64": b64(wasm), "allowed_outbound_hosts": hosts}),
            None,
        )
    };
    let r = deploy(hosts.clone(), &component).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry = manifest_entry(&s, "proxy").await;
    assert_eq!(entry["allowed_outbound_hosts"], hosts, "{entry}");
    assert_eq!(entry["kind"], "http");

    // The same bytes and hosts: an identical redeploy.
    let r = deploy(hosts.clone(), &component).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The same bytes with other hosts: a new version.
    let r = deploy(json!(["https://api.example.com"]), &component).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    assert_eq!(
        manifest_entry(&s, "proxy").await["allowed_outbound_hosts"],
        json!(["https://api.example.com"])
    );
    // Another kind under the same name: a new version too.
    let r = s.deploy_as("proxy", &command("now a command"), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry = manifest_entry(&s, "proxy").await;
    assert_eq!(
        (entry["version"].as_u64(), &entry["kind"]),
        (Some(3), &json!("command"))
    );
    assert!(entry.get("allowed_outbound_hosts").is_none(), "{entry}");

    let info = s.get_json("/api/functions/proxy").await;
    let versions = info["versions"].as_array().unwrap();
    assert_eq!(versions[0]["allowed_outbound_hosts"], hosts);
    assert_eq!(
        versions
            .iter()
            .map(|v| v["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["http", "http", "command"]
    );

    let r = s
        .client
        .post(s.at("/api/functions/proxy/rollback"))
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "http");
    let entry = manifest_entry(&s, "proxy").await;
    assert_eq!(entry["version"], 1);
    assert_eq!(entry["kind"], "http");
    assert_eq!(entry["allowed_outbound_hosts"], hosts);
    s.stop().await;
}
