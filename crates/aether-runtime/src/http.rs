//! `wasi:http/proxy` components: one HTTP request handled by a fresh
//! instance, with its request body streamed in (cut at the input limit),
//! its response body streamed out (cut at the output limit) and its
//! outbound requests checked against the function's allow-list.
//!
//! [`Runtime::http_call`] splits a call in two: the guest, a future the
//! caller runs where it runs guests (it must keep running after the
//! response head is out, while the guest writes the body), and the
//! response, which arrives when the guest sets it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime::{Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::component::ComponentState;
use crate::config::Limits;
use crate::egress::{EgressPolicy, EgressUsage, OutboundCounts};
use crate::error::{Failure, InvokeError};
use crate::host::{MemoryLimiter, deadline_after};
use crate::output::BoundedOutput;
use crate::poll::InvocationClock;
use crate::runtime::{Linked, LoadedModule, Runtime, classify};
use crate::sandbox;

/// One HTTP request to a `wasi:http` component.
pub struct HttpInvocation<'a, B> {
    /// Deployed environment.
    pub env: &'a [(String, String)],
    /// The request as the component sees it: its URI holds the path and
    /// query the function sees, and an authority.
    pub request: http::Request<B>,
    /// `https` when the client came over TLS.
    pub https: bool,
    /// Limits of this call: the timeout, memory, the response body
    /// (`max_stdout_bytes`) and stderr.
    pub limits: Limits,
    /// Most request body bytes the guest may read; past them its read
    /// fails (the caller answers 413 before calling when the declared
    /// length is larger).
    pub max_request_body: u64,
    /// Where its outbound requests may go.
    pub egress: Arc<EgressPolicy>,
}

/// A call in flight: run [`HttpCall::guest`] to completion, and await
/// [`HttpCall::response`] for the response head.
pub struct HttpCall {
    /// The guest; it sets the response, then may go on writing the body.
    pub guest: Pin<Box<dyn Future<Output = HttpOutcome> + Send>>,
    /// The response, once the guest sets it.
    pub response: ResponseReceiver,
}

/// How a guest ended.
#[derive(Debug)]
pub struct HttpOutcome {
    /// `Ok` when the handler returned; the failure otherwise.
    pub result: Result<(), Failure>,
    /// Instantiation plus run.
    pub elapsed: Duration,
    /// Peak linear memory in bytes.
    pub peak_memory_bytes: u64,
    /// Captured stderr (bounded).
    pub stderr: Bytes,
    /// Outbound requests sent, refused and response bytes received.
    pub outbound: OutboundCounts,
    /// The guest set a response (so a failure came after the head was
    /// handed on: the client sees a broken body, not an error answer).
    pub responded: bool,
}

/// Where the response head arrives.
pub struct ResponseReceiver {
    rx: tokio::sync::oneshot::Receiver<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
    max_body: usize,
    cut: Arc<AtomicBool>,
    guest_failed: Arc<AtomicBool>,
}

/// What the guest answered.
pub enum GuestResponse {
    /// A response, with its body still streaming from the guest.
    Response(http::Response<ResponseBody>),
    /// The guest set an error instead of a response.
    Error(String),
    /// The guest ended (returned, trapped, timed out) without setting one;
    /// the guest's outcome says why.
    None,
}

impl ResponseReceiver {
    /// Waits for the guest to set its response.
    pub async fn recv(self) -> GuestResponse {
        match self.rx.await {
            Ok(Ok(response)) => {
                let (max, cut, guest_failed) = (self.max_body, self.cut, self.guest_failed);
                GuestResponse::Response(response.map(|body| ResponseBody {
                    inner: body,
                    sent: 0,
                    max,
                    cut,
                    guest_failed,
                }))
            }
            Ok(Err(code)) => GuestResponse::Error(format!("{code:?}")),
            Err(_) => GuestResponse::None,
        }
    }

    /// A flag set when the response body was cut at the output limit.
    pub fn cut_flag(&self) -> Arc<AtomicBool> {
        self.cut.clone()
    }
}

/// The response body a guest writes, passed on as it comes and cut at the
/// output limit: past it the body ends with an error, so the client sees
/// a broken transfer (the connection closed), never a short body that
/// looks complete. The same when the guest fails (traps, runs out of
/// memory or time) before finishing its body.
pub struct ResponseBody {
    inner: HyperOutgoingBody,
    sent: usize,
    max: usize,
    cut: Arc<AtomicBool>,
    guest_failed: Arc<AtomicBool>,
}

