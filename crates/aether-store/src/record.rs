//! The records the store keeps, independent of the wire format.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aether_proto::LimitsSpec;
use aether_proto::control::FunctionKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a deploy records besides the module's bytes: the kind the
/// control plane found the module to be, and the settings it was given.
///
/// Records written before a field existed read it as its default
/// (`command`, no outbound hosts), which is what they were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploySpec {
    /// How the version is called (`command` or `http`), from the module.
    #[serde(default)]
    pub kind: FunctionKind,
    /// Where its outbound HTTP may go (allow-list entries as given,
    /// validated by the control plane); empty: nowhere.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Extra arguments after the function name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Per-function limits.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// One stored version of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Version number, from 1.
    pub version: u64,
    /// sha256 of the module, lowercase hex.
    pub sha256: String,
    /// Module size in bytes.
    pub size: u64,
    /// When it was deployed, milliseconds since the Unix epoch.
    pub deployed_at_ms: u64,
    /// Kind, outbound hosts, arguments, env and limits.
    #[serde(flatten)]
    pub spec: DeploySpec,
}

impl VersionRecord {
    /// Size in KiB, rounded up (the wire's `size_kb`).
    pub fn size_kb(&self) -> u64 {
        self.size.div_ceil(1024)
    }

    /// Whether deploying a module with `sha256` and `spec` over this
    /// (current) version changes nothing: the identical redeploy that
    /// every backend answers with [`DeployOutcome::Unchanged`]. Every
    /// field of the spec counts: kind, outbound hosts, args, env, limits.
    pub fn is_redeployed_by(&self, sha256: &str, spec: &DeploySpec) -> bool {
        self.sha256 == sha256 && self.spec == *spec
    }
}

/// A function with every stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRecord {
    /// Function name.
    pub name: String,
    /// The version edges run.
    pub current_version: u64,
    /// When the first version was deployed, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Every stored version, oldest first.
    pub versions: Vec<VersionRecord>,
}

/// Result of [`crate::Store::deploy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployOutcome {
    /// A new version was stored and made current.
    Created(VersionRecord),
    /// The current version already had these bytes and settings.
    Unchanged(VersionRecord),
}

impl DeployOutcome {
    /// The version now current.
    pub fn record(&self) -> &VersionRecord {
        match self {
            DeployOutcome::Created(r) | DeployOutcome::Unchanged(r) => r,
        }
    }

    /// Whether a new version was created.
    pub fn created(&self) -> bool {
        matches!(self, DeployOutcome::Created(_))
    }
}

/// What an edge sends when it registers or heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHeartbeat {
    /// Stable id of the edge.
    pub node_id: String,
    /// Base URL of the edge.
    pub url: String,
    /// Functions the edge holds: name → version.
    pub functions: BTreeMap<String, u64>,
}

/// A known edge node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Stable id of the edge.
    pub node_id: String,
    /// Base URL of the edge.
    pub url: String,
    /// First registration, ms since the Unix epoch.
    pub registered_at_ms: u64,
    /// Last heartbeat, ms since the Unix epoch.
    pub last_seen_ms: u64,
    /// Functions the edge reported holding.
    #[serde(default)]
    pub functions: BTreeMap<String, u64>,
    /// When the edge said it was stopping (a graceful shutdown), ms since
    /// the Unix epoch; cleared by its next registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at_ms: Option<u64>,
    /// Its own credential, once it joined: sha256 (hex) of the secret
    /// part; the secret itself is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_sha256: Option<String>,
    /// The secret the control plane presents to this edge's `/notify`
    /// (kept as it is: the control plane must send it; it only lets its
    /// holder make that one edge reconcile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_secret: Option<String>,
}

/// An edge joining with the join token: its identity from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeJoin {
    /// The id it asks for.
    pub node_id: String,
    /// Base URL of the edge.
    pub url: String,
    /// sha256 (hex) of its new credential's secret.
    pub credential_sha256: String,
    /// Secret for the control plane's calls to its `/notify`.
    pub notify_secret: String,
}

/// An event to append to the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Event kind.
    pub event: String,
    /// Edge that sent it, when known.
    pub node_id: Option<String>,
    /// Function it concerns, when any.
    pub function: Option<String>,
    /// Details.
    pub data: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Monotonic id, from 1.
    pub id: u64,
    /// When it was stored, ms since the Unix epoch.
    pub received_at_ms: u64,
    /// Event kind.
    pub event: String,
    /// Edge that sent it, when known.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Function it concerns, when any.
    #[serde(default)]
    pub function: Option<String>,
    /// Details.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with an id greater than this.
    pub since: u64,
    /// At most this many events.
    pub limit: usize,
    /// Only events concerning this function.
    pub function: Option<String>,
    /// Only events of this node.
    pub node_id: Option<String>,
    /// Only events of this kind (`execution_failed`, ...).
    pub kind: Option<String>,
    /// The newest `limit` matching events (still returned oldest first)
    /// instead of the oldest: where a live tail starts.
    pub newest: bool,
}

impl EventQuery {
    /// Whether `event` passes the function, node and kind filters.
    pub fn admits(&self, event: &EventRecord) -> bool {
        let matches = |filter: &Option<String>, value: Option<&str>| {
            filter.as_deref().is_none_or(|f| value == Some(f))
        };
        matches(&self.function, event.function.as_deref())
            && matches(&self.node_id, event.node_id.as_deref())
            && matches(&self.kind, Some(event.event.as_str()))
    }
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs no version referenced.
    pub blobs_removed: usize,
    /// Temporary files left by interrupted writes.
    pub temp_files_removed: usize,
    /// Blobs referenced by metadata but absent on disk (logged; never
    /// expected, since blobs are durable before their metadata commits).
    pub blobs_missing: usize,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_before_kinds_and_hosts_reads_as_a_command_with_no_hosts() {
        let old = r#"{"version":3,"sha256":"ab","size":10,"deployed_at_ms":5,"args":["x"],"env":{},"limits":{}}"#;
        let record: VersionRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.spec.kind, FunctionKind::Command);
        assert!(record.spec.allowed_outbound_hosts.is_empty());
        assert_eq!(record.spec.args, ["x"]);
        let again: VersionRecord =
            serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }

    #[test]
    fn a_redeploy_with_other_hosts_or_another_kind_is_not_identical() {
        let spec = DeploySpec::default();
        let record = VersionRecord {
            version: 1,
            sha256: "ab".into(),
            size: 1,
            deployed_at_ms: 0,
            spec: spec.clone(),
        };
        assert!(record.is_redeployed_by("ab", &spec));
        assert!(!record.is_redeployed_by("cd", &spec));
        let hosts = DeploySpec {
            allowed_outbound_hosts: vec!["https://example.com".into()],
            ..spec.clone()
        };
        assert!(!record.is_redeployed_by("ab", &hosts));
        let http = DeploySpec {
            kind: FunctionKind::Http,
            ..spec
        };
        assert!(!record.is_redeployed_by("ab", &http));
    }
}
