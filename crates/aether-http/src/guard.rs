//! Checks of a request body before a handler reads it: the JSON
//! content-type guard and the early 413 from a declared `Content-Length`.

use aether_proto::ErrorCode;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::error::ApiError;

/// What [`require_json`] does with a request that names no content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingContentType {
    /// Taken as JSON (the edge's `POST /execute`: scripts send bare
    /// bodies).
    Allowed,
    /// Refused with 415 (the control plane's management API).
    Refused,
}

/// The media type of a request without its parameters, lowercased.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// Requires a JSON content type (`application/json` or `…+json`, RFC 6839),
/// else 415 `unsupported_media_type`.
pub fn require_json(headers: &HeaderMap, missing: MissingContentType) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(t) if t == "application/json" || t.ends_with("+json") => Ok(()),
        None if missing == MissingContentType::Allowed
            && !headers.contains_key(header::CONTENT_TYPE) =>
        {
            Ok(())
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "expected Content-Type: application/json, got {}",
                other.as_deref().unwrap_or("none")
            ),
        )),
    }
}

/// The request's declared `Content-Length`, if it has a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Middleware (`from_fn_with_state(limit, reject_oversized)`): answers 413
/// at once to a request whose declared `Content-Length` is over `limit`,
/// instead of reading a body it would refuse anyway. Bodies without a
/// length are cut off while streaming by `DefaultBodyLimit`; either 413
/// gets `Connection: close` from [`crate::serve`].
pub async fn reject_oversized(State(limit): State<u64>, request: Request, next: Next) -> Response {
    match declared_length(request.headers()) {
        Some(len) if len > limit => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body of {len} bytes is larger than the limit of {limit}"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_type(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn json_and_json_suffixes_pass_whatever_their_case_and_parameters() {
        for value in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            require_json(&with_type(value), MissingContentType::Refused).unwrap();
        }
        for value in ["text/plain", "application/x-www-form-urlencoded", ""] {
            let err = require_json(&with_type(value), MissingContentType::Allowed).unwrap_err();
            assert_eq!(err.code, ErrorCode::UnsupportedMediaType, "{value}");
        }
    }

    #[test]
    fn a_missing_content_type_is_refused_only_where_asked() {
        require_json(&HeaderMap::new(), MissingContentType::Allowed).unwrap();
        let err = require_json(&HeaderMap::new(), MissingContentType::Refused).unwrap_err();
        assert!(err.message.contains("none"), "{err}");
    }
}
