//! Harness of Aether's hostile-input and fault suite, on top of
//! aether-e2e's (real edges and control planes on `127.0.0.1:0` over
//! temporary directories): the suite's edge preset ([`Edge`]), WAT
//! fixtures, raw TCP clients for misbehaving HTTP, and process
//! measurements (RSS, open file descriptors). Used by `tests/all` and by
//! the `soak` binary.

pub mod fixtures;
pub mod proc;

use std::net::SocketAddr;
use std::time::Duration;

pub use aether_e2e::{
    ADMIN_TOKEN as ADMIN, NODE_TOKEN as NODE, TestControl as Control, TestEdge, b64, code,
    control_config, with_tokens,
};

/// How the suite starts its edges: [`TestEdge`]s rescanning every 200 ms
/// with `echo` installed, which [`TestEdge::assert_serves`] calls.
pub struct Edge;

impl Edge {
    /// An edge with the suite's settings.
    pub async fn start() -> TestEdge {
        Self::start_with(|_| {}).await
    }

    /// An edge after `adjust` changed the suite's settings.
    pub async fn start_with(adjust: impl FnOnce(&mut aether_engine::EngineConfig)) -> TestEdge {
        let edge = TestEdge::start_with(|c| {
            c.scan_interval = Duration::from_millis(200);
            adjust(c);
        })
        .await;
        edge.install_wat("echo", fixtures::ECHO);
        edge
    }
}

/// Sends `bytes` on a new TCP connection and reads until the server closes
/// it or `limit` passes. Returns what was read and whether the server
/// closed the connection (false: still open at `limit`).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may close before reading everything (e.g. a header bomb).
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Opens a connection, sends `head` and then one byte of `trickle` every
/// `every`, until the server closes the connection or `limit` passes.
/// Returns how long the server kept it open (`None`: still open).
pub async fn trickle(
    addr: SocketAddr,
    head: &[u8],
    trickle: &[u8],
    every: Duration,
    limit: Duration,
) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let _ = write.write_all(head).await;
    let feeder = {
        let trickle = trickle.to_vec();
        tokio::spawn(async move {
            for byte in trickle.iter().cycle() {
                tokio::time::sleep(every).await;
                if write.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    feeder.abort();
    closed.then(|| started.elapsed())
}
