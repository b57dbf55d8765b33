//! Conversions from store records to the wire types of `aether-proto`.

use std::time::{Duration, UNIX_EPOCH};

use aether_proto::control::{
    DeployResponse, FunctionInfo, ManifestEntry, NodeInfo, NodeStatus, StoredEvent, VersionInfo,
};
use aether_store::{EventRecord, FunctionRecord, NodeRecord, VersionRecord};

/// RFC 3339 (UTC, milliseconds) of a Unix-epoch millisecond timestamp.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The answer of a deploy or rollback.
pub fn deploy_response(name: &str, v: &VersionRecord) -> DeployResponse {
    DeployResponse {
        status: "success".into(),
        function_id: name.to_owned(),
        version: v.version,
        sha256: v.sha256.clone(),
        size_kb: v.size_kb(),
        deployed_at: rfc3339(v.deployed_at_ms),
        kind: v.spec.kind,
    }
}

/// A manifest entry for a function's current version.
pub fn manifest_entry(name: String, v: VersionRecord) -> ManifestEntry {
    ManifestEntry {
        name,
        kind: v.spec.kind,
        size_kb: v.size_kb(),
        uploaded_at: rfc3339(v.deployed_at_ms),
        version: v.version,
        sha256: v.sha256,
        args: v.spec.args,
        env: v.spec.env,
        limits: v.spec.limits,
        allowed_outbound_hosts: v.spec.allowed_outbound_hosts,
    }
}

/// One version.
pub fn version_info(v: VersionRecord) -> VersionInfo {
    VersionInfo {
        version: v.version,
        sha256: v.sha256,
        size_kb: v.size.div_ceil(1024),
        deployed_at: rfc3339(v.deployed_at_ms),
        kind: v.spec.kind,
        args: v.spec.args,
        env: v.spec.env,
        limits: v.spec.limits,
        allowed_outbound_hosts: v.spec.allowed_outbound_hosts,
    }
}

/// A function with all its versions.
pub fn function_info(f: FunctionRecord) -> FunctionInfo {
    FunctionInfo {
        name: f.name,
        current_version: f.current_version,
        versions: f.versions.into_iter().map(version_info).collect(),
    }
}

/// Stopped when the edge said so (and has not registered since), else
/// online when the last heartbeat is at most `timeout_ms` old.
pub fn node_status(n: &NodeRecord, now_ms: u64, timeout_ms: u64) -> NodeStatus {
    if n.stopped_at_ms.is_some() {
        NodeStatus::Stopped
    } else if now_ms.saturating_sub(n.last_seen_ms) <= timeout_ms {
        NodeStatus::Online
    } else {
        NodeStatus::Offline
    }
}

/// A node as listed by `GET /api/nodes`.
pub fn node_info(n: NodeRecord, now_ms: u64, timeout_ms: u64) -> NodeInfo {
    NodeInfo {
        status: node_status(&n, now_ms, timeout_ms),
        last_seen: rfc3339(n.last_seen_ms),
        registered_at: rfc3339(n.registered_at_ms),
        node_id: n.node_id,
        url: n.url,
        functions: n.functions,
    }
}

/// A stored event.
pub fn stored_event(e: EventRecord) -> StoredEvent {
    StoredEvent {
        id: e.id,
        received_at: rfc3339(e.received_at_ms),
        event: e.event,
        node_id: e.node_id,
        function: e.function,
        data: e.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
