//! The PostgreSQL backend: metadata and blobs in one database, so that
//! several control planes (replicas) on that database behave as one.
//!
//! Tables (migrations 1 and 2, [`MIGRATIONS`]):
//! - `blobs`: sha256 → bytes. Written once whatever references it; a
//!   foreign key from `versions` means the database itself refuses to drop
//!   a blob some version references, whatever races between replicas.
//! - `functions`: name → highest and current version, creation time.
//! - `versions`: (name, version) → sha256, size, time, kind, outbound
//!   hosts (`text[]`), and args, env and limits as JSON text (`spec`);
//!   removed with their function (`ON DELETE CASCADE`). Migration 2 added
//!   `kind` and `allowed_outbound_hosts`, defaulting older rows to what
//!   they were: `command`, no hosts.
//! - `nodes`: one row per edge.
//! - `events` plus `event_counter`, a single row holding the last id.
//!
//! How the invariants of several writers hold:
//! - **Versions are gapless and never lost.** A deploy locks its
//!   function's row (`SELECT … FOR UPDATE`, after an `INSERT … ON CONFLICT
//!   DO NOTHING` that creates it for a new name) and takes `latest + 1`;
//!   a concurrent deploy of the same name waits for the commit and then
//!   reads the new `latest`.
//! - **Event paging is exact.** Ids come from `UPDATE event_counter SET
//!   last_id = last_id + n`, whose row lock is held until the appending
//!   transaction commits; the next appender waits for it. So ids are
//!   handed out in commit order, and a reader that saw id `n` committed
//!   can never later find a smaller id appear: `since = n` neither skips
//!   nor repeats. (A plain sequence would hand out 7 to a transaction that
//!   commits after another's 8 was already read.) The price is that
//!   appends are serialised: one short transaction at a time.
//! - **Acknowledged means durable**: every write is one transaction, and
//!   the caller hears of success after `COMMIT` returned (PostgreSQL's
//!   default `synchronous_commit = on`).
//! - **Schema migrations** run at open inside one transaction holding a
//!   transaction-scoped advisory lock, so replicas starting together apply
//!   them exactly once; a database migrated by a newer binary is refused.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{NoTls, Row, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use tracing::{info, warn};

use aether_proto::validate_function_name;

use crate::Store;
use crate::embedded::DEFAULT_EVENT_RETENTION;
use crate::error::StoreError;
use crate::record::{
    DeployOutcome, DeploySpec, EventQuery, EventRecord, FunctionRecord, GcReport, NewEvent,
    NodeHeartbeat, NodeJoin, NodeRecord, VersionRecord, now_ms, sha256_hex,
};

/// Schema changes in order; entry `i` takes the schema from version `i` to
/// `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE blobs (
    sha256 text PRIMARY KEY,
    bytes bytea NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE TABLE functions (
    name text PRIMARY KEY,
    latest_version bigint NOT NULL,
    current_version bigint NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE TABLE versions (
    name text NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    version bigint NOT NULL,
    sha256 text NOT NULL REFERENCES blobs (sha256),
    size bigint NOT NULL,
    deployed_at_ms bigint NOT NULL,
    spec text NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX versions_by_sha256 ON versions (sha256);
CREATE TABLE nodes (
    node_id text PRIMARY KEY,
    url text NOT NULL,
    registered_at_ms bigint NOT NULL,
    last_seen_ms bigint NOT NULL,
    functions text NOT NULL,
    stopped_at_ms bigint,
    credential_sha256 text,
    notify_secret text
);
CREATE TABLE events (
    id bigint PRIMARY KEY,
    received_at_ms bigint NOT NULL,
    event text NOT NULL,
    node_id text,
    function text,
    data text NOT NULL
);
CREATE INDEX events_by_function ON events (function, id);
CREATE TABLE event_counter (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_id bigint NOT NULL
);
INSERT INTO event_counter (last_id) VALUES (0);
"#,
    r#"
ALTER TABLE versions ADD COLUMN kind text NOT NULL DEFAULT 'command';
ALTER TABLE versions ADD COLUMN allowed_outbound_hosts text[] NOT NULL DEFAULT '{}';
"#,
];

/// The schema version this build writes and understands.
pub const PG_SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// Key of the advisory lock migrations hold ("aether" in ASCII).
const MIGRATION_LOCK: i64 = 0x6165_7468_6572;

/// Longest wait for a pooled connection (or a new one) before a request is
/// answered "unavailable": a database that is down must not hang callers.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and how to open a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database` (or key=value form).
    pub url: String,
    /// Number of events kept; older ones are dropped. At least 1.
    pub event_retention: u64,
    /// Most connections this process holds.
    pub max_connections: u32,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
}

