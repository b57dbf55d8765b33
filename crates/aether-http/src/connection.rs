//! The accept loop: HTTP/1 connections served by hyper with time limits
//! for slow clients, and graceful shutdown. `axum::serve` sets no timer, so
//! a client trickling its headers or body held a connection (and its task
//! and buffers) forever; here the headers must arrive within
//! [`HEADER_READ_TIMEOUT`] and the whole body within the deadline each
//! service passes to [`serve`] (the edge's inputs are small, the control
//! plane's module uploads large). At most [`ServeOptions::max_connections`]
//! connections are open at once; beyond that, new ones wait in the
//! kernel's listen backlog until one closes, so memory and file
//! descriptors stay bounded however many clients connect. With
//! [`ServeOptions::tls`] every connection is HTTPS: the handshake runs in
//! the connection's own task, within [`HANDSHAKE_TIMEOUT`], and the
//! certificate files are watched for renewals.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt as _;

use crate::tls::ServerTls;

/// Time hyper allows for a request's headers, counted from the moment the
/// connection is ready for a request, so it is also the idle keep-alive
/// timeout. Real clients send headers in one packet; 30 s (hyper's own
/// default) stays well above the edges' 10 s heartbeat and reconcile
/// intervals, so a pooled connection is not closed just as it is reused.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default limit of open connections per server. An idle HTTP/1
/// connection costs a task and its buffers (the 1 500-connection flood of
/// the hostile suite took ≈ 130 MB with its client); 10 000 bounds that
/// while staying far above what a 2-core edge serves at once. A process
/// whose file-descriptor limit is lower runs out of descriptors first;
/// then `accept` fails and the loop backs off (logged).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Time a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often reaching the connection limit is logged at most.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Limits of [`serve`], and its TLS.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time from the end of a request's headers to the end of its body.
    pub body_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Serve HTTPS with this certificate (plain HTTP without).
    pub tls: Option<ServerTls>,
    /// How often the certificate files are looked at for a renewal.
    pub tls_reload_interval: Duration,
}

impl ServeOptions {
    /// `body_timeout` with the default connection limit, plain HTTP.
    pub fn new(body_timeout: Duration) -> Self {
        ServeOptions {
            body_timeout,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls: None,
            tls_reload_interval: crate::tls::DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// The same, over HTTPS when `tls` is given.
    pub fn with_tls(mut self, tls: Option<ServerTls>) -> Self {
        self.tls = tls;
        self
    }
}

/// Serves `service` (a router, possibly wrapped in a
/// [`RequestContext`](crate::RequestContext)) on `listener` until
/// `shutdown` resolves, then stops accepting and waits for open
/// connections to finish their requests.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let body_timeout = options.body_timeout;
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut limit_logged: Option<Instant> = None;
    let reloader = options
        .tls
        .clone()
        .map(|tls| tokio::spawn(tls.watch(options.tls_reload_interval)));
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if limit_logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL) {
                    tracing::warn!(
                        limit = options.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                    limit_logged = Some(Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break, // never closed
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // accept: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            service: service.clone(),
            body_timeout,
        };
        let watcher = graceful.watcher();
        let tls = options.tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(tls) = tls else {
                return serve_io(stream, connection, watcher).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
                Ok(Ok(stream)) => serve_io(stream, connection, watcher).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    graceful.shutdown().await;
    Ok(())
}

/// Serves HTTP/1 requests on one connection (plain or TLS) until it
/// closes or a graceful shutdown ends it.
async fn serve_io<I, S>(io: I, connection: Connection<S>, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), connection);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The request body took longer than its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
struct BodyTimeout(Duration);

/// The hyper service of one connection: gives each request body its
/// deadline and hands the request to `service`.
struct Connection<S> {
    service: S,
    body_timeout: Duration,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for Connection<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        tower::util::Oneshot<tower::util::MapResponse<S, fn(Response) -> Response>, Request>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let timeout = self.body_timeout;
        let request = request.map(|body| Body::new(DeadlineBody::new(body, timeout)));
        let close_after_413: fn(Response) -> Response = close_after_413;
        self.service
            .clone()
            .map_response(close_after_413)
            .oneshot(request)
    }
}

/// A request body that fails once its deadline passes. The deadline is
/// fixed when the headers are in, but the timer is only set up the first
/// time the body is not ready at once: a small body read in one go (most
/// requests) never touches the timer wheel.
struct DeadlineBody {
    inner: Incoming,
    timeout: Duration,
    deadline: tokio::time::Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
            timer: None,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            let timeout = self.timeout;
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Adds `Connection: close` to a 413. A body refused as too large is, as a
/// rule, not read to its end (refused from its declared length, or cut off
/// while streaming), and hyper closes a connection with an unread body on
/// it; without the header a client may reuse that connection for its next
/// request and find it closed mid-write (seen as a broken pipe in reqwest).
fn close_after_413(mut response: Response) -> Response {
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}
