//! Bearer tokens: the admin token for the management API, the node token
//! for edge traffic, either for pulls; nothing without a token when tokens
//! are configured.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, NODE, TestControl, assert_error, b64, command, with_tokens};

/// Every authenticated endpoint with a valid request body.
fn endpoints() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (Method::GET, "/api/functions", None),
        (Method::GET, "/api/functions/f", None),
        (
            Method::POST,
            "/api/functions/f/rollback",
            Some(json!({"version": 1})),
        ),
        (Method::GET, "/api/nodes", None),
        (Method::GET, "/api/events", None),
        (Method::DELETE, "/api/functions/f", None),
    ]
}

async fn send(
    s: &TestControl,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    auth: Option<&str>,
) -> reqwest::Response {
    let mut req = s.client.request(method, s.at(path));
    if let Some(body) = body {
        req = req.json(body);
    }
    if let Some(value) = auth {
        req = req.header("Authorization", value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn management_api_requires_the_admin_token() {
    let s = TestControl::start_with(with_tokens).await;
    let wasm = command("x");
    let deploy = json!({"name": "f", "wasm_b64": b64(&wasm)});
    for (auth, what) in [
        (None, "missing"),
        (Some("Bearer wrong-token"), "wrong"),
        (Some("Bearer "), "empty"),
        (Some("Bearer"), "no token"),
        (Some(&*format!("Basic {ADMIN}")), "other scheme"),
        (Some(&*format!("Bearer {NODE}")), "node token"),
    ] {
        let r = send(&s, Method::POST, "/api/functions", Some(&deploy), auth).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_error(r, 401, "unauthorized").await;
        for (method, path, body) in endpoints() {
            let r = send(&s, method.clone(), path, body.as_ref(), auth).await;
            assert_error(r, 401, "unauthorized").await;
        }
        let r = s
            .client
            .put(s.at("/api/functions/f"))
            .body(wasm.clone())
            .send()
            .await
            .unwrap();
        assert_error(r, 401, "unauthorized").await;
    }
    let admin = format!("Bearer {ADMIN}");
    let r = send(
        &s,
        Method::POST,
        "/api/functions",
        Some(&deploy),
        Some(&admin),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for (method, path, body) in endpoints() {
        let r = send(&s, method.clone(), path, body.as_ref(), Some(&admin)).await;
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    }
    s.stop().await;
}

/// The node token is a join token: it opens only the join, which gives an
/// edge its own credential; edge traffic needs that credential, and is
/// attributed to its node whatever a body says; a removed node's
/// credential opens nothing.
#[tokio::test]
async fn edge_endpoints_need_the_edges_own_credential_which_the_join_token_gets() {
    let s = TestControl::start_with(with_tokens).await;
    s.deploy_as("f", &command("x"), Some(ADMIN)).await;
    let join_token = format!("Bearer {NODE}");
    let admin = format!("Bearer {ADMIN}");
    let joining = json!({"node_id": "edge-1", "url": "http://127.0.0.1:9091"});
    for auth in [None, Some("Bearer wrong"), Some(admin.as_str())] {
        let r = send(&s, Method::POST, "/api/nodes/join", Some(&joining), auth).await;
        assert_error(r, 401, "unauthorized").await;
    }
    let r = send(
        &s,
        Method::POST,
        "/api/nodes/join",
        Some(&joining),
        Some(&join_token),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let joined: serde_json::Value = r.json().await.unwrap();
    assert_eq!(joined["node_id"], "edge-1");
    let node = format!("Bearer {}", joined["credential"].as_str().unwrap());
    // The same id again: taking over an identity needs an operator.
    let r = send(
        &s,
        Method::POST,
        "/api/nodes/join",
        Some(&joining),
        Some(&join_token),
    )
    .await;
    assert_error(r, 409, "conflict").await;

    let register = json!({"node_id": "edge-1", "url": "http://127.0.0.1:9091"});
    let event = json!({"event": "node_started", "data": {"node_id": "edge-2"}});
    for (path, body) in [("/register", &register), ("/callback", &event)] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some(admin.as_str()),
            Some(&join_token),
        ] {
            let r = send(&s, Method::POST, path, Some(body), auth).await;
            assert_error(r, 401, "unauthorized").await;
        }
        let r = send(&s, Method::POST, path, Some(body), Some(&node)).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let as_another = json!({"node_id": "edge-2", "url": "http://127.0.0.1:9092"});
    let r = send(
        &s,
        Method::POST,
        "/register",
        Some(&as_another),
        Some(&node),
    )
    .await;
    assert_error(r, 403, "forbidden").await;
    let events = s.get_json("/api/events").await;
    let started = &events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(started["event"], "node_started");
    assert_eq!(
        started["node_id"], "edge-1",
        "attributed to the credential: {started}"
    );
    assert_eq!(started["data"]["node_id"], "edge-1", "{started}");

    for path in ["/api/functions/manifest", "/api/functions/f/wasm"] {
        for auth in [None, Some("Bearer wrong"), Some(join_token.as_str())] {
            let r = send(&s, Method::GET, path, None, auth).await;
            assert_error(r, 401, "unauthorized").await;
        }
        for auth in [&node, &admin] {
            let r = send(&s, Method::GET, path, None, Some(auth)).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
    }

    // Revocation.
    let r = send(&s, Method::DELETE, "/api/nodes/edge-1", None, Some(&node)).await;
    assert_error(r, 401, "unauthorized").await;
    let r = send(&s, Method::DELETE, "/api/nodes/edge-1", None, Some(&admin)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(&s, Method::POST, "/register", Some(&register), Some(&node)).await;
    assert_error(r, 401, "unauthorized").await;
    let r = send(&s, Method::DELETE, "/api/nodes/edge-1", None, Some(&admin)).await;
    assert_error(r, 404, "not_found").await;
    assert_eq!(s.get_json("/api/nodes").await, json!([]));
    s.stop().await;
}

#[tokio::test]
async fn health_and_metrics_stay_open_with_tokens() {
    let s = TestControl::start_with(with_tokens).await;
    assert_eq!(
        send(&s, Method::GET, "/health", None, None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&s, Method::GET, "/metrics", None, None).await.status(),
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test]
async fn without_tokens_every_endpoint_is_open() {
    let s = TestControl::start().await;
    assert_eq!(
        s.deploy_as("f", &command("x"), None).await.status(),
        StatusCode::CREATED
    );
    let r = send(
        &s,
        Method::POST,
        "/register",
        Some(&json!({"node_id": "n", "url": "http://a:1"})),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    for (method, path, body) in endpoints() {
        let r = send(&s, method.clone(), path, body.as_ref(), None).await;
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    }
    s.stop().await;
}

#[tokio::test]
async fn unauthenticated_oversize_uploads_are_refused_before_the_body_is_read() {
    let s = TestControl::start_with(|c| {
        let mut c = with_tokens(c);
        c.max_module_size = 1000;
        c
    })
    .await;
    let r = s
        .client
        .put(s.at("/api/functions/f"))
        .body(vec![0u8; 5000])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
    s.stop().await;
}
