//! The ceiling of `bench/run.sh`: a hyper HTTP/1 server answering every
//! request with a fixed body, on the same machine and cores as the edge.
//! Nothing an edge could do per request costs less than this.
//!
//! ```text
//! aether-static-server 127.0.0.1:8080
//! ```

use std::convert::Infallible;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The body every request gets: what `/execute` hello_world answers.
const BODY: &str = r#"{"output":"Hello from Aether!","exit_code":0,"stderr":"","execution_time_ms":0.02,"memory_used_kb":1088,"cache":"memory"}"#;

async fn answer(_: Request<hyper::body::Incoming>) -> Result<Response<String>, Infallible> {
    let mut response = Response::new(String::from(BODY));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    // A client closing mid-request is normal under load.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        })
}
