//! The embedded backend: metadata in one redb file, blobs in a directory.
//!
//! Tables (values are JSON, so fields can be added without a migration):
//! - `functions`: name → [`FunctionMeta`] (a copy of the current version, so
//!   the manifest is one table scan)
//! - `versions`: (name, version) → [`VersionRecord`]
//! - `blob_refs`: sha256 → number of versions referencing it
//! - `nodes`: node id → [`NodeRecord`]
//! - `events`: id → [`EventRecord`]
//! - `counters`: schema version, next event id
//!
//! Ordering of a deploy: blob durable first (temp file, fsync, rename,
//! directory fsync), then the metadata commit (redb commits are durable when
//! `commit` returns). A crash in between leaves an unreferenced blob, which
//! the collection at the next open removes.

use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use aether_proto::validate_function_name;

use crate::Store;
use crate::blob::BlobDir;
use crate::error::StoreError;
use crate::record::{
    DeployOutcome, DeploySpec, EventQuery, EventRecord, FunctionRecord, GcReport, NewEvent,
    NodeHeartbeat, NodeJoin, NodeRecord, VersionRecord, now_ms, sha256_hex,
};

/// Default number of events kept: enough for days of per-function stats
/// from a small fleet, while the table stays a few tens of MB.
pub const DEFAULT_EVENT_RETENTION: u64 = 100_000;

/// Schema of the tables below; bumped on an incompatible change.
const SCHEMA_VERSION: u64 = 1;

const FUNCTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("functions");
const VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("versions");
const BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("blob_refs");
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

const SCHEMA_KEY: &str = "schema_version";
const NEXT_EVENT_KEY: &str = "next_event_id";

/// Where and how to open a [`RedbStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The redb file.
    pub db_path: PathBuf,
    /// The blob directory.
    pub blob_dir: PathBuf,
    /// Number of events kept; older ones are dropped. At least 1.
    pub event_retention: u64,
}

impl StoreOptions {
    /// Options with the default retention.
    pub fn new(db_path: impl Into<PathBuf>, blob_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            db_path: db_path.into(),
            blob_dir: blob_dir.into(),
            event_retention: DEFAULT_EVENT_RETENTION,
        }
    }
}

/// Per-function metadata row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FunctionMeta {
    /// Highest version number ever stored for this function.
    latest_version: u64,
    /// When version 1 was deployed.
    created_at_ms: u64,
    /// Copy of the current version's record.
    current: VersionRecord,
}

