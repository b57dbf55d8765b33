//! `aether-engine`, the edge runtime: serves `POST /execute`, HTTP
//! functions on `/fn/{name}/…` and `GET /health` over the `aether-runtime`
//! sandbox.
//!
//! A library with a thin `main`, so tests start real servers in-process:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let state = aether_engine::AppState::new(aether_engine::EngineConfig {
//!     control_url: None, // standalone: serve ./functions only
//!     ..aether_engine::EngineConfig::default()
//! })?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! aether_engine::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod cgi;
pub mod config;
pub mod control;
pub mod distribution;
pub mod durable;
pub mod events;
pub mod executor;
pub mod histogram;
pub mod hop;
pub mod identity;
pub mod input;
pub mod loader;
pub mod metrics;
pub mod node_id;
pub mod registry;
pub mod server;
pub mod state;
pub mod stats;
pub mod trigger;

pub use config::{EngineConfig, Flags};
pub use server::{app, serve};
pub use state::{AppState, StartError};

/// The log filter when `RUST_LOG` is not set: `info`, except for
/// `wasmtime_wasi`, whose WASI host functions carry `#[instrument]` spans
/// at info level (one per hostcall, with formatted arguments): work on the
/// hot path that tells an operator nothing.
pub const DEFAULT_LOG_FILTER: &str = "info,wasmtime_wasi=warn";

/// Targets whose spans are off unless `RUST_LOG` names them (see
/// `aether_http::logging::init`): wasmtime-wasi's per-host-call spans.
pub const QUIET_SPAN_TARGETS: &[&str] = &["wasmtime_wasi"];
