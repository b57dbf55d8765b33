//! The edge-node registry: `POST /register` (registration and heartbeat)
//! and `GET /api/nodes`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use bytes::Bytes;

use aether_http::ApiError;
use aether_http::guard::{MissingContentType, require_json};
use aether_proto::control::{NodeInfo, RegisterRequest};
use aether_proto::validate_function_name;
use aether_store::{NodeHeartbeat, now_ms};

use super::parse_json;
use crate::state::AppState;
use crate::wire::node_info;

/// Longest accepted node id.
pub const MAX_NODE_ID_LEN: usize = 128;
/// Longest accepted node URL.
pub const MAX_NODE_URL_LEN: usize = 2048;
/// Most functions an edge may report holding.
pub const MAX_REPORTED_FUNCTIONS: usize = 100_000;

fn timeout_ms(state: &AppState) -> u64 {
    u64::try_from(state.settings().node_timeout.as_millis()).unwrap_or(u64::MAX)
}

/// Node ids: 1 to 128 characters of `[A-Za-z0-9._:-]`, safe in URLs and logs.
fn check_node_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!(
            "invalid node_id {id:?}: use 1 to {MAX_NODE_ID_LEN} letters, digits, '.', '_', ':' or '-'"
        )))
    }
}

fn check_url(url: &str) -> Result<(), ApiError> {
    let ok = url.len() <= MAX_NODE_URL_LEN
        && (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!(
            "invalid url {url:?}: expected an http:// or https:// base URL"
        )))
    }
}

/// `POST /register` with `{"node_id", "url", "functions"?}`; repeated calls
/// are heartbeats.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NodeInfo>, ApiError> {
    require_json(&headers, MissingContentType::Refused)?;
    let request: RegisterRequest = parse_json(&body?)?;
    check_node_id(&request.node_id)?;
    check_url(&request.url)?;
    if request.functions.len() > MAX_REPORTED_FUNCTIONS {
        return Err(ApiError::invalid_request(format!(
            "at most {MAX_REPORTED_FUNCTIONS} functions may be reported"
        )));
    }
    for name in request.functions.keys() {
        validate_function_name(name).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    }
    let heartbeat = NodeHeartbeat {
        node_id: request.node_id,
        url: request.url,
        functions: request.functions,
    };
    let record = state
        .blocking(move |store| store.upsert_node(heartbeat))
        .await?;
    state.metrics().heartbeats.increment(1);
    if record.registered_at_ms == record.last_seen_ms {
        tracing::info!(node_id = %record.node_id, url = %record.url, "node registered");
    } else {
        tracing::debug!(node_id = %record.node_id, "heartbeat");
    }
    Ok(Json(node_info(record, now_ms(), timeout_ms(&state))))
}

/// `GET /api/nodes`: every known node with online/offline status.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<NodeInfo>>, ApiError> {
    let nodes = state.blocking(|store| store.nodes()).await?;
    let now = now_ms();
    let timeout = timeout_ms(&state);
    Ok(Json(
        nodes
            .into_iter()
            .map(|n| node_info(n, now, timeout))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_and_urls_are_checked() {
        assert!(check_node_id("edge-1.eu:a_b").is_ok());
        for bad in ["", "a b", "é", "../x", &"n".repeat(129)] {
            assert!(check_node_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_url("http://10.0.0.1:9091").is_ok());
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http://a b",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }
}