impl PgOptions {
    /// Options with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            event_retention: DEFAULT_EVENT_RETENTION,
            max_connections: 16,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The pool's own failures (each failed connection attempt, many a second
/// while the database is down) at debug level: what callers get, a
/// [`StoreError::Unavailable`], is what the control plane reports, once.
#[derive(Debug)]
struct QuietPoolErrors;

impl r2d2::HandleError<postgres::Error> for QuietPoolErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::debug!(%error, "database connection attempt failed");
    }
}

/// The PostgreSQL store; cheap to share between threads (a pool).
pub struct PgStore {
    /// Always `Some` until dropped (see the `Drop` impl).
    pool: Option<Pool>,
    event_retention: i64,
}

impl Drop for PgStore {
    /// Closes the connections on a thread of its own: the blocking client
    /// runs a small runtime per connection, and closing one on an async
    /// runtime's worker (where the last `Arc` of a server's state is often
    /// dropped) would panic, turning a graceful stop into an abort.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take()
            && std::thread::spawn(move || drop(pool)).join().is_err()
        {
            warn!("closing the database connections panicked");
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("event_retention", &self.event_retention)
            .finish_non_exhaustive()
    }
}

/// A u64 as PostgreSQL's bigint (values here are versions, sizes, ms
/// timestamps and ids: far below 2^63).
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A bigint read back (never negative as written).
fn small(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { table, source })
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    // Plain structs, string-keyed maps and JSON values always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

/// Whether a failure means "the database cannot be reached right now"
/// rather than "the database refused this".
fn is_unavailable(e: &postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Postgres(e)
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

const VERSION_COLUMNS: &str =
    "v.version, v.sha256, v.size, v.deployed_at_ms, v.spec, v.kind, v.allowed_outbound_hosts";

/// The `spec` column: the settings of a [`DeploySpec`] that have no
/// column of their own.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct SpecText {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: aether_proto::LimitsSpec,
}

impl SpecText {
    fn of(spec: &DeploySpec) -> String {
        encode(&SpecText {
            args: spec.args.clone(),
            env: spec.env.clone(),
            limits: spec.limits.clone(),
        })
    }
}

/// A [`VersionRecord`] from [`VERSION_COLUMNS`] starting at column `at`.
fn version_at(row: &Row, at: usize) -> Result<VersionRecord, StoreError> {
    let text: SpecText = decode("versions", row.try_get(at + 4)?)?;
    let kind: String = row.try_get(at + 5)?;
    let kind = serde_json::from_value(serde_json::Value::String(kind)).map_err(|source| {
        StoreError::Corrupt {
            table: "versions",
            source,
        }
    })?;
    Ok(VersionRecord {
        version: small(row.try_get(at)?),
        sha256: row.try_get(at + 1)?,
        size: small(row.try_get(at + 2)?),
        deployed_at_ms: small(row.try_get(at + 3)?),
        spec: DeploySpec {
            kind,
            allowed_outbound_hosts: row.try_get(at + 6)?,
            args: text.args,
            env: text.env,
            limits: text.limits,
        },
    })
}

const NODE_COLUMNS: &str = "node_id, url, registered_at_ms, last_seen_ms, functions, \
                            stopped_at_ms, credential_sha256, notify_secret";

fn node_from(row: &Row) -> Result<NodeRecord, StoreError> {
    Ok(NodeRecord {
        node_id: row.try_get(0)?,
        url: row.try_get(1)?,
        registered_at_ms: small(row.try_get(2)?),
        last_seen_ms: small(row.try_get(3)?),
        functions: decode::<BTreeMap<String, u64>>("nodes", row.try_get(4)?)?,
        stopped_at_ms: row.try_get::<_, Option<i64>>(5)?.map(small),
        credential_sha256: row.try_get(6)?,
        notify_secret: row.try_get(7)?,
    })
}

const EVENT_COLUMNS: &str = "id, received_at_ms, event, node_id, function, data";

fn event_from(row: &Row) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: small(row.try_get(0)?),
        received_at_ms: small(row.try_get(1)?),
        event: row.try_get(2)?,
        node_id: row.try_get(3)?,
        function: row.try_get(4)?,
        data: decode("events", row.try_get(5)?)?,
    })
}

