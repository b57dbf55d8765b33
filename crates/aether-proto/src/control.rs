//! The control-plane API bodies (`aether-control`, port 9090).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits::LimitsSpec;

/// Body of `POST /api/functions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Function name (see [`crate::validate_function_name`]).
    pub name: String,
    /// The module, standard base64.
    pub wasm_b64: String,
    /// Extra arguments after the function name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Per-function limits; the edge's defaults apply where absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
}

/// Answer of a deploy (201 for a new version, 200 for an identical redeploy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// Always `"success"`.
    pub status: String,
    /// The function name.
    pub function_id: String,
    /// The version now current.
    pub version: u64,
    /// sha256 of the module, lowercase hex.
    pub sha256: String,
    /// Module size in KiB, rounded up.
    pub size_kb: u64,
    /// When this version was deployed, RFC 3339.
    pub deployed_at: String,
}

/// One entry of `GET /api/functions/manifest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Function name.
    pub name: String,
    /// Size of the current version in KiB.
    pub size_kb: u64,
    /// When the current version was deployed, RFC 3339.
    pub uploaded_at: String,
    /// Current version.
    pub version: u64,
    /// sha256 of the current version.
    pub sha256: String,
    /// Deployed arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Deployed environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Deployed limits.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// Body of `GET /api/functions/manifest`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Every function with its current version.
    pub functions: Vec<ManifestEntry>,
}

/// One version of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Version number, from 1.
    pub version: u64,
    /// sha256 of the module.
    pub sha256: String,
    /// Module size in KiB.
    pub size_kb: u64,
    /// When it was deployed, RFC 3339.
    pub deployed_at: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// Body of `GET /api/functions/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// Function name.
    pub name: String,
    /// The version edges run.
    pub current_version: u64,
    /// Every stored version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// Body of `POST /api/functions/{name}/rollback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to make current.
    pub version: u64,
}

/// Body of `POST /register` (an edge announcing itself or heartbeating).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Stable id of the edge.
    pub node_id: String,
    /// Base URL where the edge serves `/execute`.
    pub url: String,
    /// Functions the edge holds: name → version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub functions: BTreeMap<String, u64>,
}

/// Online/offline, from the time since the last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Heartbeat within `node_timeout`.
    Online,
    /// No heartbeat for longer than `node_timeout`.
    Offline,
}

/// One entry of `GET /api/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Stable id of the edge.
    pub node_id: String,
    /// Base URL of the edge.
    pub url: String,
    /// Online or offline.
    pub status: NodeStatus,
    /// Last heartbeat, RFC 3339.
    pub last_seen: String,
    /// First registration, RFC 3339.
    pub registered_at: String,
    /// Functions the edge reported holding: name → version.
    #[serde(default)]
    pub functions: BTreeMap<String, u64>,
}

/// An event sent by an edge to `POST /callback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventIn {
    /// Event kind, e.g. `node_started`, `execution_failed`.
    pub event: String,
    /// Free-form details.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// `POST /callback` accepts one event or a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CallbackBody {
    /// `[{"event","data"}, ...]`
    Batch(Vec<EventIn>),
    /// `{"events": [...]}`
    Wrapped {
        /// The events.
        events: Vec<EventIn>,
    },
    /// `{"event","data"}`
    One(EventIn),
}

impl CallbackBody {
    /// The events, whatever the shape.
    pub fn into_events(self) -> Vec<EventIn> {
        match self {
            CallbackBody::Batch(v) | CallbackBody::Wrapped { events: v } => v,
            CallbackBody::One(e) => vec![e],
        }
    }
}

/// A stored event as returned by `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Monotonic id; pass the last one seen as `since` to page.
    pub id: u64,
    /// When the control plane received it, RFC 3339.
    pub received_at: String,
    /// Event kind.
    pub event: String,
    /// Edge that sent it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Function it concerns, when any (from `data.function`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Details.
    pub data: serde_json::Value,
}

/// Body of `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    /// Events, oldest first.
    pub events: Vec<StoredEvent>,
    /// Pass as `since` to get the next page; `None` when there are no events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_since: Option<u64>,
}

/// Body of the control plane's `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlHealth {
    /// Always `"ok"` when the server answers.
    pub status: String,
    /// Number of registered functions.
    pub functions: u64,
    /// Number of nodes currently online.
    pub nodes_online: u64,
    /// Seconds since the process started.
    pub uptime_s: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_accepts_one_or_a_batch() {
        let one: CallbackBody =
            serde_json::from_str(r#"{"event":"node_started","data":{"x":1}}"#).unwrap();
        assert_eq!(one.into_events().len(), 1);
        let batch: CallbackBody =
            serde_json::from_str(r#"[{"event":"a","data":{}},{"event":"b"}]"#).unwrap();
        assert_eq!(batch.into_events().len(), 2);
        let wrapped: CallbackBody =
            serde_json::from_str(r#"{"events":[{"event":"a","data":{}}]}"#).unwrap();
        assert_eq!(wrapped.into_events().len(), 1);
    }

    #[test]
    fn original_deploy_body_parses() {
        let req: DeployRequest =
            serde_json::from_str(r#"{"name":"hello_world","wasm_b64":"AGFzbQEAAAA="}"#).unwrap();
        assert_eq!(req.name, "hello_world");
        assert!(req.args.is_empty() && req.env.is_empty() && req.limits.is_none());
    }
}
