//! HTTP serving pieces shared by `aether-control` and `aether-engine`:
//!
//! - [`connection`]: the accept loop, hyper with header and body time
//!   limits and graceful shutdown;
//! - [`request_id`]: the `x-request-id` of each request, taken from the
//!   client or generated, and kept as the current request's id for log
//!   lines;
//! - [`logging`]: the binaries' tracing subscriber (text or JSON lines,
//!   filter from `RUST_LOG`).

pub mod connection;
pub mod logging;
pub mod request_id;

pub use connection::{ServeOptions, serve};
