//! HTTPS on a real listener: a server given a certificate serves TLS only,
//! a renewed certificate is used for new connections without a restart
//! while open connections go on, a half-written renewal keeps the current
//! one, and a client that does not trust the issuer fails with an error
//! naming the certificate problem.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aether_fixtures::pki::Ca;
use aether_http::tls::{ServerTls, TlsFiles, client_builder, error_chain};
use aether_http::{ServeOptions, serve};
use axum::Router;
use axum::routing::get;

fn client(ca: &Ca) -> reqwest::Client {
    client_builder(Some(&ca.pem))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get_ok(client: &reqwest::Client, url: &str) -> Result<String, String> {
    match client.get(url).send().await {
        Ok(r) => r.text().await.map_err(|e| error_chain(&e)),
        Err(e) => Err(error_chain(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_or_a_dropped_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new(dir.path(), "old-ca"), Ca::new(dir.path(), "new-ca"));
    let files = old_ca.server_cert(dir.path(), "server");
    let tls = ServerTls::load(TlsFiles {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" }));
    let mut options = ServeOptions::new(Duration::from_secs(5)).with_tls(Some(tls));
    options.tls_reload_interval = Duration::from_millis(50);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router,
        async {
            let _ = stopped.await;
        },
        options,
    ));
    let url = format!("https://127.0.0.1:{}/", addr.port());

    // Plain HTTP is not served on an HTTPS port.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/", addr.port())).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    let open = client(&old_ca);
    assert_eq!(get_ok(&open, &url).await.unwrap(), "ok");
    let err = get_ok(&client(&new_ca), &url).await.unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    // Renewal by another CA; the new one is served within a few looks.
    new_ca.server_cert(dir.path(), "server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_ok(&client(&new_ca), &url).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection opened before the renewal still works: a new one
    // made by this client would fail, as the next check shows.
    assert_eq!(get_ok(&open, &url).await.unwrap(), "ok");
    let err = get_ok(&client(&old_ca), &url).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");

    // A renewal caught half-written keeps the current certificate.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_ok(&client(&new_ca), &url).await.unwrap(), "ok");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn unusable_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.server_cert(dir.path(), "a");
    let b = ca.server_cert(dir.path(), "b");
    let err = ServerTls::load(TlsFiles {
        cert: a.cert.clone(),
        key: b.key.clone(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("a.crt") && err.contains("b.key"), "{err}");
    let err = ServerTls::load(TlsFiles {
        cert: dir.path().join("missing.crt"),
        key: a.key.clone(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot read certificate"), "{err}");
    let err = ServerTls::load(TlsFiles {
        cert: a.key.clone(),
        key: a.key,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("no certificate"), "{err}");
    let err = client_builder(Some(&a.cert.with_extension("nothing")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("CA certificate"), "{err}");
}
