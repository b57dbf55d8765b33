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
    /// Where the function's outbound HTTP may go (components only):
    /// `https://api.example.com`, `http://127.0.0.1:8080`,
    /// `https://*.example.com:8443`. Empty (the default): nowhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
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
    /// How this version is called (absent from control planes before
    /// function kinds: `command`).
    #[serde(default)]
    pub kind: FunctionKind,
}

/// How a function is called; the control plane finds it from the module
/// it is given (a deploy cannot choose it).
///
/// - `command`: `POST /execute` on an edge (JSON in, stdout out).
/// - `http`: any method on `/fn/{name}/…` of an edge, answered by the
///   component itself.
///
/// A command that is a preview-1 module may also be called through
/// `/fn/{name}/…` (CGI-style); its kind stays `command`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionKind {
    /// A WASI command: a preview-1 module (`_start`) or a preview-2
    /// command component (`wasi:cli/run`), with stdin, stdout, stderr and
    /// an exit code. Called with `POST /execute`.
    #[default]
    Command,
    /// A `wasi:http/proxy` component (exports
    /// `wasi:http/incoming-handler`). Called with any method on
    /// `/fn/{name}/…`.
    Http,
}

impl FunctionKind {
    /// The wire name: `command` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Command => "command",
            FunctionKind::Http => "http",
        }
    }
}

impl std::fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FunctionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "command" => Ok(FunctionKind::Command),
            "http" => Ok(FunctionKind::Http),
            other => Err(format!(
                "unknown function kind {other:?} (expected command or http)"
            )),
        }
    }
}

/// One entry of `GET /api/functions/manifest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Function name.
    pub name: String,
    /// How it is called.
    #[serde(default)]
    pub kind: FunctionKind,
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
    /// Where its outbound HTTP may go; empty: nowhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
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
    /// How this version is called.
    #[serde(default)]
    pub kind: FunctionKind,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Where its outbound HTTP may go; empty: nowhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
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

/// Body of `POST /api/nodes/join`: an edge presenting the join token asks
/// for its own credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The id the edge will have.
    pub node_id: String,
    /// Base URL where the edge serves `/execute`.
    pub url: String,
}

/// Answer to a join: the edge's credentials, shown once and never again
/// (the control plane keeps only a hash of `credential`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The id the credential speaks for.
    pub node_id: String,
    /// Bearer token of this edge's calls to the control plane.
    pub credential: String,
    /// Bearer token the control plane presents to this edge's `/notify`.
    pub notify_secret: String,
}

impl std::fmt::Debug for JoinResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinResponse")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Answer to `DELETE /api/nodes/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRemoved {
    /// The node forgotten; its credential no longer opens anything.
    pub node_id: String,
}

impl EventReport for NodeRemoved {
    const EVENT: &'static str = "node_removed";
}

/// Online, offline or stopped: from the time since the last heartbeat and
/// whether the edge said it was stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Heartbeat within `node_timeout`.
    Online,
    /// No heartbeat for longer than `node_timeout`.
    Offline,
    /// The edge shut down gracefully (its `node_stopping` event) and has
    /// not registered since.
    Stopped,
}

/// One entry of `GET /api/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Stable id of the edge.
    pub node_id: String,
    /// Base URL of the edge.
    pub url: String,
    /// Online, offline or stopped.
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

/// The data of one kind of event an edge sends to `POST /callback` (as
/// `{"event": EVENT, "data": ...}`; the edge adds its `node_id` to the data).
pub trait EventReport: Serialize {
    /// The event kind.
    const EVENT: &'static str;
}

/// Data of the `function_stats` event an edge sends every stats interval
/// for each function it ran: one window of counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionStatsReport {
    /// The function.
    pub function: String,
    /// Invocations in the window.
    pub invocations: u64,
    /// Failed invocations in the window.
    #[serde(default)]
    pub errors: u64,
    /// Median latency of the window, ms.
    #[serde(default)]
    pub p50_ms: f64,
    /// 99th percentile latency of the window, ms.
    #[serde(default)]
    pub p99_ms: f64,
    /// Length of the window, seconds.
    #[serde(default)]
    pub window_s: f64,
}

impl EventReport for FunctionStatsReport {
    const EVENT: &'static str = "function_stats";
}

