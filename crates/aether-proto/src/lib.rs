//! Wire types shared by every Aether component: request and response bodies,
//! the JSON error body, function-name validation and human-readable limits.
//!
//! This crate does no I/O. It is the whole wire contract (README.md's API
//! section, docs/architecture.md): every body that crosses a process
//! boundary is a type here, so a change here is a change of the public API.

pub mod control;
pub mod error;
pub mod execute;
pub mod limits;
pub mod name;

pub use error::{ApiErrorBody, ErrorCode, ErrorDetail};
pub use execute::{CacheSource, EdgeHealth, ExecuteRequest, ExecuteResponse};
pub use limits::{LimitsSpec, ParsedLimits};
pub use name::{NameError, validate_function_name};