impl PgStore {
    /// Connects, brings the schema up to [`PG_SCHEMA_VERSION`] (creating
    /// it in an empty database) and removes unreferenced blobs. Fails when the database is
    /// unreachable within the connect timeout or was migrated by a newer
    /// binary ([`StoreError::UnsupportedSchema`]).
    pub fn open(options: PgOptions) -> Result<Self, StoreError> {
        let mut config = postgres::Config::from_str(&options.url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("aether-control");
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            // A pooled connection whose server went away (a restart, a
            // fail-over) is found dead before use, not by the request.
            .test_on_check_out(true)
            .error_handler(Box::new(QuietPoolErrors))
            .build(manager)?;
        let store = PgStore {
            pool: Some(pool),
            event_retention: big(options.event_retention.max(1)),
        };
        store.migrate()?;
        // Blobs a delete cut short (a crash, or the database gone between
        // its commit and the removal) left behind.
        let removed = store.collect_garbage()?.blobs_removed;
        if removed > 0 {
            info!(
                blobs_removed = removed,
                "unreferenced blobs removed at open"
            );
        }
        Ok(store)
    }

    fn client(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is closing".to_owned()))?;
        Ok(pool.get()?)
    }

    /// The schema version the database is at (after [`PgStore::open`]:
    /// [`PG_SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let mut client = self.client()?;
        let row = client.query_one("SELECT coalesce(max(version), 0) FROM aether_schema", &[])?;
        Ok(small(i64::from(row.try_get::<_, i32>(0)?)))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS aether_schema (
                 version integer PRIMARY KEY,
                 applied_at_ms bigint NOT NULL
             )",
        )?;
        let found: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM aether_schema", &[])?
            .try_get(0)?;
        let found = u64::try_from(found).unwrap_or(0);
        if found > PG_SCHEMA_VERSION {
            return Err(StoreError::UnsupportedSchema {
                found,
                supported: PG_SCHEMA_VERSION,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
            tx.batch_execute(migration)?;
            tx.execute(
                "INSERT INTO aether_schema (version, applied_at_ms) VALUES ($1, $2)",
                &[&version, &big(now_ms())],
            )?;
            info!(version, "database schema migrated");
        }
        tx.commit()?;
        Ok(())
    }

    /// The current version of `name` inside `tx`, if any.
    fn current_in(
        tx: &mut Transaction<'_>,
        name: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let row = tx.query_typed_opt(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM functions f \
                 JOIN versions v ON v.name = f.name AND v.version = f.current_version \
                 WHERE f.name = $1"
            ),
            &[(&name, Type::TEXT)],
        )?;
        row.map(|r| version_at(&r, 0)).transpose()
    }

    /// Makes sure the blob is stored and stays until `tx` commits: an
    /// existing one is locked against a concurrent collection (`FOR KEY
    /// SHARE`) and not sent again; a new one is inserted.
    fn hold_blob(tx: &mut Transaction<'_>, sha: &str, wasm: &[u8]) -> Result<(), StoreError> {
        loop {
            if tx
                .query_typed_opt(
                    "SELECT 1 FROM blobs WHERE sha256 = $1 FOR KEY SHARE",
                    &[(&sha, Type::TEXT)],
                )?
                .is_some()
            {
                return Ok(());
            }
            let inserted = tx.execute_typed(
                "INSERT INTO blobs (sha256, bytes, created_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (sha256) DO NOTHING",
                &[
                    (&sha, Type::TEXT),
                    (&wasm, Type::BYTEA),
                    (&big(now_ms()), Type::INT8),
                ],
            )?;
            if inserted == 1 {
                return Ok(());
            }
            // Another writer inserted it between the two statements (and
            // a collection may remove it again before we lock it): retry.
        }
    }

