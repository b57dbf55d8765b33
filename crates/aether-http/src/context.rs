//! The request context both services wrap their whole router in: each
//! request gets an id ([`crate::request_id`]), runs with that id as the
//! current request id and inside a debug-level `request` span, logs its
//! end at debug level and returns the id in the response's `x-request-id`.
//! At the default `info` level the span is never built.
//!
//! A tower service around the router as a whole, not a layer added with
//! `Router::layer` (which wraps every route and boxes the layer's future
//! per request) nor `axum::middleware::from_fn` (which also clones the
//! inner service into a boxed one per request). Disabled (the edge's
//! `--no-telemetry`), it passes requests through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use tracing::Instrument as _;

use crate::request_id::{self, RequestId};

/// `inner` with request ids, the request span and the access line.
#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
    log: Option<&'static dyn RequestLog>,
}

/// Where a service's request span and access line go. A `tracing` target
/// is fixed where its macro is written, so each service implements this
/// in its own crate with [`request_log!`](crate::request_log) and its
/// requests log under `<its crate>::request`
/// (`RUST_LOG=info,aether_engine=debug` turns them on for that service).
pub trait RequestLog: std::fmt::Debug + Send + Sync + 'static {
    /// The debug-level `request` span of one request.
    fn span(&self, id: &RequestId, method: &axum::http::Method, path: &str) -> tracing::Span;
    /// The debug-level line at a request's end.
    fn finished(&self, status: u16, elapsed_ms: f64);
}

/// Defines a unit struct `$name` implementing [`RequestLog`] with the
/// `tracing` target `$target`, e.g.
/// `aether_http::request_log!(EdgeRequests, "aether_engine::request");`.
#[macro_export]
macro_rules! request_log {
    ($(#[$meta:meta])* $vis:vis $name:ident, $target:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;

        impl $crate::context::RequestLog for $name {
            fn span(
                &self,
                id: &$crate::request_id::RequestId,
                method: &::axum::http::Method,
                path: &str,
            ) -> ::tracing::Span {
                ::tracing::debug_span!(target: $target, "request", request_id = %id, method = %method, path)
            }

            fn finished(&self, status: u16, elapsed_ms: f64) {
                ::tracing::debug!(target: $target, status, elapsed_ms, "request finished");
            }
        }
    };
}

impl<S> RequestContext<S> {
    /// Wraps `inner` with the context logged by `log`; `None` passes
    /// requests through as they are (the edge's `--no-telemetry`).
    pub fn new(inner: S, log: Option<&'static dyn RequestLog>) -> Self {
        RequestContext { inner, log }
    }
}

impl<S> tower::Service<Request> for RequestContext<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(log) = self.log else {
            return RequestContextFuture {
                state: Inner::Off {
                    inner: self.inner.call(request),
                },
            };
        };
        let id = RequestId::of(request.headers());
        let span = log.span(&id, request.method(), request.uri().path());
        // Only the debug line reads the start time.
        let started = (!span.is_disabled()).then(Instant::now);
        let inner = request_id::scope(id.clone(), self.inner.call(request)).instrument(span);
        RequestContextFuture {
            state: Inner::On {
                inner,
                id: Some(id),
                started,
                log,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestContext`].
    pub struct RequestContextFuture<F> {
        #[pin]
        state: Inner<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = Projection]
    enum Inner<F> {
        // The router's future in the id's scope and the span; the id until
        // the response carries it; the start (only with debug logging).
        On {
            #[pin]
            inner: tracing::instrument::Instrumented<request_id::Scoped<F>>,
            id: Option<RequestId>,
            started: Option<Instant>,
            log: &'static dyn RequestLog,
        },
        // Passed through.
        Off {
            #[pin]
            inner: F,
        },
    }
}

impl<F, E> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut inner, id, started, log) = match self.project().state.project() {
            Projection::Off { inner } => return inner.poll(cx),
            Projection::On {
                inner,
                id,
                started,
                log,
            } => (inner, id, started, *log),
        };
        let mut response = match inner.as_mut().poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(started) = started {
            let status = response.status().as_u16();
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            inner.span().in_scope(|| {
                log.finished(status, elapsed_ms);
            });
        }
        if let Some(id) = id.take() {
            response
                .headers_mut()
                .insert(request_id::REQUEST_ID, id.header_value());
        }
        Poll::Ready(Ok(response))
    }
}
