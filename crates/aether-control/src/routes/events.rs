//! The event log: `POST /callback` from edges and `GET /api/events`.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use aether_http::ApiError;
use aether_http::guard::{MissingContentType, require_json};
use aether_proto::control::{
    CallbackAccepted, CallbackBody, EventIn, EventReport as _, EventsPage, NodeStopping,
};
use aether_proto::validate_function_name;
use aether_store::{EventQuery, NewEvent};

use super::{MAX_EVENTS_PER_CALLBACK, parse_json};
use crate::auth::Caller;
use crate::state::AppState;
use crate::wire::stored_event;

/// Events per page when `limit` is absent.
pub const DEFAULT_EVENTS_LIMIT: usize = 100;
/// Most events per page: bounds the response size and the scan.
pub const MAX_EVENTS_LIMIT: usize = 1000;
/// Longest event kind.
pub const MAX_EVENT_KIND_LEN: usize = 64;

/// Validates an incoming event and extracts its node and function; an
/// event sent with a node credential belongs to that node, whatever its
/// `node_id` field says.
fn new_event(e: EventIn, caller: &Caller) -> Result<NewEvent, ApiError> {
    let kind_ok = !e.event.is_empty()
        && e.event.len() <= MAX_EVENT_KIND_LEN
        && e.event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !kind_ok {
        return Err(ApiError::invalid_request(format!(
            "invalid event kind {:?}: use 1 to {MAX_EVENT_KIND_LEN} letters, digits, '_', '.' or '-'",
            e.event
        )));
    }
    let string_field = |key: &str| e.data.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let function = string_field("function");
    if let Some(name) = &function {
        validate_function_name(name).map_err(|err| ApiError::invalid_request(err.to_string()))?;
    }
    let node_id = match caller {
        Caller::Node(id) => Some(id.clone()),
        _ => string_field("node_id"),
    };
    let mut data = e.data;
    if let (Caller::Node(id), Some(fields)) = (caller, data.as_object_mut())
        && fields.contains_key("node_id")
    {
        fields.insert("node_id".into(), serde_json::Value::String(id.clone()));
    }
    Ok(NewEvent {
        node_id,
        function,
        event: e.event,
        data,
    })
}

/// `POST /callback` with one event, an array of events, or
/// `{"events": [...]}` → 202.
pub async fn callback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<impl Serialize>), ApiError> {
    require_json(&headers, MissingContentType::Refused)?;
    let body: CallbackBody = parse_json(&body?)?;
    let events = body.into_events();
    if events.len() > MAX_EVENTS_PER_CALLBACK {
        return Err(ApiError::invalid_request(format!(
            "at most {MAX_EVENTS_PER_CALLBACK} events per request"
        )));
    }
    let events = events
        .into_iter()
        .map(|e| new_event(e, &caller))
        .collect::<Result<Vec<_>, _>>()?;
    let stored = state
        .blocking(move |store| store.append_events(events))
        .await?;
    // With a shared store, statistics come from the shared log
    // (crate::replicas), whichever replica received the report.
    if !state.store().is_shared() {
        for event in &stored {
            state.stats().record_event(event);
        }
    }
    // A graceful stop shows at once, not after `node_timeout`.
    let stopping: Vec<String> = stored
        .iter()
        .filter(|e| e.event == NodeStopping::EVENT)
        .filter_map(|e| e.node_id.clone())
        .collect();
    if !stopping.is_empty() {
        state
            .blocking(move |store| {
                for node_id in &stopping {
                    if !store.mark_node_stopped(node_id)? {
                        tracing::debug!(node_id, "node_stopping from an unknown node");
                    }
                }
                Ok(())
            })
            .await?;
    }
    state
        .metrics()
        .events_received
        .increment(stored.len() as u64);
    Ok((
        StatusCode::ACCEPTED,
        Json(CallbackAccepted {
            accepted: stored.len(),
            last_id: stored.last().map(|e| e.id),
        }),
    ))
}

/// `?since=&limit=&function=&node=&kind=&newest=`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events with a greater id.
    since: Option<u64>,
    /// Page size, 1 to [`MAX_EVENTS_LIMIT`] (larger values are capped).
    limit: Option<usize>,
    /// Only events concerning this function.
    function: Option<String>,
    /// Only events of this node.
    node: Option<String>,
    /// Only events of this kind.
    kind: Option<String>,
    /// `true`: the newest `limit` matching events (oldest first), where a
    /// live tail starts.
    newest: Option<bool>,
}

/// `GET /api/events`: oldest first; `next_since` continues the listing.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let Query(query) = query?;
    if let Some(name) = &query.function {
        validate_function_name(name).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    }
    let limit = match query.limit {
        Some(0) => return Err(ApiError::invalid_request("limit must be at least 1")),
        Some(n) => n.min(MAX_EVENTS_LIMIT),
        None => DEFAULT_EVENTS_LIMIT,
    };
    let since = query.since.unwrap_or(0);
    if let Some(node) = &query.node {
        crate::routes::nodes::check_node_id(node)?;
    }
    if let Some(kind) = &query.kind
        && (kind.is_empty() || kind.len() > MAX_EVENT_KIND_LEN)
    {
        return Err(ApiError::invalid_request(format!(
            "kind must be 1 to {MAX_EVENT_KIND_LEN} characters"
        )));
    }
    let store_query = EventQuery {
        since,
        limit,
        function: query.function,
        node_id: query.node,
        kind: query.kind,
        newest: query.newest.unwrap_or(false),
    };
    let (events, newest_id) = state
        .blocking(move |store| {
            let events = store.events(&store_query)?;
            // A tail that found nothing matching starts from the end of the
            // log, not from `since`: its next poll must not rescan history.
            let newest_id = if store_query.newest && events.is_empty() {
                let end = EventQuery {
                    since: store_query.since,
                    limit: 1,
                    newest: true,
                    ..EventQuery::default()
                };
                store.events(&end)?.last().map(|e| e.id)
            } else {
                None
            };
            Ok((events, newest_id))
        })
        .await?;
    // With no new events, `next_since` repeats the caller's position so a
    // poller can keep passing it.
    let next_since = events.last().map(|e| e.id).or(newest_id).or(query.since);
    Ok(Json(EventsPage {
        events: events.into_iter().map(stored_event).collect(),
        next_since,
    }))
}
