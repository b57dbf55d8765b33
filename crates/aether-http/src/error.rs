//! The one error type both services answer with: the stable JSON body
//! `{"error": {"code", "message", "stderr"?}}`, its status taken from the
//! [`ErrorCode`], and `WWW-Authenticate: Bearer` on a 401 (RFC 6750).

use aether_proto::ErrorCode;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable code; decides the status.
    pub code: ErrorCode,
    /// Human message; never contains internal details.
    pub message: String,
    /// What a failed function wrote to stderr (the edge's failed
    /// executions), so its author can debug it.
    pub stderr: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<&'a str>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            stderr: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// 404 `function_not_found`.
    pub fn function_not_found(name: &str) -> Self {
        Self::new(
            ErrorCode::FunctionNotFound,
            format!("function {name} not found"),
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 500 `internal`: logs `detail` once, with the request's id, and tells
    /// the client only where to look.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(
            error = %detail,
            request_id = crate::request_id::current(),
            "{context}"
        );
        Self::new(
            ErrorCode::Internal,
            format!("internal error while {context}; see the server log"),
        )
    }

    /// Attaches what the function wrote to stderr.
    pub fn with_stderr(mut self, stderr: String) -> Self {
        self.stderr = Some(stderr);
        self
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
        } else {
            ApiError::invalid_request(format!("cannot read the request body: {}", r.body_text()))
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::invalid_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::invalid_request(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                stderr: self.stderr.as_deref(),
            },
        };
        let mut response = match serde_json::to_vec(&body) {
            Ok(json) => {
                (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an error body");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"aether\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_have_the_stable_body_and_the_status_of_their_code() {
        let response = ApiError::new(ErrorCode::Timeout, "too slow")
            .with_stderr("partial".into())
            .into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            body_of(response).await,
            serde_json::json!({"error": {"code": "timeout", "message": "too slow", "stderr": "partial"}})
        );
        let plain = ApiError::function_not_found("f").into_response();
        assert_eq!(
            body_of(plain).await,
            serde_json::json!({"error": {"code": "function_not_found", "message": "function f not found"}})
        );
    }

    #[test]
    fn a_401_names_the_bearer_scheme() {
        let response = ApiError::unauthorized("no token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"aether\""
        );
    }
}
