//! Event reporting to the control plane: a bounded buffer filled from the
//! request path with `try_send` (never waits), drained by a background task
//! that posts batches to `POST /callback`. When the buffer is full or the
//! control plane is down, events are dropped and counted: execution never
//! waits for reporting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aether_proto::control::{EventIn, EventReport};
use tokio::sync::mpsc;

use crate::control::ControlClient;

/// Events buffered before new ones are dropped.
pub const EVENT_BUFFER: usize = 10_000;
/// Events per `POST /callback` (the control plane accepts up to 1000).
pub const MAX_BATCH: usize = 500;
/// Longest wait before a partial batch is sent.
pub const BATCH_DELAY: Duration = Duration::from_millis(500);
/// Bytes of a failed function's stderr included in its event.
pub const MAX_EVENT_STDERR: usize = 4096;

/// The sending side, held by the request path (cheap to clone).
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Option<mpsc::Sender<EventIn>>,
    node_id: Arc<str>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink that discards everything (standalone mode: no control plane).
    pub fn disabled(node_id: &str) -> Self {
        EventSink {
            tx: None,
            node_id: node_id.into(),
            dropped: Arc::default(),
        }
    }

    /// A sink and the receiver its reporter drains.
    pub fn channel(node_id: &str) -> (Self, mpsc::Receiver<EventIn>) {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        (
            EventSink {
                tx: Some(tx),
                node_id: node_id.into(),
                dropped: Arc::default(),
            },
            rx,
        )
    }

    /// Queues an event; `data` gets this edge's `node_id`. Never blocks.
    pub fn emit(&self, event: &str, mut data: serde_json::Value) {
        let Some(tx) = &self.tx else { return };
        if let Some(obj) = data.as_object_mut() {
            obj.insert("node_id".into(), self.node_id.as_ref().into());
        }
        let event = EventIn {
            event: event.to_owned(),
            data,
        };
        if tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues an event of one of the kinds `aether-proto` defines.
    pub fn report<R: EventReport>(&self, report: &R) {
        if self.tx.is_none() {
            return;
        }
        match serde_json::to_value(report) {
            Ok(data) => self.emit(R::EVENT, data),
            Err(e) => tracing::error!(error = %e, event = R::EVENT, "cannot serialise an event"),
        }
    }

    /// Events dropped so far (buffer full or control plane unreachable).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn count_dropped(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Drains `rx` into batches posted to the control plane, until every sender
/// is gone.
pub async fn report(sink: EventSink, mut rx: mpsc::Receiver<EventIn>, client: ControlClient) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut failing = false;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Give a burst a moment to fill the batch.
        let deadline = tokio::time::Instant::now() + BATCH_DELAY;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(e)) => batch.push(e),
                Ok(None) | Err(_) => break,
            }
        }
        match client.post_events(&batch).await {
            Ok(()) => {
                if failing {
                    tracing::info!("event reporting to the control plane works again");
                    failing = false;
                }
            }
            Err(e) => {
                sink.count_dropped(batch.len());
                if !failing {
                    // Unreachable: the heartbeat has said so already.
                    if e.is_unreachable() {
                        tracing::debug!(error = %e, "cannot report events; dropping them until the control plane answers");
                    } else {
                        tracing::warn!(error = %e, "cannot report events; dropping them until the control plane answers");
                    }
                    failing = true;
                }
            }
        }
        batch.clear();
    }
}

/// Truncates stderr for an event.
pub fn stderr_excerpt(stderr: &str) -> &str {
    if stderr.len() <= MAX_EVENT_STDERR {
        return stderr;
    }
    let mut end = MAX_EVENT_STDERR;
    while !stderr.is_char_boundary(end) {
        end -= 1;
    }
    &stderr[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_drops_and_counts_instead_of_blocking() {
        let (sink, _rx) = EventSink::channel("edge-1");
        for _ in 0..EVENT_BUFFER + 5 {
            sink.emit("x", serde_json::json!({}));
        }
        assert_eq!(sink.dropped(), 5);
        EventSink::disabled("e").emit("x", serde_json::json!({}));
    }

    #[test]
    fn stderr_excerpt_respects_char_boundaries() {
        let s = "é".repeat(MAX_EVENT_STDERR);
        let cut = stderr_excerpt(&s);
        assert!(cut.len() <= MAX_EVENT_STDERR);
        assert!(s.starts_with(cut));
    }
}