    /// Removes the blobs among `candidates` (all, when `None`) that no
    /// version references. The foreign key makes the database refuse to
    /// remove one a concurrent deploy just referenced; that attempt is
    /// given up and left to the next collection.
    fn remove_unreferenced(&self, candidates: Option<&[String]>) -> Result<usize, StoreError> {
        let mut client = self.client()?;
        let result = match candidates {
            Some([]) => return Ok(0),
            Some(list) => client.execute(
                "DELETE FROM blobs b WHERE b.sha256 = ANY($1) \
                 AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.sha256 = b.sha256)",
                &[&list],
            ),
            None => client.execute(
                "DELETE FROM blobs b \
                 WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.sha256 = b.sha256)",
                &[],
            ),
        };
        match result {
            Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                info!(
                    "a blob being collected was referenced again meanwhile; collection left for later"
                );
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Store for PgStore {
    fn deploy(
        &self,
        name: &str,
        wasm: &[u8],
        spec: &DeploySpec,
    ) -> Result<DeployOutcome, StoreError> {
        validate_function_name(name)?;
        let sha = sha256_hex(wasm);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Cheap check first: an identical redeploy sends no bytes.
        if let Some(current) = Self::current_in(&mut tx, name)?
            && current.is_redeployed_by(&sha, spec)
        {
            return Ok(DeployOutcome::Unchanged(current));
        }
        Self::hold_blob(&mut tx, &sha, wasm)?;
        let now = big(now_ms());
        tx.execute_typed(
            "INSERT INTO functions (name, latest_version, current_version, created_at_ms) \
             VALUES ($1, 0, 0, $2) ON CONFLICT (name) DO NOTHING",
            &[(&name, Type::TEXT), (&now, Type::INT8)],
        )?;
        // The function's row locked, with its current version (re-checked
        // under the lock: a concurrent identical deploy may have committed
        // since the check above).
        let row = tx.query_typed_one(
            &format!(
                "SELECT f.latest_version, {VERSION_COLUMNS} FROM functions f \
                 LEFT JOIN versions v ON v.name = f.name AND v.version = f.current_version \
                 WHERE f.name = $1 FOR UPDATE OF f"
            ),
            &[(&name, Type::TEXT)],
        )?;
        let latest: i64 = row.try_get(0)?;
        if row.try_get::<_, Option<i64>>(1)?.is_some() {
            let current = version_at(&row, 1)?;
            if current.is_redeployed_by(&sha, spec) {
                return Ok(DeployOutcome::Unchanged(current));
            }
        }
        let record = VersionRecord {
            version: small(latest) + 1,
            sha256: sha.clone(),
            size: wasm.len() as u64,
            deployed_at_ms: small(now),
            spec: spec.clone(),
        };
        let version = big(record.version);
        let spec_text = SpecText::of(spec);
        let kind = spec.kind.as_str();
        // The new version and the current pointer in one round trip.
        tx.execute_typed(
            "WITH added AS ( \
                 INSERT INTO versions (name, version, sha256, size, deployed_at_ms, spec, \
                                       kind, allowed_outbound_hosts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING name) \
             UPDATE functions SET latest_version = $2, current_version = $2 \
             WHERE name = (SELECT name FROM added)",
            &[
                (&name, Type::TEXT),
                (&version, Type::INT8),
                (&sha, Type::TEXT),
                (&big(record.size), Type::INT8),
                (&now, Type::INT8),
                (&spec_text, Type::TEXT),
                (&kind, Type::TEXT),
                (&spec.allowed_outbound_hosts, Type::TEXT_ARRAY),
            ],
        )?;
        tx.commit()?;
        Ok(DeployOutcome::Created(record))
    }

    fn function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        validate_function_name(name)?;
        let mut client = self.client()?;
        // One statement: one snapshot, even while a deploy commits.
        let rows = client.query_typed(
            &format!(
                "SELECT f.current_version, f.created_at_ms, {VERSION_COLUMNS} FROM functions f \
                 JOIN versions v ON v.name = f.name WHERE f.name = $1 ORDER BY v.version"
            ),
            &[(&name, Type::TEXT)],
        )?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(FunctionRecord {
            name: name.to_owned(),
            current_version: small(first.try_get(0)?),
            created_at_ms: small(first.try_get(1)?),
            versions: rows
                .iter()
                .map(|r| version_at(r, 2))
                .collect::<Result<_, _>>()?,
        }))
    }

    fn current_versions(&self) -> Result<Vec<(String, VersionRecord)>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query_typed(
            &format!(
                "SELECT f.name, {VERSION_COLUMNS} FROM functions f \
                 JOIN versions v ON v.name = f.name AND v.version = f.current_version \
                 ORDER BY f.name"
            ),
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, version_at(r, 1)?)))
            .collect()
    }

    fn function_count(&self) -> Result<u64, StoreError> {
        let mut client = self.client()?;
        let row = client.query_typed_one("SELECT count(*) FROM functions", &[])?;
        Ok(small(row.try_get(0)?))
    }

    fn version(&self, name: &str, version: Option<u64>) -> Result<VersionRecord, StoreError> {
        validate_function_name(name)?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let found = match version {
            None => Self::current_in(&mut tx, name)?,
            Some(v) => tx
                .query_opt(
                    &format!(
                        "SELECT {VERSION_COLUMNS} FROM versions v \
                         WHERE v.name = $1 AND v.version = $2"
                    ),
                    &[&name, &big(v)],
                )?
                .map(|r| version_at(&r, 0))
                .transpose()?,
        };
        if let Some(found) = found {
            return Ok(found);
        }
        let exists = tx
            .query_opt("SELECT 1 FROM functions WHERE name = $1", &[&name])?
            .is_some();
        match version {
            Some(version) if exists => Err(StoreError::VersionNotFound {
                name: name.to_owned(),
                version,
            }),
            _ => Err(StoreError::FunctionNotFound {
                name: name.to_owned(),
            }),
        }
    }

    fn rollback(&self, name: &str, version: u64) -> Result<VersionRecord, StoreError> {
        validate_function_name(name)?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if tx
            .query_opt(
                "SELECT 1 FROM functions WHERE name = $1 FOR UPDATE",
                &[&name],
            )?
            .is_none()
        {
            return Err(StoreError::FunctionNotFound {
                name: name.to_owned(),
            });
        }
        let Some(row) = tx.query_opt(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.name = $1 AND v.version = $2"
            ),
            &[&name, &big(version)],
        )?
        else {
            return Err(StoreError::VersionNotFound {
                name: name.to_owned(),
                version,
            });
        };
        let record = version_at(&row, 0)?;
        tx.execute(
            "UPDATE functions SET current_version = $2 WHERE name = $1",
            &[&name, &big(version)],
        )?;
        tx.commit()?;
        Ok(record)
    }

    fn delete(&self, name: &str) -> Result<FunctionRecord, StoreError> {
        validate_function_name(name)?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let Some(meta) = tx.query_opt(
            "SELECT current_version, created_at_ms FROM functions WHERE name = $1 FOR UPDATE",
            &[&name],
        )?
        else {
            return Err(StoreError::FunctionNotFound {
                name: name.to_owned(),
            });
        };
        let versions = tx
            .query(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.name = $1 ORDER BY v.version"
                ),
                &[&name],
            )?
            .iter()
            .map(|r| version_at(r, 0))
            .collect::<Result<Vec<_>, _>>()?;
        tx.execute("DELETE FROM functions WHERE name = $1", &[&name])?;
        tx.commit()?;
        drop(client);
        let mut candidates: Vec<String> = versions.iter().map(|v| v.sha256.clone()).collect();
        candidates.sort();
        candidates.dedup();
        // The function is gone whatever happens here: a failure only
        // leaves an orphan that the next collection removes.
        if let Err(e) = self.remove_unreferenced(Some(&candidates)) {
            warn!(function = name, error = %e, "removing unreferenced blobs failed; left for the next collection");
        }
        Ok(FunctionRecord {
            name: name.to_owned(),
            current_version: small(meta.try_get(0)?),
            created_at_ms: small(meta.try_get(1)?),
            versions,
        })
    }

    fn read_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let mut client = self.client()?;
        match client.query_typed_opt(
            "SELECT bytes FROM blobs WHERE sha256 = $1",
            &[(&sha256, Type::TEXT)],
        )? {
            Some(row) => Ok(row.try_get(0)?),
            None => Err(StoreError::BlobMissing {
                sha256: sha256.to_owned(),
            }),
        }
    }

    fn collect_garbage(&self) -> Result<GcReport, StoreError> {
        Ok(GcReport {
            blobs_removed: self.remove_unreferenced(None)?,
            // No temporary files, and the foreign key keeps every
            // referenced blob.
            temp_files_removed: 0,
            blobs_missing: 0,
        })
    }

    fn upsert_node(&self, heartbeat: NodeHeartbeat) -> Result<NodeRecord, StoreError> {
        let mut client = self.client()?;
        let now = big(now_ms());
        let row = client.query_typed_one(
            &format!(
                "INSERT INTO nodes (node_id, url, registered_at_ms, last_seen_ms, functions) \
                 VALUES ($1, $2, $3, $3, $4) \
                 ON CONFLICT (node_id) DO UPDATE SET url = EXCLUDED.url, \
                 last_seen_ms = EXCLUDED.last_seen_ms, functions = EXCLUDED.functions, \
                 stopped_at_ms = NULL \
                 RETURNING {NODE_COLUMNS}"
            ),
            &[
                (&heartbeat.node_id, Type::TEXT),
                (&heartbeat.url, Type::TEXT),
                (&now, Type::INT8),
                (&encode(&heartbeat.functions), Type::TEXT),
            ],
        )?;
        node_from(&row)
    }

    fn join_node(&self, join: NodeJoin) -> Result<NodeRecord, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let now = big(now_ms());
        // Creates the row if new, then locks it: two joins of one id
        // (through two replicas) are serialised, and only one succeeds.
        tx.execute(
            "INSERT INTO nodes (node_id, url, registered_at_ms, last_seen_ms, functions) \
             VALUES ($1, $2, $3, $3, '{}') ON CONFLICT (node_id) DO NOTHING",
            &[&join.node_id, &join.url, &now],
        )?;
        let held: Option<String> = tx
            .query_one(
                "SELECT credential_sha256 FROM nodes WHERE node_id = $1 FOR UPDATE",
                &[&join.node_id],
            )?
            .try_get(0)?;
        if held.is_some() {
            return Err(StoreError::NodeExists {
                node_id: join.node_id,
            });
        }
        let row = tx.query_one(
            &format!(
                "UPDATE nodes SET url = $2, last_seen_ms = $3, stopped_at_ms = NULL, \
                 credential_sha256 = $4, notify_secret = $5 WHERE node_id = $1 \
                 RETURNING {NODE_COLUMNS}"
            ),
            &[
                &join.node_id,
                &join.url,
                &now,
                &join.credential_sha256,
                &join.notify_secret,
            ],
        )?;
        let record = node_from(&row)?;
        tx.commit()?;
        Ok(record)
    }

    fn remove_node(&self, node_id: &str) -> Result<NodeRecord, StoreError> {
        let mut client = self.client()?;
        match client.query_opt(
            &format!("DELETE FROM nodes WHERE node_id = $1 RETURNING {NODE_COLUMNS}"),
            &[&node_id],
        )? {
            Some(row) => node_from(&row),
            None => Err(StoreError::NodeNotFound {
                node_id: node_id.to_owned(),
            }),
        }
    }

    fn node(&self, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let mut client = self.client()?;
        client
            .query_opt(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = $1"),
                &[&node_id],
            )?
            .map(|r| node_from(&r))
            .transpose()
    }

    fn mark_node_stopped(&self, node_id: &str) -> Result<bool, StoreError> {
        let mut client = self.client()?;
        let n = client.execute(
            "UPDATE nodes SET stopped_at_ms = $2 WHERE node_id = $1",
            &[&node_id, &big(now_ms())],
        )?;
        Ok(n > 0)
    }

    fn prune_nodes(&self, before_ms: u64) -> Result<Vec<String>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "DELETE FROM nodes WHERE last_seen_ms < $1 RETURNING node_id",
            &[&big(before_ms)],
        )?;
        let mut pruned: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        pruned.sort();
        Ok(pruned)
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let mut client = self.client()?;
        client
            .query_typed(
                &format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id"),
                &[],
            )?
            .iter()
            .map(node_from)
            .collect()
    }

    fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let count = big(events.len() as u64);
        // The row lock on the counter is held until commit: see the module
        // documentation for why that makes paging exact.
        let last: i64 = tx
            .query_one(
                "UPDATE event_counter SET last_id = last_id + $1 RETURNING last_id",
                &[&count],
            )?
            .try_get(0)?;
        let now = now_ms();
        let insert = tx.prepare(
            "INSERT INTO events (id, received_at_ms, event, node_id, function, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )?;
        let mut stored = Vec::with_capacity(events.len());
        for (offset, e) in events.into_iter().enumerate() {
            let record = EventRecord {
                id: small(last - count) + offset as u64 + 1,
                received_at_ms: now,
                event: e.event,
                node_id: e.node_id,
                function: e.function,
                data: e.data,
            };
            tx.execute(
                &insert,
                &[
                    &big(record.id),
                    &big(now),
                    &record.event,
                    &record.node_id,
                    &record.function,
                    &encode(&record.data),
                ],
            )?;
            stored.push(record);
        }
        if last > self.event_retention {
            tx.execute(
                "DELETE FROM events WHERE id <= $1",
                &[&(last - self.event_retention)],
            )?;
        }
        tx.commit()?;
        Ok(stored)
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        if query.limit == 0 || query.since >= i64::MAX as u64 {
            return Ok(Vec::new());
        }
        let mut client = self.client()?;
        let since = big(query.since);
        let limit = big(query.limit as u64);
        // Each filter is a parameter; a NULL one admits everything. The
        // function filter has its own index (events_by_function).
        let rows = client.query_typed(
            &format!(
                "SELECT * FROM ( \
                     SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 \
                     AND ($3::text IS NULL OR function = $3) \
                     AND ($4::text IS NULL OR node_id = $4) \
                     AND ($5::text IS NULL OR event = $5) \
                     ORDER BY id {order} LIMIT $2 \
                 ) page ORDER BY id",
                order = if query.newest { "DESC" } else { "ASC" }
            ),
            &[
                (&since, Type::INT8),
                (&limit, Type::INT8),
                (&query.function, Type::TEXT),
                (&query.node_id, Type::TEXT),
                (&query.kind, Type::TEXT),
            ],
        )?;
        rows.iter().map(event_from).collect()
    }

    fn is_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::contract::{Backend, contract_tests};

    /// A fresh database on the test process's PostgreSQL server.
    struct PgBackend {
        url: String,
    }

    impl PgBackend {
        fn store(&self, retention: u64) -> PgStore {
            PgStore::open(PgOptions {
                event_retention: retention,
                ..PgOptions::new(&self.url)
            })
            .unwrap()
        }
    }

    impl Backend for PgBackend {
        fn open(&self, retention: u64) -> Arc<dyn Store> {
            Arc::new(self.store(retention))
        }
    }

    /// `None` (after saying why, or failing under CI) without PostgreSQL.
    fn backend() -> Option<PgBackend> {
        match aether_fixtures::postgres::shared() {
            Ok(cluster) => Some(PgBackend {
                url: cluster.fresh_database("store").unwrap(),
            }),
            Err(reason) => {
                aether_fixtures::skip_or_fail(&format!("no PostgreSQL server: {reason}"));
                None
            }
        }
    }

    contract_tests!(backend());

    #[test]
    fn concurrent_deploys_of_one_name_through_two_replicas_get_distinct_gapless_versions() {
        let Some(b) = backend() else { return };
        let replicas = [Arc::new(b.store(100)), Arc::new(b.store(100))];
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = replicas[t % 2].clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            let bytes = format!("module {t}-{i}");
                            let out = store
                                .deploy("contended", bytes.as_bytes(), &DeploySpec::default())
                                .unwrap();
                            assert!(out.created());
                            (out.record().version, sha256_hex(bytes.as_bytes()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acknowledged: Vec<(u64, String)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        acknowledged.sort();
        let versions: Vec<u64> = acknowledged.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            versions,
            (1..=100).collect::<Vec<_>>(),
            "distinct and gapless"
        );
        // Every replica reads the same history, each version with the
        // bytes whose deploy was acknowledged with its number.
        for replica in &replicas {
            let f = replica.function("contended").unwrap().unwrap();
            let stored: Vec<(u64, String)> = f
                .versions
                .iter()
                .map(|v| (v.version, v.sha256.clone()))
                .collect();
            assert_eq!(stored, acknowledged);
            assert_eq!(f.current_version, 100);
        }
    }

    #[test]
    fn event_paging_neither_skips_nor_repeats_while_replicas_append_at_once() {
        let Some(b) = backend() else { return };
        let replicas = [Arc::new(b.store(1_000_000)), Arc::new(b.store(1_000_000))];
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = replicas[t % 2].clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        // Batches of 1 to 3: a batch's ids are contiguous.
                        let batch = (0..=(i % 3))
                            .map(|_| NewEvent {
                                event: "e".into(),
                                node_id: Some(format!("w{t}")),
                                function: None,
                                data: serde_json::json!(i),
                            })
                            .collect();
                        store.append_events(batch).unwrap();
                    }
                })
            })
            .collect();
        let expected: u64 = 4 * (0..100u64).map(|i| i % 3 + 1).sum::<u64>();
        // A reader pages through while they write, as `aether events
        // --follow` does, alternating replicas.
        let mut seen = Vec::new();
        let mut since = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while (seen.len() as u64) < expected {
            assert!(Instant::now() < deadline, "only {} events seen", seen.len());
            let page = replicas[seen.len() % 2]
                .events(&EventQuery {
                    since,
                    limit: 7,
                    function: None,
                    ..Default::default()
                })
                .unwrap();
            if let Some(last) = page.last() {
                since = last.id;
            }
            seen.extend(page.into_iter().map(|e| e.id));
        }
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(
            seen,
            (1..=expected).collect::<Vec<_>>(),
            "every id once, in order"
        );
    }

    #[test]
    fn replicas_opening_an_empty_database_at_once_initialise_it_exactly_once() {
        let Some(b) = backend() else { return };
        let url = Arc::new(b.url.clone());
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || PgStore::open(PgOptions::new(url.as_str())))
            })
            .collect();
        let stores: Vec<PgStore> = opens
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        let mut client = stores[0].client().unwrap();
        let rows = client
            .query("SELECT version FROM aether_schema ORDER BY version", &[])
            .unwrap();
        let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(versions, (1..=PG_SCHEMA_VERSION as i32).collect::<Vec<_>>());
        let counters: i64 = client
            .query_one("SELECT count(*) FROM event_counter", &[])
            .unwrap()
            .get(0);
        assert_eq!(counters, 1);
    }

    #[test]
    fn open_removes_blobs_a_cut_short_delete_left_but_keeps_referenced_ones() {
        let Some(b) = backend() else { return };
        let store = b.store(100);
        store
            .deploy("kept", b"kept", &DeploySpec::default())
            .unwrap();
        // What a delete leaves when it dies between its commit and the
        // blob removal: a blob row nothing references.
        let orphan = sha256_hex(b"orphan");
        store
            .client()
            .unwrap()
            .execute(
                "INSERT INTO blobs (sha256, bytes, created_at_ms) VALUES ($1, $2, 0)",
                &[&orphan, &&b"orphan"[..]],
            )
            .unwrap();
        drop(store);
        let store = b.store(100);
        assert!(matches!(
            store.read_blob(&orphan),
            Err(StoreError::BlobMissing { .. })
        ));
        assert_eq!(store.read_blob(&sha256_hex(b"kept")).unwrap(), b"kept");
    }

    #[test]
    fn a_database_at_schema_1_is_migrated_and_its_versions_read_as_commands_without_hosts() {
        let Some(b) = backend() else { return };
        {
            // What a control plane before function kinds left behind.
            let mut client = postgres::Client::connect(&b.url, NoTls).unwrap();
            client
                .batch_execute(
                    "CREATE TABLE aether_schema (
                         version integer PRIMARY KEY,
                         applied_at_ms bigint NOT NULL
                     )",
                )
                .unwrap();
            client.batch_execute(MIGRATIONS[0]).unwrap();
            client
                .batch_execute(&format!(
                    "INSERT INTO aether_schema VALUES (1, 0);
                     INSERT INTO blobs VALUES ('{sha}', 'old', 0);
                     INSERT INTO functions VALUES ('old', 1, 1, 0);
                     INSERT INTO versions VALUES ('old', 1, '{sha}', 3, 0,
                         '{{\"args\":[\"a\"],\"env\":{{\"K\":\"V\"}},\"limits\":{{\"timeout\":\"1s\"}}}}');",
                    sha = sha256_hex(b"old"),
                ))
                .unwrap();
        }
        let store = b.store(100);
        assert_eq!(store.schema_version().unwrap(), PG_SCHEMA_VERSION);
        let old = store.version("old", None).unwrap();
        assert_eq!(old.spec.kind, aether_proto::control::FunctionKind::Command);
        assert!(old.spec.allowed_outbound_hosts.is_empty());
        assert_eq!(old.spec.args, ["a"]);
        assert_eq!(old.spec.env["K"], "V");
        assert_eq!(old.spec.limits.timeout.as_deref(), Some("1s"));
        // Redeploying it as it was changes nothing.
        assert!(!store.deploy("old", b"old", &old.spec).unwrap().created());
    }

    #[test]
    fn a_database_migrated_by_a_newer_binary_is_refused() {
        let Some(b) = backend() else { return };
        let store = b.store(100);
        store
            .client()
            .unwrap()
            .execute(
                "INSERT INTO aether_schema (version, applied_at_ms) VALUES (99, 0)",
                &[],
            )
            .unwrap();
        drop(store);
        let err = PgStore::open(PgOptions::new(&b.url)).unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedSchema { found: 99, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_unavailable_within_the_connect_timeout() {
        let port = aether_fixtures::free_port();
        let started = Instant::now();
        let err = PgStore::open(PgOptions {
            connect_timeout: Duration::from_millis(500),
            ..PgOptions::new(format!("postgres://aether@127.0.0.1:{port}/aether"))
        })
        .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let bad = PgStore::open(PgOptions::new("postgres://[::1")).unwrap_err();
        assert!(matches!(bad, StoreError::InvalidUrl(_)), "{bad:?}");
    }

    #[test]
    fn a_blob_is_stored_once_however_many_functions_and_replicas_reference_it() {
        let Some(b) = backend() else { return };
        let replicas = [b.store(100), b.store(100)];
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            replicas[i % 2]
                .deploy(name, b"same bytes", &DeploySpec::default())
                .unwrap();
        }
        let mut client = replicas[0].client().unwrap();
        let blobs: i64 = client
            .query_one("SELECT count(*) FROM blobs", &[])
            .unwrap()
            .get(0);
        assert_eq!(blobs, 1);
        let names: BTreeSet<String> = replicas[1]
            .current_versions()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names.len(), 4);
    }
}
