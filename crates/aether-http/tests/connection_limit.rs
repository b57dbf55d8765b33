//! The accept loop's connection limit, on a real listener: connections
//! beyond it are not served until one of the open ones closes.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use aether_http::{ServeOptions, serve};
use axum::Router;
use axum::routing::get;

/// Sends `GET /` on `stream` and waits up to `wait` for the whole answer
/// (`ok`); `None` if none came in time.
fn get_ok(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("request written");
    read_answer(stream, wait)
}

fn read_answer(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout set");
        match stream.read(&mut buf) {
            Ok(0) => panic!("connection closed: {}", String::from_utf8_lossy(&answer)),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
    Some(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router,
        async {
            let _ = stopped.await;
        },
        ServeOptions {
            max_connections: 2,
            ..ServeOptions::new(Duration::from_secs(5))
        },
    ));
    tokio::task::spawn_blocking(move || {
        // Two keep-alive connections take both slots and are served.
        let mut first = TcpStream::connect(addr).unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        for stream in [&mut first, &mut second] {
            let answer = get_ok(stream, Duration::from_secs(10)).expect("served");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        // A third connects (the kernel's backlog) but is not served...
        let mut third = TcpStream::connect(addr).unwrap();
        assert_eq!(
            get_ok(&mut third, Duration::from_millis(500)),
            None,
            "a third connection was served beyond the limit of 2"
        );
        // ...until one of the first two closes; then its request is read
        // and answered.
        drop(first);
        let answer =
            read_answer(&mut third, Duration::from_secs(10)).expect("served once a slot was free");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The remaining connection still works.
        assert!(get_ok(&mut second, Duration::from_secs(10)).is_some());
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
