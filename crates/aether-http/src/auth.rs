//! Bearer tokens (RFC 6750): reading `Authorization: Bearer <token>` (the
//! scheme is case-insensitive, RFC 7235 §2.1) and comparing tokens in
//! constant time. Tokens are kept and compared as sha256 digests, so
//! neither their contents nor their length leak through timing, and they
//! are never logged.

use aether_proto::ErrorCode;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::ApiError;

/// The token of a request's `Authorization: Bearer` header, or the 401
/// that explains what is missing or malformed.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing bearer token (Authorization: Bearer <token>)",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "malformed Authorization header; expected `Bearer <token>`",
            )
        })
}

/// A configured token, kept only as its digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 32]);

/// A new random secret: 32 bytes from the operating system's CSPRNG, as
/// 64 hex characters.
pub fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// The digest of `secret`.
    pub fn new(secret: &Secret) -> Self {
        Token(Sha256::digest(secret.expose()).into())
    }

    /// The digest as hex, to store instead of the secret.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A token from a digest stored with [`Token::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut digest = [0u8; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Token(digest))
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        !presented.is_empty() && bool::from(self.0.ct_eq(&digest))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_must_be_there() {
        for value in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            assert_eq!(bearer_token(&headers(value)).unwrap(), "s3cret", "{value}");
        }
        for value in ["Bearer ", "Basic s3cret", "Bearers3cret"] {
            let err = bearer_token(&headers(value)).unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized, "{value}");
        }
        let err = bearer_token(&HeaderMap::new()).unwrap_err();
        assert!(err.message.contains("missing"), "{err}");
    }

    #[test]
    fn only_the_exact_token_matches() {
        let token = Token::new(&Secret::new("s3cret").unwrap());
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches(""));
        assert!(!token.matches(&"x".repeat(100_000)));
        assert_eq!(format!("{token:?}"), "Token(***)");
    }
}