/// The embedded store.
pub struct RedbStore {
    db: Database,
    blobs: BlobDir,
    event_retention: u64,
    /// Deploys hold it shared from their blob write until their metadata
    /// commit; blob removal holds it exclusively, so a blob about to be
    /// referenced is never removed.
    blob_lock: RwLock<()>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("blobs", &self.blobs)
            .field("event_retention", &self.event_retention)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs (strings, numbers, maps with string
    // keys, JSON values) cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { table, source })
}

impl RedbStore {
    /// Opens (creating if needed) the database and blob directory, then
    /// removes blobs and temporary files left unreferenced by a crash.
    ///
    /// An existing database is checked first (every page of its committed
    /// trees, on a copy in memory): a damaged one is refused with
    /// [`StoreError::Damaged`] and left exactly as it was, with the blob
    /// directory untouched.
    pub fn open(options: StoreOptions) -> Result<Self, StoreError> {
        if let Some(parent) = options.db_path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::io("creating database directory", parent, e))?;
        }
        match std::fs::metadata(&options.db_path) {
            Ok(meta) if meta.len() > 0 => crate::integrity::check(&options.db_path)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("checking database", &options.db_path, e)),
        }
        let db = Database::create(&options.db_path)?;
        let blobs = BlobDir::open(&options.blob_dir)?;
        let store = RedbStore {
            db,
            blobs,
            event_retention: options.event_retention.max(1),
            blob_lock: RwLock::new(()),
        };
        store.init_tables()?;
        let report = store.collect_garbage()?;
        if report != GcReport::default() {
            info!(
                blobs_removed = report.blobs_removed,
                temp_files_removed = report.temp_files_removed,
                blobs_missing = report.blobs_missing,
                "blob directory cleaned at open"
            );
        }
        Ok(store)
    }

    /// The blob directory's path for a sha256 (for diagnostics and tests).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs.path(sha256)
    }

    fn init_tables(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(FUNCTIONS)?;
            txn.open_table(VERSIONS)?;
            txn.open_table(BLOB_REFS)?;
            txn.open_table(NODES)?;
            txn.open_table(EVENTS)?;
            let mut counters = txn.open_table(COUNTERS)?;
            let found = counters.get(SCHEMA_KEY)?.map(|v| v.value());
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::UnsupportedSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(_) => {}
                None => {
                    counters.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a poisoned lock is still usable.
        self.blob_lock.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.blob_lock.write().unwrap_or_else(|p| p.into_inner())
    }

    fn meta(&self, name: &str) -> Result<Option<FunctionMeta>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FUNCTIONS)?;
        table
            .get(name)?
            .map(|v| decode("functions", v.value()))
            .transpose()
    }

    /// Removes the blobs among `candidates` that no version references any
    /// more. Holds the blob lock exclusively, so no deploy is between its
    /// blob write and its commit.
    fn remove_unreferenced(&self, candidates: &[String]) -> Result<usize, StoreError> {
        if candidates.is_empty() {
            return Ok(0);
        }
        let _guard = self.write_lock();
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(BLOB_REFS)?;
        let mut removed = 0;
        for sha in candidates {
            if refs.get(sha.as_str())?.is_none() {
                self.blobs.remove(sha)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Adds `delta` (±1) to the reference count of a blob; returns the new
/// count. A count reaching zero removes the row.
fn add_ref(txn: &WriteTransaction, sha: &str, delta: i64) -> Result<u64, StoreError> {
    let mut refs = txn.open_table(BLOB_REFS)?;
    let old = refs.get(sha)?.map(|v| v.value()).unwrap_or(0);
    let new = old.saturating_add_signed(delta);
    if new == 0 {
        refs.remove(sha)?;
    } else {
        refs.insert(sha, new)?;
    }
    Ok(new)
}

impl Store for RedbStore {
    fn deploy(
        &self,
        name: &str,
        wasm: &[u8],
        spec: &DeploySpec,
    ) -> Result<DeployOutcome, StoreError> {
        validate_function_name(name)?;
        let sha = sha256_hex(wasm);
        if let Some(meta) = self.meta(name)?
            && meta.current.is_redeployed_by(&sha, spec)
        {
            return Ok(DeployOutcome::Unchanged(meta.current));
        }

        let _guard = self.read_lock();
        self.blobs.write(&sha, wasm)?;

        let txn = self.db.begin_write()?;
        let outcome = {
            let mut functions = txn.open_table(FUNCTIONS)?;
            let existing: Option<FunctionMeta> = functions
                .get(name)?
                .map(|v| decode("functions", v.value()))
                .transpose()?;
            // Re-checked inside the transaction: a concurrent identical
            // deploy may have committed since the check above.
            if let Some(meta) = &existing
                && meta.current.is_redeployed_by(&sha, spec)
            {
                DeployOutcome::Unchanged(meta.current.clone())
            } else {
                let now = now_ms();
                let version = existing.as_ref().map_or(0, |m| m.latest_version) + 1;
                let record = VersionRecord {
                    version,
                    sha256: sha.clone(),
                    size: wasm.len() as u64,
                    deployed_at_ms: now,
                    spec: spec.clone(),
                };
                let meta = FunctionMeta {
                    latest_version: version,
                    created_at_ms: existing.as_ref().map_or(now, |m| m.created_at_ms),
                    current: record.clone(),
                };
                functions.insert(name, encode(&meta).as_slice())?;
                txn.open_table(VERSIONS)?
                    .insert((name, version), encode(&record).as_slice())?;
                add_ref(&txn, &sha, 1)?;
                DeployOutcome::Created(record)
            }
        };
        if outcome.created() {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(outcome)
    }

    fn function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        validate_function_name(name)?;
        let txn = self.db.begin_read()?;
        let functions = txn.open_table(FUNCTIONS)?;
        let Some(meta) = functions.get(name)? else {
            return Ok(None);
        };
        let meta: FunctionMeta = decode("functions", meta.value())?;
        let versions = txn.open_table(VERSIONS)?;
        let mut records = Vec::new();
        for entry in versions.range((name, 0)..=(name, u64::MAX))? {
            let (_, value) = entry?;
            records.push(decode("versions", value.value())?);
        }
        Ok(Some(FunctionRecord {
            name: name.to_owned(),
            current_version: meta.current.version,
            created_at_ms: meta.created_at_ms,
            versions: records,
        }))
    }

    fn current_versions(&self) -> Result<Vec<(String, VersionRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let functions = txn.open_table(FUNCTIONS)?;
        let mut out = Vec::with_capacity(usize::try_from(functions.len()?).unwrap_or(0));
        for entry in functions.iter()? {
            let (name, value) = entry?;
            let meta: FunctionMeta = decode("functions", value.value())?;
            out.push((name.value().to_owned(), meta.current));
        }
        Ok(out)
    }

    fn function_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(FUNCTIONS)?.len()?)
    }

    fn version(&self, name: &str, version: Option<u64>) -> Result<VersionRecord, StoreError> {
        validate_function_name(name)?;
        let not_found = || StoreError::FunctionNotFound {
            name: name.to_owned(),
        };
        let txn = self.db.begin_read()?;
        match version {
            None => {
                let functions = txn.open_table(FUNCTIONS)?;
                let meta = functions.get(name)?.ok_or_else(not_found)?;
                let meta: FunctionMeta = decode("functions", meta.value())?;
                Ok(meta.current)
            }
            Some(version) => {
                let versions = txn.open_table(VERSIONS)?;
                if let Some(v) = versions.get((name, version))? {
                    return decode("versions", v.value());
                }
                if txn.open_table(FUNCTIONS)?.get(name)?.is_none() {
                    return Err(not_found());
                }
                Err(StoreError::VersionNotFound {
                    name: name.to_owned(),
                    version,
                })
            }
        }
    }

    fn rollback(&self, name: &str, version: u64) -> Result<VersionRecord, StoreError> {
        validate_function_name(name)?;
        let txn = self.db.begin_write()?;
        let record = {
            let mut functions = txn.open_table(FUNCTIONS)?;
            let mut meta: FunctionMeta = match functions.get(name)? {
                Some(v) => decode("functions", v.value())?,
                None => {
                    return Err(StoreError::FunctionNotFound {
                        name: name.to_owned(),
                    });
                }
            };
            let versions = txn.open_table(VERSIONS)?;
            let record: VersionRecord = match versions.get((name, version))? {
                Some(v) => decode("versions", v.value())?,
                None => {
                    return Err(StoreError::VersionNotFound {
                        name: name.to_owned(),
                        version,
                    });
                }
            };
            meta.current = record.clone();
            functions.insert(name, encode(&meta).as_slice())?;
            record
        };
        txn.commit()?;
        Ok(record)
    }

    fn delete(&self, name: &str) -> Result<FunctionRecord, StoreError> {
        validate_function_name(name)?;
        let txn = self.db.begin_write()?;
        let mut unreferenced = Vec::new();
        let record = {
            let mut functions = txn.open_table(FUNCTIONS)?;
            let meta: FunctionMeta = match functions.remove(name)? {
                Some(v) => decode("functions", v.value())?,
                None => {
                    return Err(StoreError::FunctionNotFound {
                        name: name.to_owned(),
                    });
                }
            };
            let mut versions = txn.open_table(VERSIONS)?;
            let mut records: Vec<VersionRecord> = Vec::new();
            for entry in versions.extract_from_if((name, 0)..=(name, u64::MAX), |_, _| true)? {
                let (_, value) = entry?;
                records.push(decode("versions", value.value())?);
            }
            for r in &records {
                if add_ref(&txn, &r.sha256, -1)? == 0 && !unreferenced.contains(&r.sha256) {
                    unreferenced.push(r.sha256.clone());
                }
            }
            FunctionRecord {
                name: name.to_owned(),
                current_version: meta.current.version,
                created_at_ms: meta.created_at_ms,
                versions: records,
            }
        };
        txn.commit()?;
        // The metadata no longer references these; a failure to remove one
        // only leaves an orphan that the next collection removes.
        if let Err(e) = self.remove_unreferenced(&unreferenced) {
            warn!(function = name, error = %e, "removing unreferenced blobs failed; left for the next collection");
        }
        Ok(record)
    }

    fn read_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        self.blobs.read(sha256)
    }

    fn collect_garbage(&self) -> Result<GcReport, StoreError> {
        let _guard = self.write_lock();
        let listing = self.blobs.list()?;
        let mut report = GcReport::default();
        for tmp in &listing.temp_files {
            self.blobs.remove_temp(tmp)?;
            report.temp_files_removed += 1;
        }
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(BLOB_REFS)?;
        for sha in &listing.blobs {
            if refs.get(sha.as_str())?.is_none() {
                self.blobs.remove(sha)?;
                report.blobs_removed += 1;
            }
        }
        for entry in refs.iter()? {
            let (sha, _) = entry?;
            let sha = sha.value();
            if !self.blobs.exists(sha)? {
                tracing::error!(
                    sha256 = sha,
                    "a referenced blob is missing from the blob directory"
                );
                report.blobs_missing += 1;
            }
        }
        if report.blobs_removed + report.temp_files_removed > 0 {
            self.blobs.sync_dir()?;
        }
        Ok(report)
    }

    fn upsert_node(&self, heartbeat: NodeHeartbeat) -> Result<NodeRecord, StoreError> {
        let txn = self.db.begin_write()?;
        let record = {
            let mut nodes = txn.open_table(NODES)?;
            let now = now_ms();
            let known = match nodes.get(heartbeat.node_id.as_str())? {
                Some(v) => Some(decode::<NodeRecord>("nodes", v.value())?),
                None => None,
            };
            let (registered_at_ms, credential_sha256, notify_secret) = match known {
                Some(k) => (k.registered_at_ms, k.credential_sha256, k.notify_secret),
                None => (now, None, None),
            };
            let record = NodeRecord {
                node_id: heartbeat.node_id,
                url: heartbeat.url,
                registered_at_ms,
                last_seen_ms: now,
                functions: heartbeat.functions,
                stopped_at_ms: None,
                credential_sha256,
                notify_secret,
            };
            nodes.insert(record.node_id.as_str(), encode(&record).as_slice())?;
            record
        };
        txn.commit()?;
        Ok(record)
    }

    fn join_node(&self, join: NodeJoin) -> Result<NodeRecord, StoreError> {
        let txn = self.db.begin_write()?;
        let record = {
            let mut nodes = txn.open_table(NODES)?;
            let known = match nodes.get(join.node_id.as_str())? {
                Some(v) => Some(decode::<NodeRecord>("nodes", v.value())?),
                None => None,
            };
            if known
                .as_ref()
                .is_some_and(|k| k.credential_sha256.is_some())
            {
                return Err(StoreError::NodeExists {
                    node_id: join.node_id,
                });
            }
            let now = now_ms();
            let record = NodeRecord {
                registered_at_ms: known.as_ref().map_or(now, |k| k.registered_at_ms),
                functions: known.map(|k| k.functions).unwrap_or_default(),
                node_id: join.node_id,
                url: join.url,
                last_seen_ms: now,
                stopped_at_ms: None,
                credential_sha256: Some(join.credential_sha256),
                notify_secret: Some(join.notify_secret),
            };
            nodes.insert(record.node_id.as_str(), encode(&record).as_slice())?;
            record
        };
        txn.commit()?;
        Ok(record)
    }

    fn remove_node(&self, node_id: &str) -> Result<NodeRecord, StoreError> {
        let txn = self.db.begin_write()?;
        let removed = {
            let mut nodes = txn.open_table(NODES)?;
            match nodes.remove(node_id)? {
                Some(v) => decode::<NodeRecord>("nodes", v.value())?,
                None => {
                    return Err(StoreError::NodeNotFound {
                        node_id: node_id.to_owned(),
                    });
                }
            }
        };
        txn.commit()?;
        Ok(removed)
    }

    fn node(&self, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let nodes = txn.open_table(NODES)?;
        nodes
            .get(node_id)?
            .map(|v| decode("nodes", v.value()))
            .transpose()
    }

    fn mark_node_stopped(&self, node_id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let known = {
            let mut nodes = txn.open_table(NODES)?;
            let record = match nodes.get(node_id)? {
                Some(v) => Some(decode::<NodeRecord>("nodes", v.value())?),
                None => None,
            };
            match record {
                Some(mut record) => {
                    record.stopped_at_ms = Some(now_ms());
                    nodes.insert(node_id, encode(&record).as_slice())?;
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(known)
    }

    fn prune_nodes(&self, before_ms: u64) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_write()?;
        let pruned = {
            let mut nodes = txn.open_table(NODES)?;
            let mut stale = Vec::new();
            for entry in nodes.iter()? {
                let (key, value) = entry?;
                let record: NodeRecord = decode("nodes", value.value())?;
                if record.last_seen_ms < before_ms {
                    stale.push(key.value().to_owned());
                }
            }
            for id in &stale {
                nodes.remove(id.as_str())?;
            }
            stale
        };
        txn.commit()?;
        Ok(pruned)
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let nodes = txn.open_table(NODES)?;
        let mut out = Vec::new();
        for entry in nodes.iter()? {
            let (_, value) = entry?;
            out.push(decode("nodes", value.value())?);
        }
        Ok(out)
    }

    fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let stored = {
            let mut counters = txn.open_table(COUNTERS)?;
            let mut next = counters.get(NEXT_EVENT_KEY)?.map_or(1, |v| v.value());
            let mut table = txn.open_table(EVENTS)?;
            let now = now_ms();
            let mut stored = Vec::with_capacity(events.len());
            for e in events {
                let record = EventRecord {
                    id: next,
                    received_at_ms: now,
                    event: e.event,
                    node_id: e.node_id,
                    function: e.function,
                    data: e.data,
                };
                table.insert(next, encode(&record).as_slice())?;
                stored.push(record);
                next += 1;
            }
            counters.insert(NEXT_EVENT_KEY, next)?;
            // Ids are contiguous and only the oldest are ever removed, so
            // the newest `retention` events are exactly ids > cutoff.
            let last = next - 1;
            if last > self.event_retention {
                let cutoff = last - self.event_retention;
                table.retain_in(..=cutoff, |_, _| false)?;
            }
            stored
        };
        txn.commit()?;
        Ok(stored)
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        if query.limit == 0 || query.since == u64::MAX {
            return Ok(out);
        }
        let range = table.range(query.since + 1..)?;
        let entries: Box<dyn Iterator<Item = _>> = if query.newest {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for entry in entries {
            let (_, value) = entry?;
            let record: EventRecord = decode("events", value.value())?;
            if !query.admits(&record) {
                continue;
            }
            out.push(record);
            if out.len() >= query.limit {
                break;
            }
        }
        if query.newest {
            out.reverse();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        options: StoreOptions,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let options =
                StoreOptions::new(dir.path().join("control.db"), dir.path().join("blobs"));
            Fixture { _dir: dir, options }
        }

        fn open_redb(&self) -> RedbStore {
            RedbStore::open(self.options.clone()).unwrap()
        }
    }

    impl crate::contract::Backend for Fixture {
        fn open(&self, retention: u64) -> std::sync::Arc<dyn Store> {
            std::sync::Arc::new(
                RedbStore::open(StoreOptions {
                    event_retention: retention,
                    ..self.options.clone()
                })
                .unwrap(),
            )
        }
    }

    crate::contract::contract_tests!(Some(Fixture::new()));

    use crate::contract::event;

    #[test]
    fn open_removes_orphan_blobs_and_temp_files_but_keeps_referenced_ones() {
        let f = Fixture::new();
        {
            let store = f.open_redb();
            store
                .deploy("kept", b"kept", &DeploySpec::default())
                .unwrap();
        }
        let orphan = sha256_hex(b"orphan");
        std::fs::write(f.options.blob_dir.join(format!("{orphan}.wasm")), b"orphan").unwrap();
        std::fs::write(f.options.blob_dir.join(".upload-abc.tmp"), b"half").unwrap();
        std::fs::write(f.options.blob_dir.join("README"), b"not ours").unwrap();
        let store = f.open_redb();
        assert!(!f.options.blob_dir.join(format!("{orphan}.wasm")).exists());
        assert!(!f.options.blob_dir.join(".upload-abc.tmp").exists());
        assert!(f.options.blob_dir.join("README").exists());
        assert_eq!(store.read_blob(&sha256_hex(b"kept")).unwrap(), b"kept");
        assert_eq!(store.collect_garbage().unwrap(), GcReport::default());
    }

    #[test]
    fn a_database_open_elsewhere_is_refused_as_open_not_as_damaged() {
        let f = Fixture::new();
        let _first = f.open_redb();
        let second = RedbStore::open(f.options.clone());
        assert!(
            matches!(
                second,
                Err(StoreError::Database(redb::Error::DatabaseAlreadyOpen))
            ),
            "{second:?}"
        );
    }

    /// Everything a store holds, for comparing a reopened one with it.
    fn contents(
        store: &RedbStore,
    ) -> (
        Vec<Option<FunctionRecord>>,
        Vec<NodeRecord>,
        Vec<EventRecord>,
    ) {
        let functions = ["a", "b", "c"]
            .iter()
            .map(|name| store.function(name).unwrap())
            .collect();
        let all = EventQuery {
            since: 0,
            limit: usize::MAX,
            function: None,
            ..Default::default()
        };
        (
            functions,
            store.nodes().unwrap(),
            store.events(&all).unwrap(),
        )
    }

    // Regression: a damaged page either panicked inside redb at open, or
    // was found only after the open had marked the file in use (a header
    // write) and committed to it, or went unnoticed until a read hit it
    // (which of these depended on the page and on debug or release builds).
    #[test]
    fn any_damaged_page_is_refused_without_a_write_or_opens_with_everything() {
        let f = Fixture::new();
        let expected = {
            let store = f.open_redb();
            for name in ["a", "b", "c"] {
                store
                    .deploy(name, name.as_bytes(), &DeploySpec::default())
                    .unwrap();
                store
                    .upsert_node(NodeHeartbeat {
                        node_id: format!("edge-{name}"),
                        url: "http://127.0.0.1:9091".into(),
                        functions: BTreeMap::new(),
                    })
                    .unwrap();
            }
            for _ in 0..50 {
                store.append_events(vec![event("e", Some("a"))]).unwrap();
            }
            contents(&store)
        };
        let original = std::fs::read(&f.options.db_path).unwrap();
        type Damage = fn(&mut [u8]);
        let damages: [(&str, Damage); 2] = [
            ("overwritten", |page| page.fill(0x5A)),
            ("one bit flipped", |page| page[page.len() / 2] ^= 0x10),
        ];
        let (mut refused, mut opened) = (0, 0);
        for page in 0..original.len() / 4096 {
            for (what, damage) in damages {
                let mut bytes = original.clone();
                damage(&mut bytes[page * 4096..(page + 1) * 4096]);
                std::fs::write(&f.options.db_path, &bytes).unwrap();
                match RedbStore::open(f.options.clone()) {
                    Err(e) => {
                        assert!(
                            matches!(e, StoreError::Damaged { .. }),
                            "page {page} {what}: {e}"
                        );
                        assert!(
                            std::fs::read(&f.options.db_path).unwrap() == bytes,
                            "page {page} {what}: refused, but the file was written"
                        );
                        refused += 1;
                    }
                    Ok(store) => {
                        assert!(
                            contents(&store) == expected,
                            "page {page} {what}: opened with other contents"
                        );
                        opened += 1;
                    }
                }
            }
        }
        assert!(
            refused > 0 && opened > 0,
            "{refused} refused, {opened} opened"
        );
        for name in ["a", "b", "c"] {
            assert!(
                f.options
                    .blob_dir
                    .join(format!("{}.wasm", sha256_hex(name.as_bytes())))
                    .exists()
            );
        }
    }
}
