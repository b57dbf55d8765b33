//! The edge API: `POST /execute` and `GET /health` bodies.

use serde::{Deserialize, Serialize};

/// Body of `POST /execute`.
///
/// Unknown fields are refused (a typo such as `"inputs"` would otherwise run
/// the function with empty stdin and look like a function bug).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Name of the deployed function.
    pub function: String,
    /// Any JSON value; written to the function's stdin as compact JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// Raw text written to stdin. Exclusive with `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// Where the compiled module of an invocation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSource {
    /// Already compiled and loaded in this process: a warm start.
    Memory,
    /// Loaded from a precompiled artifact on disk (no compilation).
    Disk,
    /// Compiled from wasm for this request: a cold start.
    Compiled,
}

impl CacheSource {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheSource::Memory => "memory",
            CacheSource::Disk => "disk",
            CacheSource::Compiled => "compiled",
        }
    }
}

/// Successful answer of `POST /execute` (the function ran to completion,
/// whatever its exit code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResponse {
    /// What the function wrote to stdout (lossy UTF-8).
    pub output: String,
    /// Exit code: 0 when `_start` returned, else the `proc_exit` code.
    pub exit_code: i32,
    /// What the function wrote to stderr (lossy UTF-8).
    pub stderr: String,
    /// Wall-clock time of instantiation and run, in milliseconds.
    pub execution_time_ms: f64,
    /// Peak linear memory of this invocation, in KiB.
    pub memory_used_kb: u64,
    /// Where the compiled module came from.
    pub cache: CacheSource,
    /// Outbound HTTP requests the function sent (a component with an
    /// allow-list; absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outbound_requests: u64,
    /// Response bytes those requests received (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outbound_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Body of the edge's `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeHealth {
    /// Always `"ok"` when the server answers.
    pub status: String,
    /// This edge's node id.
    pub node_id: String,
    /// Number of functions this edge can serve.
    pub functions: usize,
    /// Number of modules linked and ready (at most `cache_size`).
    pub cached_modules: usize,
    /// Modules held in memory, linked or not (every module loaded since
    /// the edge started whose function is still deployed).
    #[serde(default)]
    pub held_modules: usize,
    /// Bytes those modules take (compiled code, data and metadata).
    #[serde(default)]
    pub module_memory_bytes: u64,
    /// The most they may take (`module_memory_budget`).
    #[serde(default)]
    pub module_memory_budget_bytes: u64,
    /// Seconds since the process started.
    pub uptime_s: u64,
    /// Events this edge could not report to the control plane.
    #[serde(default)]
    pub events_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_example_request_parses() {
        let req: ExecuteRequest = serde_json::from_str(
            r#"{"function":"hello_world","input":{"msg":"Hello from Aether!"}}"#,
        )
        .unwrap();
        assert_eq!(req.function, "hello_world");
        assert_eq!(req.input.unwrap()["msg"], "Hello from Aether!");
        assert_eq!(req.stdin, None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<ExecuteRequest>(r#"{"function":"f","inputs":{}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `inputs`"), "{err}");
    }

    #[test]
    fn cache_source_serialises_as_documented() {
        assert_eq!(
            serde_json::to_string(&CacheSource::Compiled).unwrap(),
            "\"compiled\""
        );
    }
}
