//! End-to-end tests of the edge server: a real server on 127.0.0.1:0 driven
//! over HTTP (aether-e2e's harness), real wasm (WAT fixtures and the
//! hello_world example).

mod errors;
mod execute;
mod http;
mod lifecycle;
mod logs;
mod metrics;

pub use aether_e2e::TestEdge;
pub use aether_fixtures::{ECHO, LOOP, hello_world_wasm};