/// Data of the `execution_failed` event an edge sends when an execution
/// ends in an error (trap, timeout, memory or output limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionFailedReport {
    /// The function.
    pub function: String,
    /// Its version, when the control plane deployed it (`null` for a
    /// standalone edge's `func_dir` module).
    pub version: Option<u64>,
    /// The error code answered.
    pub code: crate::ErrorCode,
    /// The error's message.
    pub message: String,
    /// The start of what the function wrote to stderr.
    pub stderr: String,
    /// Time until it failed, ms.
    pub execution_time_ms: f64,
    /// The request's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl EventReport for ExecutionFailedReport {
    const EVENT: &'static str = "execution_failed";
}

/// Data of the `node_started` event: an edge began serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStarted {
    /// The URL the control plane reaches it at.
    pub url: String,
    /// Functions it serves from its saved manifest.
    pub functions: usize,
}

impl EventReport for NodeStarted {
    const EVENT: &'static str = "node_started";
}

/// Data of the `node_stopping` event: an edge is shutting down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStopping {}

impl EventReport for NodeStopping {
    const EVENT: &'static str = "node_stopping";
}

/// Data of the `function_loaded` event: a deployed version is compiled
/// (or loaded from its artifact) on an edge, ahead of its first request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionLoaded {
    /// The function.
    pub function: String,
    /// The version.
    pub version: u64,
    /// Its module's sha256.
    pub sha256: String,
    /// Where the compiled module came from.
    pub source: crate::CacheSource,
}

impl EventReport for FunctionLoaded {
    const EVENT: &'static str = "function_loaded";
}

/// Data of the `compile_failed` event: a deployed version cannot be
/// compiled on an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompileFailed {
    /// The function.
    pub function: String,
    /// The version.
    pub version: u64,
    /// Why.
    pub error: String,
}

impl EventReport for CompileFailed {
    const EVENT: &'static str = "compile_failed";
}

/// Data of the `function_removed` event: an edge stopped serving a
/// function deleted on the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRemoved {
    /// The function.
    pub function: String,
}

impl EventReport for FunctionRemoved {
    const EVENT: &'static str = "function_removed";
}

/// One edge's figures for one function in [`FunctionStats`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFunctionStats {
    /// Invocations reported since the control plane started.
    pub invocations: u64,
    /// Failed invocations reported since the control plane started.
    pub errors: u64,
    /// p50 latency of the latest reporting window, ms.
    pub p50_ms: f64,
    /// p99 latency of the latest reporting window, ms.
    pub p99_ms: f64,
    /// When the latest report arrived, RFC 3339.
    pub last_report: String,
}

/// Body of `GET /api/functions/{name}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionStats {
    /// Function name.
    pub function: String,
    /// Sum over edges.
    pub invocations: u64,
    /// Sum over edges.
    pub errors: u64,
    /// Invocation-weighted mean of the edges' latest p50s (an estimate: the
    /// exact fleet-wide median needs the raw latencies).
    pub p50_ms: f64,
    /// Largest of the edges' latest p99s (an upper bound of the fleet p99).
    pub p99_ms: f64,
    /// Per edge.
    pub nodes: BTreeMap<String, NodeFunctionStats>,
    /// The last hour, minute by minute, oldest first (zero-filled).
    #[serde(default)]
    pub minutes: Vec<MinuteStats>,
}

/// Executions in one minute (or one window), from the edges' reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// Start of the minute, RFC 3339 (absent for a whole window).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// Executions reported.
    pub invocations: u64,
    /// Failed executions among them.
    pub errors: u64,
    /// Median latency: the invocation-weighted mean of the edges'
    /// reported medians (an estimate), ms.
    pub p50_ms: f64,
    /// 99th percentile: the highest of the edges' reported p99s (an upper
    /// bound), ms.
    pub p99_ms: f64,
}

/// Edges by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    /// Heartbeating.
    pub online: u64,
    /// Silent for longer than the node timeout.
    pub offline: u64,
    /// Said they were stopping.
    pub stopped: u64,
}

/// A node's executions over the last hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTotals {
    /// Executions reported.
    pub invocations: u64,
    /// Failed executions among them.
    pub errors: u64,
}

