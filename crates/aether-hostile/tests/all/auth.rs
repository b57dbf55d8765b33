//! Tokens: every protected control-plane endpoint refuses missing, wrong,
//! empty, malformed and very long tokens, and the wrong kind of token,
//! without changing any state. (The plain missing/wrong/empty/other-token
//! matrix is in aether-control's tests/all/auth.rs.)

use aether_hostile::{ADMIN, Control, NODE, b64, fixtures, with_tokens};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

/// Every endpoint that needs a token, with a valid body.
fn protected() -> Vec<(Method, &'static str, Option<Value>)> {
    let wasm = b64(&fixtures::command("x"));
    vec![
        (
            Method::POST,
            "/api/functions",
            Some(json!({"name": "f", "wasm_b64": wasm})),
        ),
        (Method::PUT, "/api/functions/f", None),
        (Method::GET, "/api/functions", None),
        (Method::GET, "/api/functions/f", None),
        (Method::DELETE, "/api/functions/f", None),
        (
            Method::POST,
            "/api/functions/f/rollback",
            Some(json!({"version": 1})),
        ),
        (Method::GET, "/api/nodes", None),
        (Method::GET, "/api/events", None),
        (Method::GET, "/api/functions/manifest", None),
        (Method::GET, "/api/functions/f/wasm", None),
        (
            Method::POST,
            "/register",
            Some(json!({"node_id": "impostor", "url": "http://127.0.0.1:1"})),
        ),
        (
            Method::POST,
            "/callback",
            Some(json!({"event": "forged", "data": {}})),
        ),
    ]
}

async fn assert_nothing_changed(control: &Control) {
    let admin = |path: &str| control.admin(Method::GET, path).send();
    assert_eq!(
        admin("/api/nodes")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!([])
    );
    let events: Value = admin("/api/events").await.unwrap().json().await.unwrap();
    assert_eq!(events["events"], json!([]), "{events}");
    let info: Value = admin("/api/functions/f")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["current_version"], 1, "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_malformed_and_near_miss_tokens_are_refused_everywhere() {
    let control = Control::start_with(with_tokens).await;
    assert_eq!(control.deploy("f", &fixtures::command("v1")).await.0, 201);
    let near_misses: Vec<HeaderValue> = [
        format!("Bearer {}", "x".repeat(8 << 10)),
        format!("Bearer {}", "y".repeat(100 << 10)),
        format!("Bearer {ADMIN}x"),
        format!("Bearer {}", &ADMIN[..ADMIN.len() - 1]),
        format!("Bearer {}", ADMIN.to_uppercase()),
        format!("Bearer {ADMIN}{NODE}"),
        format!("Bearer {ADMIN} {NODE}"),
        format!("Token {ADMIN}"),
        ADMIN.to_string(),
        "Bearer".into(),
        "Bearer ".into(),
        "".into(),
    ]
    .into_iter()
    .map(|v| HeaderValue::from_str(&v).unwrap())
    .chain([HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap()])
    .collect();
    for (method, path, body) in protected() {
        for value in &near_misses {
            let mut req = control
                .client
                .request(method.clone(), control.at(path))
                .header("authorization", value.clone());
            req = match &body {
                Some(b) => req.json(b),
                None if method == Method::PUT => req.body(fixtures::command("raw")),
                None => req,
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            assert!(
                matches!(status, 401 | 431),
                "{method} {path} with {} bytes: {status}",
                value.len()
            );
            if status == 401 {
                let body: Value = r.json().await.expect("JSON error body");
                assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
            }
        }
        // A token in the query string is not a token.
        let r = control
            .client
            .request(method.clone(), control.at(&format!("{path}?token={ADMIN}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with ?token=");
    }
    assert_nothing_changed(&control).await;
    control.assert_serves().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_edges_and_operators_cannot_cross_token_kinds() {
    let control = Control::start_with(with_tokens).await;
    assert_eq!(control.deploy("f", &fixtures::command("v1")).await.0, 201);
    // The node token opens no management endpoint, the admin token no
    // edge endpoint; neither changes anything.
    for (method, path, body) in protected() {
        let pull = path.ends_with("/manifest") || path.ends_with("/wasm");
        let node_only = path == "/register" || path == "/callback";
        let wrong = if node_only { ADMIN } else { NODE };
        if pull {
            continue;
        }
        let mut req = control
            .client
            .request(method.clone(), control.at(path))
            .bearer_auth(wrong);
        req = match &body {
            Some(b) => req.json(b),
            None if method == Method::PUT => req.body(fixtures::command("raw")),
            None => req,
        };
        assert_eq!(req.send().await.unwrap().status(), 401, "{method} {path}");
    }
    assert_nothing_changed(&control).await;
    control.assert_serves().await;
    control.stop().await;
}