/// Why a response body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Over the output limit.
    #[error("response body exceeded the output limit of {limit} bytes")]
    OutputLimit {
        /// The limit.
        limit: usize,
    },
    /// The guest's body failed (it trapped or timed out mid-body).
    #[error("the function's response body failed: {0}")]
    Guest(String),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.cut.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            // wasmtime-wasi-http ends the body cleanly, as if the guest had
            // finished it, when the guest's store is dropped with the body
            // unfinished (its finish channel closes without a message): a
            // guest stopped mid-body by a trap, the memory limit or the time
            // limit looked like a complete short response (found by the
            // hostile suite's `http::memory_growth_while_streaming_…`).
            // The guest marks its failure before its store is dropped
            // ([`CallStore`]). A guest that finished its body and failed
            // only afterwards may be cut here too if the body's end was not
            // read yet: failing closed.
            Poll::Ready(None) if self.guest_failed.load(Ordering::Acquire) => {
                return Poll::Ready(Some(Err(BodyError::Guest(
                    "the function failed before finishing its response body".into(),
                ))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Some(Err(BodyError::Guest(e.to_string()))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            self.sent = self.sent.saturating_add(data.len());
            if self.sent > self.max {
                self.cut.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(BodyError::OutputLimit { limit: self.max })));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The store of one call. Dropped before the guest returned from its
/// handler (it failed, or the call was dropped), it marks the call failed
/// before the store goes, so [`ResponseBody`] sees an unfinished body as
/// broken rather than complete.
struct CallStore {
    store: Store<ComponentState>,
    guest_failed: Arc<AtomicBool>,
    returned: bool,
}

impl Drop for CallStore {
    fn drop(&mut self) {
        if !self.returned {
            self.guest_failed.store(true, Ordering::Release);
        }
        // Then the fields, the store among them.
    }
}

/// The request body handed to the guest: passed on as it comes, failing
/// with `HttpRequestBodySize` past `max` bytes.
struct RequestBody<B> {
    inner: B,
    read: u64,
    max: u64,
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(
                    format!("reading the request body: {e}"),
                )))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            self.read = self.read.saturating_add(data.len() as u64);
            if self.read > self.max {
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    Some(self.max),
                ))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Runtime {
    /// Prepares one HTTP request to a `wasi:http` component: a fresh store
    /// with the request and the response slot in it. Nothing of the guest
    /// runs until [`HttpCall::guest`] is polled. Fails with
    /// [`InvokeError::NotCallable`] for a module or command component.
    pub fn http_call<B>(
        &self,
        module: &LoadedModule,
        invocation: HttpInvocation<'_, B>,
    ) -> Result<HttpCall, Failure>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let Linked::Http(pre) = module.linked() else {
            return Err(Failure {
                error: InvokeError::NotCallable {
                    message: "it is a command, not a wasi:http component; call it with POST /execute (a preview-1 module is also served CGI style on /fn)".into(),
                },
                stderr: Bytes::new(),
                elapsed: Duration::ZERO,
            });
        };
        let limits = invocation.limits;
        let memory_limit = limits.memory_bytes.min(self.config().max_memory_limit);
        let stderr = BoundedOutput::new(limits.max_stderr_bytes);
        let clock_origin = Instant::now();
        let mut wasi = WasiCtxBuilder::new();
        wasi.monotonic_clock(InvocationClock {
            origin: clock_origin,
        })
        // stdout is not the response: kept bounded like stderr and dropped.
        .stdout(BoundedOutput::new(limits.max_stderr_bytes))
        .stderr(stderr.clone())
        .envs(invocation.env);
        wasi.max_random_size(memory_limit);
        sandbox::deny_network(&mut wasi);
        let usage = Arc::new(EgressUsage::default());
        let deadline = deadline_after(clock_origin, limits.timeout);
        let state = ComponentState::new(
            wasi.build(),
            MemoryLimiter::for_component(memory_limit),
            deadline,
            invocation.egress,
            usage.clone(),
        );
        let mut store = self.guarded_store(state);
        let internal = |e: wasmtime::Error| Failure {
            error: InvokeError::Instantiate {
                message: format!("{e:#}"),
            },
            stderr: Bytes::new(),
            elapsed: Duration::ZERO,
        };
        let request = invocation.request.map(|body| RequestBody {
            inner: body,
            read: 0,
            max: invocation.max_request_body,
        });
        let scheme = if invocation.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut view = store.data_mut().http();
        let request = view
            .new_incoming_request(scheme, request.map(|b| b.boxed_unsync()))
            .map_err(internal)?;
        let responded = Arc::new(AtomicBool::new(false));
        let set = responded.clone();
        let out = view
            .new_response_outparam_from_callback(move |response| {
                set.store(response.is_ok(), Ordering::Release);
                // The receiver is gone when the client went away.
                let _ = tx.send(response);
            })
            .map_err(internal)?;
        let pre = pre.clone();
        let guest_failed = Arc::new(AtomicBool::new(false));
        let mut call = CallStore {
            store,
            guest_failed: guest_failed.clone(),
            returned: false,
        };
        let guest = async move {
            let started = Instant::now();
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut call.store)
                    .await
                    .map_err(|e| (e, true))?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut call.store, request, out)
                    .await
                    .map_err(|e| (e, false))
            };
            // Epoch interruption stops wasm code, not a host call: a guest
            // blocked in one (an hour's sleep on a wasi:clocks pollable, a
            // read of a request body whose client stalls, a write its
            // client never reads) outlived its time limit, holding its
            // execution slot (found by the hostile suite's `http::` tests).
            // The deadline also bounds the call in wall-clock time;
            // dropping the call stops the guest.
            let result = tokio::time::timeout_at(deadline.into(), run)
                .await
                .unwrap_or_else(|_| Err((wasmtime::Error::new(Trap::Interrupt), false)));
            let elapsed = started.elapsed();
            let limiter = &call.store.data().limiter;
            let (peak, memory_hit) = (limiter.peak as u64, limiter.hit);
            // Dropping the store drops the response slot if the guest
            // never set it: the receiver then sees `None`.
            call.returned = result.is_ok();
            drop(call);
            let (stderr, _) = stderr.take();
            let result = result.map_err(|(e, instantiating)| Failure {
                error: classify(&e, instantiating, memory_hit, memory_limit, limits),
                stderr: stderr.clone(),
                elapsed,
            });
            HttpOutcome {
                result,
                elapsed,
                peak_memory_bytes: peak,
                stderr,
                outbound: usage.counts(),
                responded: responded.load(Ordering::Acquire),
            }
        };
        Ok(HttpCall {
            guest: Box::pin(guest),
            response: ResponseReceiver {
                rx,
                max_body: limits.max_stdout_bytes,
                cut: Arc::default(),
                guest_failed,
            },
        })
    }
}
