//! Control-plane persistence for Aether: functions with their versions,
//! edge nodes and the event log, behind the [`Store`] trait.
//!
//! [`RedbStore`] is the embedded implementation (one redb file plus a
//! directory of content-addressed blobs `<blob_dir>/<sha256>.wasm`), the
//! zero-setup default. [`PgStore`] keeps everything, blobs included, in a
//! PostgreSQL database, so that several control planes on that database
//! behave as one (see the `pg` module's documentation for how versions stay
//! gapless and event paging exact with several writers).
//!
//! The trait is synchronous: the embedded backend does blocking file I/O
//! and fsyncs, and the PostgreSQL one uses the blocking client of
//! rust-postgres with a connection pool, so callers on an async runtime run
//! it on a blocking thread (`tokio::task::spawn_blocking`). Both backends
//! block in the same places (disk or network), and the control plane
//! already ran every store call that way; an async trait would have bought
//! nothing but a second calling convention.

mod blob;
mod embedded;
mod error;
mod integrity;
mod pg;
mod record;

#[cfg(test)]
mod contract;

pub use embedded::{DEFAULT_EVENT_RETENTION, RedbStore, StoreOptions};
pub use error::StoreError;
pub use pg::{DEFAULT_CONNECT_TIMEOUT, PG_SCHEMA_VERSION, PgOptions, PgStore};
pub use record::{
    DeployOutcome, DeploySpec, EventQuery, EventRecord, FunctionRecord, GcReport, NewEvent,
    NodeHeartbeat, NodeJoin, NodeRecord, VersionRecord, now_ms, sha256_hex,
};

/// Everything the control plane persists.
///
/// Implementations must make a successful [`Store::deploy`] durable before
/// returning: the blob and the metadata survive a crash of the process or
/// the machine at any later instant.
pub trait Store: Send + Sync + 'static {
    /// Stores `wasm` as a new version of `name` and makes it current.
    ///
    /// When the current version already has the same sha256 and the same
    /// spec (kind, outbound hosts, args, env, limits), nothing changes and
    /// [`DeployOutcome::Unchanged`] is returned.
    fn deploy(
        &self,
        name: &str,
        wasm: &[u8],
        spec: &DeploySpec,
    ) -> Result<DeployOutcome, StoreError>;

    /// A function with every stored version, or `None`.
    fn function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError>;

    /// The current version of every function, ordered by name.
    fn current_versions(&self) -> Result<Vec<(String, VersionRecord)>, StoreError>;

    /// Number of functions.
    fn function_count(&self) -> Result<u64, StoreError>;

    /// One version of a function; the current one when `version` is `None`.
    fn version(&self, name: &str, version: Option<u64>) -> Result<VersionRecord, StoreError>;

    /// Makes an existing version current again.
    fn rollback(&self, name: &str, version: u64) -> Result<VersionRecord, StoreError>;

    /// Removes a function and all its versions; blobs no other version
    /// references are deleted.
    fn delete(&self, name: &str) -> Result<FunctionRecord, StoreError>;

    /// The bytes of a stored blob.
    fn read_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError>;

    /// Removes blobs that no version references and leftover temporary
    /// files (e.g. from a crash between a blob write and its metadata
    /// commit).
    fn collect_garbage(&self) -> Result<GcReport, StoreError>;

    /// Registers an edge node, or records a heartbeat of a known one (its
    /// credential, if any, is kept).
    fn upsert_node(&self, heartbeat: NodeHeartbeat) -> Result<NodeRecord, StoreError>;

    /// Gives a node its credential: a new node, or a known one that has
    /// none yet (registered before credentials existed).
    /// [`StoreError::NodeExists`] when it has one already.
    fn join_node(&self, join: NodeJoin) -> Result<NodeRecord, StoreError>;

    /// Forgets a node and its credential; [`StoreError::NodeNotFound`]
    /// when unknown.
    fn remove_node(&self, node_id: &str) -> Result<NodeRecord, StoreError>;

    /// One node, or `None` when unknown.
    fn node(&self, node_id: &str) -> Result<Option<NodeRecord>, StoreError>;

    /// Records that a known node said it is stopping; `false` when the
    /// node is unknown. Its next registration clears this.
    fn mark_node_stopped(&self, node_id: &str) -> Result<bool, StoreError>;

    /// Forgets the nodes whose last heartbeat is older than `before_ms` (ms
    /// since the Unix epoch); returns their ids.
    fn prune_nodes(&self, before_ms: u64) -> Result<Vec<String>, StoreError>;

    /// Every known node, ordered by id.
    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;

    /// Appends events, assigning increasing ids; the oldest events beyond
    /// the retention are dropped. Returns the stored records.
    fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventRecord>, StoreError>;

    /// Events with an id greater than `query.since`, oldest first.
    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;

    /// Whether other processes write to this store too (several control
    /// planes on one database): their writes show up without this process
    /// making them, so what it caches must be looked up again.
    fn is_shared(&self) -> bool {
        false
    }
}
