//! The store's error type.

use std::path::PathBuf;

use aether_proto::NameError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The name does not match the function-name pattern.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No function with that name.
    #[error("function {name} not found")]
    FunctionNotFound {
        /// The name asked for.
        name: String,
    },
    /// The function exists but not that version.
    #[error("function {name} has no version {version}")]
    VersionNotFound {
        /// The function.
        name: String,
        /// The version asked for.
        version: u64,
    },
    /// A node with that id has joined already (it holds a credential).
    #[error("node {node_id} has joined already; remove it first (aether nodes remove {node_id})")]
    NodeExists {
        /// The id asked for.
        node_id: String,
    },
    /// No node with that id.
    #[error("node {node_id} not found")]
    NodeNotFound {
        /// The id asked for.
        node_id: String,
    },
    /// A blob referenced by metadata is not on disk.
    #[error("blob {sha256} is missing")]
    BlobMissing {
        /// The blob's sha256.
        sha256: String,
    },
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The embedded database failed.
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// The database file failed the integrity check at open; it was not
    /// opened for writing and is exactly as it was.
    #[error("database {path} is damaged and was left as it is: {source}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What the check found.
        source: redb::DatabaseError,
    },
    /// A stored record could not be decoded.
    #[error("corrupt record in table {table}: {source}")]
    Corrupt {
        /// The table holding it.
        table: &'static str,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// The database server cannot be reached right now (down, restarting,
    /// out of connections, or no connection within the connect timeout):
    /// worth retrying, unlike the other errors.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The PostgreSQL server refused a statement.
    #[error("database: {0}")]
    Postgres(#[source] postgres::Error),
    /// The database URL could not be read.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database was written by a newer, incompatible version.
    #[error("database schema version {found} is newer than the supported {supported}")]
    UnsupportedSchema {
        /// Version found in the file.
        found: u64,
        /// Version this build understands.
        supported: u64,
    },
}

impl StoreError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