/// Body of `GET /api/overview`: the fleet at a glance (the dashboard's
/// first page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Edges by status.
    pub nodes: NodeCounts,
    /// Number of functions.
    pub functions: u64,
    /// The last hour as one window.
    pub last_hour: MinuteStats,
    /// The last hour, minute by minute, oldest first (zero-filled).
    pub minutes: Vec<MinuteStats>,
    /// Each reporting node's executions over the last hour.
    pub node_stats: BTreeMap<String, NodeTotals>,
}

/// Body of a successful `DELETE /api/functions/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteResponse {
    /// Always `"success"`.
    pub status: String,
    /// The deleted function.
    pub function_id: String,
    /// How many versions went with it.
    pub versions_removed: usize,
}

/// Body of `POST /callback`'s 202.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackAccepted {
    /// Events stored.
    pub accepted: usize,
    /// Id of the last one stored, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<u64>,
}

/// Body of an edge's `POST /notify` 202.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyAccepted {
    /// Always `"reconciling"`.
    pub status: String,
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
    fn a_stats_report_round_trips_and_old_reports_without_optional_fields_parse() {
        let report = FunctionStatsReport {
            function: "f".into(),
            invocations: 3,
            errors: 1,
            p50_ms: 0.5,
            p99_ms: 2.0,
            window_s: 10.0,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            serde_json::from_value::<FunctionStatsReport>(json).unwrap(),
            report
        );
        let minimal: FunctionStatsReport =
            serde_json::from_str(r#"{"function":"f","invocations":2}"#).unwrap();
        assert_eq!((minimal.invocations, minimal.errors), (2, 0));
    }

    #[test]
    fn original_deploy_body_parses() {
        let req: DeployRequest =
            serde_json::from_str(r#"{"name":"hello_world","wasm_b64":"AGFzbQEAAAA="}"#).unwrap();
        assert_eq!(req.name, "hello_world");
        assert!(req.args.is_empty() && req.env.is_empty() && req.limits.is_none());
        assert!(req.allowed_outbound_hosts.is_empty());
    }

    #[test]
    fn kinds_are_snake_case_on_the_wire_and_command_by_default() {
        assert_eq!(
            serde_json::to_value(FunctionKind::Http).unwrap(),
            serde_json::json!("http")
        );
        assert_eq!(
            serde_json::to_value(FunctionKind::Command).unwrap(),
            serde_json::json!("command")
        );
        for kind in [FunctionKind::Command, FunctionKind::Http] {
            assert_eq!(kind.as_str().parse::<FunctionKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!("proxy".parse::<FunctionKind>().is_err());
    }

    #[test]
    fn entries_without_kind_or_hosts_parse_and_empty_hosts_are_not_sent() {
        let old: ManifestEntry = serde_json::from_str(
            r#"{"name":"f","size_kb":1,"uploaded_at":"x","version":1,"sha256":"ab"}"#,
        )
        .unwrap();
        assert_eq!(old.kind, FunctionKind::Command);
        assert!(old.allowed_outbound_hosts.is_empty());
        let json = serde_json::to_value(&old).unwrap();
        assert!(json.get("allowed_outbound_hosts").is_none(), "{json}");
        assert_eq!(json["kind"], "command");

        let http = ManifestEntry {
            kind: FunctionKind::Http,
            allowed_outbound_hosts: vec!["https://api.example.com".into()],
            ..old
        };
        let json = serde_json::to_value(&http).unwrap();
        assert_eq!(json["kind"], "http");
        assert_eq!(
            json["allowed_outbound_hosts"],
            serde_json::json!(["https://api.example.com"])
        );
        assert_eq!(serde_json::from_value::<ManifestEntry>(json).unwrap(), http);

        let version: VersionInfo =
            serde_json::from_str(r#"{"version":2,"sha256":"ab","size_kb":1,"deployed_at":"x"}"#)
                .unwrap();
        assert_eq!(version.kind, FunctionKind::Command);
        let deployed: DeployResponse = serde_json::from_str(
            r#"{"status":"success","function_id":"f","version":1,"sha256":"ab","size_kb":1,"deployed_at":"x"}"#,
        )
        .unwrap();
        assert_eq!(deployed.kind, FunctionKind::Command);
        let deploy: DeployRequest = serde_json::from_str(
            r#"{"name":"f","wasm_b64":"","allowed_outbound_hosts":["http://127.0.0.1:8080"]}"#,
        )
        .unwrap();
        assert_eq!(deploy.allowed_outbound_hosts, ["http://127.0.0.1:8080"]);
    }
}
