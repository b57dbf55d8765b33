//! Bounded in-memory stdout/stderr. Unlike wasmtime-wasi's
//! `MemoryOutputPipe` (which makes further writes fail with an I/O error a
//! guest may ignore and loop on until its timeout), a write past the limit
//! traps the guest at once, so an output flood costs microseconds, not the
//! whole time limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Largest write permit handed to the guest at once; p1's `fd_write` works
/// in 4 KiB chunks anyway.
const MAX_PERMIT: usize = 64 << 10;

/// Marker error carried by the trap of a write beyond the limit.
#[derive(Debug, thiserror::Error)]
#[error("output limit of {limit} bytes exceeded")]
pub(crate) struct OutputLimitTrap {
    pub(crate) limit: usize,
}

#[derive(Debug, Default)]
struct State {
    buf: BytesMut,
    overflowed: bool,
}

/// A capped output buffer shared between the WASI context and the host.
#[derive(Debug, Clone)]
pub(crate) struct BoundedOutput {
    limit: usize,
    state: Arc<Mutex<State>>,
}

impl BoundedOutput {
    pub(crate) fn new(limit: usize) -> Self {
        BoundedOutput {
            limit,
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere while holding it; the
        // buffer itself is still consistent (appends are single calls).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends what fits; returns false when `data` did not fit entirely.
    fn append(&self, data: &[u8]) -> bool {
        let mut state = self.lock();
        let room = self.limit - state.buf.len();
        if data.len() > room {
            state.buf.extend_from_slice(&data[..room]);
            state.overflowed = true;
            false
        } else {
            state.buf.extend_from_slice(data);
            true
        }
    }

    /// What was captured (at most the limit) and whether more was attempted.
    pub(crate) fn take(&self) -> (Bytes, bool) {
        let mut state = self.lock();
        let overflowed = state.overflowed;
        (std::mem::take(&mut state.buf).freeze(), overflowed)
    }
}

impl IsTerminal for BoundedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for BoundedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if self.append(&bytes) {
            Ok(())
        } else {
            Err(StreamError::Trap(wasmtime::Error::new(OutputLimitTrap {
                limit: self.limit,
            })))
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(MAX_PERMIT)
    }
}

impl tokio::io::AsyncWrite for BoundedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.append(buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(std::io::Error::other(OutputLimitTrap {
                limit: self.limit,
            })))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
