//! Request ids: every request gets one (the client's `x-request-id` when it
//! is a short printable token, else a generated one), returned in the
//! response header, sent along with events and written in log lines.
//!
//! Log lines name the id in two ways, so the common case costs nothing:
//! each service wraps a request in a **debug-level** `request` span with
//! the id (at the default `info` level the span is never created, which
//! took 13–21 % of hello_world throughput when it was info-level), and the
//! id is also kept as the task's current id ([`scope`], [`sync_scope`]),
//! which the few lines a request can cause at info level and above (server
//! errors) add as their own `request_id` field.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};

/// The request id header, read from clients and set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept; longer or non-printable ones
/// are replaced by a generated id (ids end up in log lines and events).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Length of a generated id: 32 lowercase hex digits.
pub const GENERATED_LEN: usize = 32;

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// A client-supplied id is kept when it is 1..=128 visible ASCII bytes.
pub fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A new id: 16 hex digits drawn at random once per process, then a
/// 16-digit counter. Unique across restarts and nodes (64 random bits per
/// process) without a random draw, a syscall or an allocation per request.
pub fn generate() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; GENERATED_LEN];
    hex_into(&mut buf[..16], prefix);
    hex_into(&mut buf[16..], n);
    HeaderValue::from_bytes(&buf).expect("hex digits are a valid header value")
}

fn hex_into(out: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        let shift = 60 - 4 * i;
        *byte = DIGITS[((value >> shift) & 0xf) as usize];
    }
}

/// The request's id: the client's when [`acceptable`], else a new one,
/// which is also written into the request's headers so handlers see it.
pub fn take_or_generate(request: &mut Request) -> HeaderValue {
    match request.headers().get(REQUEST_ID) {
        Some(v) if acceptable(v) => v.clone(),
        _ => {
            let id = generate();
            request.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    }
}

/// The id of a request that went through a service's middleware, from its
/// headers.
pub fn of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok())
}

/// Runs `future` with `id` as the current request id.
pub fn scope<F: Future>(id: HeaderValue, future: F) -> Scoped<F> {
    CURRENT.scope(id, future)
}

/// A future running with a current request id (from [`scope`]).
pub type Scoped<F> = tokio::task::futures::TaskLocalFuture<HeaderValue, F>;

/// Runs blocking `f` with `id` (when there is one) as the current request
/// id: for work a request hands to another thread.
pub fn sync_scope<R>(id: Option<HeaderValue>, f: impl FnOnce() -> R) -> R {
    match id {
        Some(id) => CURRENT.sync_scope(id, f),
        None => f(),
    }
}

/// The current request's id, for the `request_id` field of a log line at
/// info level or above; `None` outside a request.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|id| id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_only_when_short_and_printable() {
        assert!(acceptable(&HeaderValue::from_static("abc-123")));
        assert!(!acceptable(&HeaderValue::from_static("")));
        assert!(!acceptable(&HeaderValue::from_static("a b")));
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(!acceptable(&HeaderValue::from_str(&long).unwrap()));
        let mut request = Request::new(axum::body::Body::empty());
        request
            .headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("a b"));
        let id = take_or_generate(&mut request);
        assert_eq!(id.len(), GENERATED_LEN);
        assert_eq!(request.headers()[REQUEST_ID], id, "replaced in the request");
    }

    #[test]
    fn generated_ids_are_distinct_hex_with_one_process_prefix() {
        let ids: Vec<String> = (0..1000)
            .map(|_| generate().to_str().unwrap().to_owned())
            .collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), GENERATED_LEN);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(id[..16], ids[0][..16]);
        }
    }

    #[tokio::test]
    async fn the_current_id_follows_the_scope_across_threads() {
        assert_eq!(current(), None);
        let id = HeaderValue::from_static("req-7");
        let (inside, on_thread) = scope(id.clone(), async {
            let inside = current();
            let carried = tokio::task::spawn_blocking({
                let id = Some(id.clone());
                move || sync_scope(id, current)
            })
            .await
            .unwrap();
            (inside, carried)
        })
        .await;
        assert_eq!(inside.as_deref(), Some("req-7"));
        assert_eq!(on_thread.as_deref(), Some("req-7"));
        assert_eq!(current(), None, "gone after the scope");
    }
}
