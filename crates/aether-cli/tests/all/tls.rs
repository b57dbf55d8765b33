//! TLS end to end with the real binaries: a control plane and edges that
//! serve HTTPS with certificates from a private CA made at test time, edges
//! that reach the control plane over `https://`, a notifier that reaches
//! them, and the CLI — and what a client that does not trust the CA sees.

use std::path::Path;
use std::time::{Duration, Instant};

use aether_e2e::{EdgeOptions, Process, free_port, start_control_https, start_edge};
use aether_fixtures::pki::{Ca, ServerCert};

use crate::{Aether, hello_world};

fn tls_args(cert: &ServerCert, ca: &Path) -> Vec<String> {
    [
        "--tls-cert",
        cert.cert.to_str().unwrap(),
        "--tls-key",
        cert.key.to_str().unwrap(),
        "--ca-cert",
        ca.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn edge_over_https(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    control: &Process,
    cert: &ServerCert,
    trusts: &Path,
    issuer: &Path,
) -> Process {
    let options = EdgeOptions {
        node_timeout: "30s",
        // Only the start-up reconcile and notifications move a deploy.
        reconcile_interval: "60s",
        extra_args: tls_args(cert, trusts),
        https_ca: Some(issuer.to_owned()),
        ..EdgeOptions::default()
    };
    rt.block_on(start_edge(dir, free_port(), &control.url, &options))
        .expect("edge starts")
}

fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn control_plane_edges_and_cli_speak_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = Ca::new(dir.path(), "fleet-ca");
    let stranger = Ca::new(dir.path(), "other-ca");
    let control_cert = ca.server_cert(dir.path(), "control");
    let edge_cert = ca.server_cert(dir.path(), "edge");
    let control = rt
        .block_on(start_control_https(
            &dir.path().join("control"),
            free_port(),
            &tls_args(&control_cert, &ca.pem),
            &ca.pem,
        ))
        .expect("control plane starts");
    let edge = edge_over_https(
        &rt,
        &dir.path().join("edge"),
        &control,
        &edge_cert,
        &ca.pem,
        &ca.pem,
    );
    let aether = |ca: &Path| {
        Aether::new(dir.path())
            .env("AETHER_CONTROL_URL", &control.url)
            .env("AETHER_EDGE_URL", &edge.url)
            .env("AETHER_TOKEN", crate::ADMIN)
            .env("AETHER_CA_CERT", ca)
    };

    // The edge registered over https, advertising an https URL.
    until("the edge registers", || {
        let nodes = aether(&ca.pem).run(["nodes", "--json"]).json();
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["status"] == "online" && n["url"].as_str().unwrap().starts_with("https://"))
    });

    aether(&ca.pem).run(["deploy".as_ref(), hello_world()]).ok();
    // Reconciles are a minute apart: only the control plane's https
    // notification can bring the function this fast.
    let health = || {
        let probe = aether_http::tls::client_builder(Some(&ca.pem))
            .unwrap()
            .build()
            .unwrap();
        rt.block_on(async {
            let body: serde_json::Value = probe
                .get(format!("{}/health", edge.url))
                .send()
                .await?
                .json()
                .await?;
            Ok::<_, reqwest::Error>(body["functions"].as_u64())
        })
    };
    until("the notified edge loads the function", || {
        health().ok().flatten() == Some(1)
    });
    let out = aether(&ca.pem)
        .run(["invoke", "hello_world", "--input", r#"{"msg":"over TLS"}"#])
        .ok();
    assert_eq!(out.trim(), "over TLS");

    // A CLI that does not trust the issuer is told what is wrong and what
    // to do; so is an edge.
    let err = aether(&stranger.pem).run(["functions"]).fails(1);
    assert!(
        err.contains("UnknownIssuer") && err.contains("--ca-cert"),
        "{err}"
    );
    let lost = edge_over_https(
        &rt,
        &dir.path().join("lost-edge"),
        &control,
        &ca.server_cert(dir.path(), "lost-edge"),
        &stranger.pem,
        &ca.pem,
    );
    until("the edge logs the certificate problem", || {
        lost.log_text()
            .contains("invalid peer certificate: UnknownIssuer")
    });
    let nodes = aether(&ca.pem).run(["nodes", "--json"]).json();
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
}
