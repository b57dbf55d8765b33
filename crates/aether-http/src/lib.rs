//! HTTP serving pieces shared by `aether-control` and `aether-engine`:
//!
//! - [`connection`]: the accept loop, hyper with header and body time
//!   limits and graceful shutdown;
//! - [`context`]: the service around each router that gives requests
//!   their id, debug span and `x-request-id` response header;
//! - [`request_id`]: the `x-request-id` of each request, taken from the
//!   client or generated, and kept as the current request's id for log
//!   lines;
//! - [`logging`]: the binaries' tracing subscriber (text or JSON lines,
//!   filter from `RUST_LOG`).

pub mod connection;
pub mod context;
pub mod logging;
pub mod request_id;

pub use connection::{ServeOptions, serve};
pub use context::RequestContext;
