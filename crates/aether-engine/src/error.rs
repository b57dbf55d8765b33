//! The edge's one error type: every failure becomes the stable JSON body
//! `{"error": {"code", "message"}}` with its status. Failed executions also
//! carry the function's stderr, which its author needs to debug it.

use aether_proto::ErrorCode;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    stderr: Option<String>,
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
    /// An error with a code and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            stderr: None,
        }
    }

    /// Attaches what the function wrote to stderr.
    pub fn with_stderr(mut self, stderr: String) -> Self {
        self.stderr = Some(stderr);
        self
    }

    /// A server-side failure: logged here with its details, answered with a
    /// generic message.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(
            error = %err,
            request_id = aether_http::request_id::current(),
            "{context}"
        );
        ApiError::new(
            ErrorCode::Internal,
            format!("{context}; see the edge's log"),
        )
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
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
        match serde_json::to_vec(&body) {
            Ok(json) => {
                (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an error body");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
