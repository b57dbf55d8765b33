//! How store failures are answered: the control plane's errors are
//! [`aether_http::ApiError`]s; this maps the store's to them.

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
            tracing::warn!(%reason, "the database is unavailable");
            ApiError::new(
                ErrorCode::Unavailable,
                "the database is unavailable; retry later (details in the server log)",
            )
        }
        other => ApiError::internal("accessing the store", other),
    }
}
