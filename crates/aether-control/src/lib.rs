//! The Aether control plane: the function registry (names, versions, wasm
//! blobs), the edge-node registry, the event log, behind the HTTP API of
//! README.md (types in `aether-proto`).
//!
//! [`app`] builds the router over an [`AppState`]; [`Server`] opens the
//! store and binds; `main.rs` only parses flags, sets up logging and waits
//! for a shutdown signal.

pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod notifier;
pub mod replicas;
pub mod retention;
mod routes;
pub mod server;
pub mod state;
pub mod stats;
pub mod wire;

pub use aether_http::ApiError;
pub use config::{Cli, Config, ConfigError};
pub use routes::{DEFAULT_BODY_LIMIT, MAX_EVENTS_PER_CALLBACK, app};
pub use server::{ServeError, Server};
pub use state::{AppState, Change};
