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
    service: Option<Service>,
}

/// Whose requests: the span and the access line are logged under the
/// service's crate (`aether_engine::request`, `aether_control::request`),
/// so `RUST_LOG=info,aether_engine=debug` turns them on for that service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The edge (`aether-engine`).
    Edge,
    /// The control plane (`aether-control`).
    Control,
}

impl<S> RequestContext<S> {
    /// Wraps `inner` with the context of `service`; `None` passes requests
    /// through as they are (the edge's `--no-telemetry`).
    pub fn new(inner: S, service: Option<Service>) -> Self {
        RequestContext { inner, service }
    }
}

/// A debug-level span or event under the target of `$service`.
macro_rules! under {
    ($service:expr, $macro:ident!($($args:tt)*)) => {
        match $service {
            Service::Edge => tracing::$macro!(target: "aether_engine::request", $($args)*),
            Service::Control => tracing::$macro!(target: "aether_control::request", $($args)*),
        }
    };
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
        let Some(service) = self.service else {
            return RequestContextFuture {
                state: Inner::Off {
                    inner: self.inner.call(request),
                },
            };
        };
        let id = RequestId::of(request.headers());
        let span = under!(
            service,
            debug_span!(
                "request",
                request_id = %id,
                method = %request.method(),
                path = request.uri().path(),
            )
        );
        // Only the debug line reads the start time.
        let started = (!span.is_disabled()).then(Instant::now);
        let inner = request_id::scope(id.clone(), self.inner.call(request)).instrument(span);
        RequestContextFuture {
            state: Inner::On {
                inner,
                id: Some(id),
                started,
                service,
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
            service: Service,
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
        let (mut inner, id, started, service) = match self.project().state.project() {
            Projection::Off { inner } => return inner.poll(cx),
            Projection::On {
                inner,
                id,
                started,
                service,
            } => (inner, id, started, *service),
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
                under!(service, debug!(status, elapsed_ms, "request finished"));
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
