//! Helpers: the harness (aether-e2e's `TestControl` on 127.0.0.1:0), the
//! real binary, wasm fixtures, error-body assertions.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use aether_e2e::{
    ADMIN_TOKEN as ADMIN, NODE_TOKEN as NODE, TestControl, b64, command, control_config, free_port,
    wait_healthy, with_tokens,
};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A reactor module: valid wasm, no `_start`.
pub fn reactor() -> Vec<u8> {
    wat::parse_str(r#"(module (func (export "_initialize")))"#).expect("valid wat")
}

/// Asserts the status and the documented error body; returns the message.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> String {
    let actual = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(
        actual,
        StatusCode::from_u16(status).unwrap(),
        "body: {text}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["error"]["code"], code, "{text}");
    let message = body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(!message.is_empty());
    assert_eq!(body.as_object().unwrap().len(), 1, "{text}");
    message
}

/// Path of the real binary (built by cargo for these tests).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aether-control"))
}
