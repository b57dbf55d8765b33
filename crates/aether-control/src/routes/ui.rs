//! The dashboard: `GET /ui` and its files, compiled into the binary (no
//! CDN, no build step: it works on an air-gapped network), and
//! `GET /api/overview`, the one figure set only the dashboard needs.
//!
//! The page is static and public (it holds no data); everything it shows
//! comes from the JSON API with the admin token the operator signs in with
//! (kept in the tab's session storage by the page). Its answers carry a
//! strict Content-Security-Policy: scripts and styles from this origin
//! only, no inline script or style, no framing, requests to this origin
//! only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use aether_http::ApiError;
use aether_proto::ErrorCode;
use aether_proto::control::{NodeCounts, NodeStatus, Overview};
use aether_store::now_ms;

use crate::state::AppState;
use crate::wire::node_status;

/// The policy of every dashboard file.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The dashboard's files: name, media type, contents.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/app.css"),
    ),
];

fn file(name: &str) -> Response {
    let Some((_, media_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(ErrorCode::NotFound, format!("no dashboard file {name}"))
            .into_response();
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // Files change with the binary; a reload after an upgrade must
            // not mix versions.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        *body,
    )
        .into_response()
}

/// `GET /ui` and `GET /ui/`: the page.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /ui/{file}`: its script and style sheet.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

/// `GET /api/overview`: edges by status, the function count, and the last
/// hour of executions (minute by minute and as a whole, per node too).
pub async fn overview(State(state): State<AppState>) -> Result<Json<Overview>, ApiError> {
    let timeout_ms = u64::try_from(state.settings().node_timeout.as_millis()).unwrap_or(u64::MAX);
    let (functions, nodes) = state
        .blocking(|store| Ok((store.function_count()?, store.nodes()?)))
        .await?;
    let now = now_ms();
    let mut counts = NodeCounts::default();
    for node in &nodes {
        match node_status(node, now, timeout_ms) {
            NodeStatus::Online => counts.online += 1,
            NodeStatus::Offline => counts.offline += 1,
            NodeStatus::Stopped => counts.stopped += 1,
        }
    }
    let (minutes, last_hour, node_stats) = state.stats().fleet(now);
    Ok(Json(Overview {
        nodes: counts,
        functions,
        last_hour,
        minutes,
        node_stats,
    }))
}
