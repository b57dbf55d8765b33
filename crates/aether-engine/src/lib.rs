//! `aether-engine`, the edge runtime: serves `POST /execute` and
//! `GET /health` over the `aether-runtime` sandbox.
//!
//! A library with a thin `main`, so tests start real servers in-process:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let state = aether_engine::AppState::new(aether_engine::EngineConfig::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! aether_engine::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod config;
pub mod control;
pub mod distribution;
pub mod error;
pub mod events;
pub mod executor;
pub mod input;
pub mod node_id;
pub mod registry;
pub mod server;
pub mod state;
pub mod stats;
pub mod telemetry;

pub use config::{EngineConfig, Flags};
pub use server::{app, serve};
pub use state::{AppState, StartError};
