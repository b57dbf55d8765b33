//! How store failures are answered: the control plane's errors are
//! [`aether_http::ApiError`]s; this maps the store's to them.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use aether_http::ApiError;
use aether_proto::ErrorCode;
use aether_store::StoreError;

/// The answer to a failed store operation: a client's mistake keeps its
/// code, an unreachable database is a 503 (`unavailable`: worth a retry),
/// anything else is a logged 500.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::InvalidName(e) => ApiError::invalid_request(e.to_string()),
        StoreError::FunctionNotFound { name } => ApiError::function_not_found(&name),
        StoreError::VersionNotFound { .. } | StoreError::NodeNotFound { .. } => {
            ApiError::new(ErrorCode::NotFound, e.to_string())
        }
        StoreError::NodeExists { .. } => ApiError::new(ErrorCode::Conflict, e.to_string()),
        StoreError::Unavailable(reason) => {
            say_unavailable(&reason);
            ApiError::new(
                ErrorCode::Unavailable,
                "the database is unavailable; retry later (details in the server log)",
            )
        }
        other => ApiError::internal("accessing the store", other),
    }
}

/// Least time between two warnings about an unavailable database: during
/// an outage every request fails the same way.
const UNAVAILABLE_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Logs that the database is unavailable, at most once per
/// [`UNAVAILABLE_WARNING_INTERVAL`] (the rest at debug level).
fn say_unavailable(reason: &str) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if last.is_some_and(|at| at.elapsed() < UNAVAILABLE_WARNING_INTERVAL) {
        tracing::debug!(%reason, "the database is unavailable");
    } else {
        *last = Some(Instant::now());
        tracing::warn!(%reason, "the database is unavailable; answering 503 until it is back");
    }
}
