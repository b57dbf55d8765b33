//! Request ids: every request gets one (the client's `x-request-id` when it
//! is a short printable token, else a generated one), returned in the
//! response header, sent along with events and written in log lines.
//!
//! Log lines name the id in two ways, so the common case costs nothing:
//! each service wraps a request in a **debug-level** `request` span with
//! the id (at the default `info` level the span is never created, which
//! took 13–21 % of hello_world throughput when it was info-level), and the
//! id is also kept as the task's current id ([`scope`], [`current_id`]),
//! which the few lines a request can cause at info level and above (server
//! errors) add as their own `request_id` field.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderName, HeaderValue};

/// The request id header, read from clients and set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept; longer or non-printable ones
/// are replaced by a generated id (ids end up in log lines and events).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Length of a generated id: 32 lowercase hex digits.
pub const GENERATED_LEN: usize = 32;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request's id: the client's `x-request-id`, or one generated here.
/// A generated id is kept as its counter value, so taking one, scoping it
/// and cloning it allocate nothing; its text (and header value) is made
/// only when a log line, an event or the response needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Client(HeaderValue),
    Generated(u64),
}

impl RequestId {
    /// The request's id: the client's `x-request-id` when [`acceptable`],
    /// else a new one.
    pub fn of(headers: &axum::http::HeaderMap) -> RequestId {
        match headers.get(REQUEST_ID) {
            Some(v) if acceptable(v) => RequestId(Repr::Client(v.clone())),
            _ => RequestId::generate(),
        }
    }

    /// The client's id from `headers`, when it sent an [`acceptable`] one.
    pub fn from_client(headers: &axum::http::HeaderMap) -> Option<RequestId> {
        headers
            .get(REQUEST_ID)
            .filter(|v| acceptable(v))
            .map(|v| RequestId(Repr::Client(v.clone())))
    }

    /// A new id: 16 hex digits drawn at random once per process, then a
    /// 16-digit counter (unique in the process, rising per thread). Unique across restarts and nodes (64 random bits
    /// per process) without a random draw, a syscall or an allocation per
    /// request.
    pub fn generate() -> RequestId {
        // Each thread takes counter values in blocks, so the threads of a
        // busy server do not all bump one shared cache line per request.
        const BLOCK: u64 = 1024;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            // The next value and the end of this thread's block.
            static NEXT: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        let n = NEXT.with(|next| {
            let (mut n, mut end) = next.get();
            if n == end {
                n = COUNTER.fetch_add(BLOCK, Ordering::Relaxed);
                end = n + BLOCK;
            }
            next.set((n + 1, end));
            n
        });
        RequestId(Repr::Generated(n))
    }

    /// The id as an `x-request-id` value.
    pub fn header_value(&self) -> HeaderValue {
        match &self.0 {
            Repr::Client(v) => v.clone(),
            Repr::Generated(n) => HeaderValue::from_bytes(&generated_text(*n))
                .expect("hex digits are a valid header value"),
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            // Acceptable client ids are visible ASCII.
            Repr::Client(v) => f.write_str(v.to_str().unwrap_or_default()),
            Repr::Generated(n) => {
                let text = generated_text(*n);
                f.write_str(std::str::from_utf8(&text).unwrap_or_default())
            }
        }
    }
}

/// A client-supplied id is kept when it is 1..=128 visible ASCII bytes.
pub fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The text of generated id number `n`: the process prefix, then `n`.
fn generated_text(n: u64) -> [u8; GENERATED_LEN] {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut buf = [0u8; GENERATED_LEN];
    hex_into(&mut buf[..16], prefix);
    hex_into(&mut buf[16..], n);
    buf
}

fn hex_into(out: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        let shift = 60 - 4 * i;
        *byte = DIGITS[((value >> shift) & 0xf) as usize];
    }
}

/// Runs `future` with `id` as the current request id.
pub fn scope<F: Future>(id: RequestId, future: F) -> Scoped<F> {
    CURRENT.scope(id, future)
}

/// A future running with a current request id (from [`scope`]).
pub type Scoped<F> = tokio::task::futures::TaskLocalFuture<RequestId, F>;

/// The current request's id, for work a request hands to another task;
/// `None` outside a request.
pub fn current_id() -> Option<RequestId> {
    CURRENT.try_with(RequestId::clone).ok()
}

/// The current request's id as text, for the `request_id` field of a log
/// line at info level or above or of an event; `None` outside a request.
pub fn current() -> Option<String> {
    CURRENT.try_with(RequestId::to_string).ok()
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
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("a b"));
        assert_eq!(RequestId::from_client(&headers), None);
        let id = RequestId::of(&headers);
        assert_eq!(id.to_string().len(), GENERATED_LEN, "replaced: {id}");
        assert_eq!(id.header_value(), id.to_string().as_str());
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::of(&headers).to_string(), "abc-123");
        assert_eq!(RequestId::of(&headers).header_value(), "abc-123");
    }

    #[test]
    fn generated_ids_are_distinct_hex_with_one_process_prefix() {
        // Several threads, each past the end of its first block.
        let ids: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..2500)
                            .map(|_| RequestId::generate().to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
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
    async fn the_current_id_follows_the_scope_into_handed_off_tasks() {
        assert_eq!(current(), None);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("req-7"));
        let id = RequestId::of(&headers);
        let (inside, carried) = scope(id, async {
            let inside = current();
            let handed = current_id();
            let carried = tokio::spawn(async move {
                let outside = current();
                let again = match handed {
                    Some(id) => scope(id, async { current() }).await,
                    None => None,
                };
                (outside, again)
            })
            .await
            .unwrap();
            (inside, carried)
        })
        .await;
        assert_eq!(inside.as_deref(), Some("req-7"));
        assert_eq!(
            carried,
            (None, Some("req-7".to_owned())),
            "a new task starts without; current_id carries it"
        );
        assert_eq!(current(), None, "gone after the scope");
    }
}
