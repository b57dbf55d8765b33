//! The edge-node registry: `POST /api/nodes/join` (an edge gets its own
//! credential), `POST /register` (registration and heartbeat), `GET
//! /api/nodes` and `DELETE /api/nodes/{id}` (revocation).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use bytes::Bytes;

use aether_http::ApiError;
use aether_http::guard::{MissingContentType, require_json};
use aether_proto::control::{
    EventReport as _, JoinRequest, JoinResponse, NodeInfo, NodeRemoved, RegisterRequest,
};
use aether_proto::validate_function_name;
use aether_store::{NewEvent, NodeHeartbeat, NodeJoin, now_ms};

use super::parse_json;
use crate::auth::{Caller, speaking_for};
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
pub(crate) fn check_node_id(id: &str) -> Result<(), ApiError> {
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
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NodeInfo>, ApiError> {
    require_json(&headers, MissingContentType::Refused)?;
    let request: RegisterRequest = parse_json(&body?)?;
    check_node_id(&request.node_id)?;
    speaking_for(&caller, &request.node_id)?;
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

/// `POST /api/nodes/join` with the join token and `{"node_id", "url"}`:
/// the edge's own credential, once. A node id that holds a credential
/// already is refused (409): taking over an edge's identity needs an
/// operator to remove it first.
pub async fn join(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JoinResponse>, ApiError> {
    require_json(&headers, MissingContentType::Refused)?;
    let request: JoinRequest = parse_json(&body?)?;
    check_node_id(&request.node_id)?;
    check_url(&request.url)?;
    let issued = crate::auth::issue(&request.node_id)
        .map_err(|e| ApiError::internal("making a credential", e))?;
    let join = NodeJoin {
        node_id: request.node_id.clone(),
        url: request.url,
        credential_sha256: issued.digest.to_hex(),
        notify_secret: issued.notify_secret.clone(),
    };
    let record = state.blocking(move |store| store.join_node(join)).await?;
    state.auth().add_node(&record.node_id, issued.digest);
    tracing::info!(node_id = %record.node_id, url = %record.url, "node joined");
    Ok(Json(JoinResponse {
        node_id: record.node_id,
        credential: issued.credential,
        notify_secret: issued.notify_secret,
    }))
}

/// `DELETE /api/nodes/{id}`: forgets a node; its credential opens nothing
/// from now on and it is no longer notified.
pub async fn remove(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
) -> Result<Json<NodeRemoved>, ApiError> {
    check_node_id(&node_id)?;
    let id = node_id.clone();
    state.blocking(move |store| store.remove_node(&id)).await?;
    state.auth().remove_node(&node_id);
    let removed = NodeRemoved { node_id };
    let event = NewEvent {
        event: NodeRemoved::EVENT.to_owned(),
        node_id: Some(removed.node_id.clone()),
        function: None,
        data: serde_json::to_value(&removed).unwrap_or_default(),
    };
    state
        .blocking(move |store| store.append_events(vec![event]))
        .await?;
    tracing::info!(node_id = %removed.node_id, "node removed; its credential is revoked");
    Ok(Json(removed))
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
