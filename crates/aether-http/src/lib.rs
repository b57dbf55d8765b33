//! The server skeleton `aether-control` and `aether-engine` both stand on,
//! one copy of each piece, naming neither of them:
//!
//! - [`config`]: configuration loading (defaults < TOML file < `AETHER_*`
//!   < flags), its one error type, sizes, durations, listen addresses and
//!   [`Secret`]s;
//! - [`error`]: [`ApiError`], the stable JSON error body;
//! - [`auth`]: bearer tokens, compared in constant time;
//! - [`guard`]: the JSON content-type guard and the early 413;
//! - [`connection`]: the accept loop, hyper with header and body time
//!   limits and graceful shutdown;
//! - [`context`]: the service around each router that gives requests
//!   their id, debug span and `x-request-id` response header;
//! - [`request_id`]: the `x-request-id` of each request, taken from the
//!   client or generated, and kept as the current request's id for log
//!   lines;
//! - [`metrics`]: the service's own Prometheus exporter and its upkeep;
//! - [`logging`]: the binaries' tracing subscriber (text or JSON lines,
//!   filter from `RUST_LOG`);
//! - [`shutdown`]: the signal that stops a server;
//! - [`tls`]: HTTPS for the servers (certificates reloaded on renewal) and
//!   the clients (system roots plus an optional CA).

pub mod auth;
pub mod config;
pub mod connection;
pub mod context;
pub mod error;
pub mod guard;
pub mod logging;
pub mod metrics;
pub mod request_id;
pub mod shutdown;
pub mod tls;

pub use config::{ConfigError, Secret};
pub use connection::{ServeOptions, serve};
pub use context::{RequestContext, RequestLog};
pub use error::ApiError;
