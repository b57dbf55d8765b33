//! The stable JSON error body: `{"error": {"code": "...", "message": "..."}}`.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes. Clients match on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, wrong types, a bad name, a missing field.
    InvalidRequest,
    /// Missing or wrong bearer token.
    Unauthorized,
    /// A valid credential that does not allow this (e.g. an edge speaking
    /// for another node).
    Forbidden,
    /// No function with that name.
    FunctionNotFound,
    /// Any other unknown route or resource.
    NotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// Body (or function input) larger than the configured limit.
    PayloadTooLarge,
    /// The body's `Content-Type` is not the one the route accepts.
    UnsupportedMediaType,
    /// The module is not valid WebAssembly or not a WASI command module.
    InvalidWasm,
    /// The function trapped (unreachable, out-of-bounds, stack overflow, ...).
    Trap,
    /// The function ran past its wall-clock limit.
    Timeout,
    /// The function tried to grow its linear memory beyond its limit.
    MemoryLimitExceeded,
    /// The function wrote more stdout or stderr than allowed.
    OutputLimitExceeded,
    /// The execution queue is full; retry later.
    Overloaded,
    /// A conflicting state, e.g. rollback to a version that does not exist.
    Conflict,
    /// A bug or an I/O failure on the server; details are in its log.
    Internal,
    /// Something the server depends on (the control plane's database) cannot
    /// be reached right now; retry later, or through another replica.
    Unavailable,
    /// The function is of another kind than the call: an HTTP function
    /// through `POST /execute`. The message names the right way.
    WrongKind,
    /// The function answered something that is not a valid HTTP response
    /// (a CGI program whose output has no header block, a malformed
    /// header or status).
    BadResponse,
    /// The edge's module memory budget is exhausted: it refuses to load one
    /// more module rather than swap. Retry on another edge; the operator
    /// raises the budget or removes functions.
    MemoryBudgetExceeded,
}

impl ErrorCode {
    /// Every code, in declaration order (`ALL[c as usize] == c`).
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::FunctionNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidWasm,
        ErrorCode::Trap,
        ErrorCode::Timeout,
        ErrorCode::MemoryLimitExceeded,
        ErrorCode::OutputLimitExceeded,
        ErrorCode::Overloaded,
        ErrorCode::Conflict,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::WrongKind,
        ErrorCode::BadResponse,
        ErrorCode::MemoryBudgetExceeded,
    ];

    /// The HTTP status that goes with this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::WrongKind => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::FunctionNotFound | ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidWasm => 422,
            ErrorCode::Trap => 500,
            ErrorCode::MemoryLimitExceeded => 507,
            ErrorCode::OutputLimitExceeded | ErrorCode::BadResponse => 502,
            ErrorCode::Internal => 500,
            ErrorCode::Overloaded | ErrorCode::Unavailable | ErrorCode::MemoryBudgetExceeded => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The snake_case string, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::FunctionNotFound => "function_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidWasm => "invalid_wasm",
            ErrorCode::Trap => "trap",
            ErrorCode::Timeout => "timeout",
            ErrorCode::MemoryLimitExceeded => "memory_limit_exceeded",
            ErrorCode::OutputLimitExceeded => "output_limit_exceeded",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::WrongKind => "wrong_kind",
            ErrorCode::BadResponse => "bad_response",
            ErrorCode::MemoryBudgetExceeded => "memory_budget_exceeded",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Code and human message of an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation; not stable, do not match on it.
    pub message: String,
}

impl ApiErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ApiErrorBody::new(ErrorCode::FunctionNotFound, "function x not found");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "function_not_found", "message": "function x not found"}})
        );
    }

    #[test]
    fn as_str_matches_serde_name_and_all_is_in_declaration_order() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, i);
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn timeout_and_trap_have_distinct_statuses() {
        assert_eq!(ErrorCode::Timeout.status(), 504);
        assert_eq!(ErrorCode::Trap.status(), 500);
        assert_ne!(
            ErrorCode::MemoryLimitExceeded.status(),
            ErrorCode::Trap.status()
        );
    }
}
