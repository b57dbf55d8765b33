//! The check of an existing database file before it is opened for writing.
//!
//! A plain redb open trusts a file that was shut down cleanly: it marks the
//! file in use (a header write) before reading most of it, and a damaged
//! page then panics deep inside redb, or passes unnoticed until a request
//! reads it. redb's integrity check verifies the checksum of every page of
//! the committed trees and reports damage as an error, but it commits a
//! repair as part of the open. So it runs here on a copy of the file in
//! memory: a damaged file is refused exactly as it is on disk, and only a
//! file that passed is opened for writing.

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use redb::backends::FileBackend;
use redb::{BackendError, Database, DatabaseError, StorageBackend};

use crate::error::StoreError;

/// Read cache of the check. The file it reads is in memory already, so a
/// larger cache would only hold second copies of its pages.
const CHECK_CACHE_SIZE: usize = 1 << 20;

/// Runs redb's integrity check of the database at `path` without changing
/// the file.
///
/// A database open elsewhere is reported as such, not as damage: the check
/// takes the file's locks as a normal open does.
pub(crate) fn check(path: &Path) -> Result<(), StoreError> {
    // Writable only because redb's exclusive lock needs it; nothing is
    // written through this handle.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io("opening database", path, e))?;
    let backend = MemoryCopy {
        file: FileBackend::new(file)?,
        copy: Mutex::new(None),
    };
    let checked = Database::builder()
        .set_check_integrity_on_open(true)
        .set_cache_size(CHECK_CACHE_SIZE)
        .create_with_backend(backend);
    match checked {
        Ok(_) => Ok(()),
        // What the file holds failed: a page, the header, the length.
        Err(source @ DatabaseError::Storage(_)) => Err(StoreError::Damaged {
            path: path.to_owned(),
            source,
        }),
        // Open elsewhere, an older format: not damage.
        Err(other) => Err(other.into()),
    }
}

/// The database file as redb sees it during the check: locked like the
/// file, read into memory on first use (after the locks are taken), written
/// only in memory.
struct MemoryCopy {
    file: FileBackend,
    copy: Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for MemoryCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCopy")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "beyond the end of the database",
    )
}

/// The byte range `offset..offset + len` as indices into the copy (whether
/// it lies inside the copy is checked by the caller's `get`).
fn span(offset: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(|_| out_of_range())?;
    let end = start.checked_add(len).ok_or_else(out_of_range)?;
    Ok(start..end)
}

impl MemoryCopy {
    fn with_copy<T>(&self, f: impl FnOnce(&mut Vec<u8>) -> io::Result<T>) -> io::Result<T> {
        let mut copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        if copy.is_none() {
            let len = usize::try_from(self.file.len()?).map_err(|_| out_of_range())?;
            let mut bytes = vec![0; len];
            self.file.read(0, &mut bytes)?;
            *copy = Some(bytes);
        }
        f(copy.get_or_insert_default())
    }
}

impl StorageBackend for MemoryCopy {
    fn len(&self) -> io::Result<u64> {
        self.with_copy(|bytes| Ok(bytes.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.with_copy(|bytes| {
            let source = bytes
                .get(span(offset, out.len())?)
                .ok_or_else(out_of_range)?;
            out.copy_from_slice(source);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_copy(|bytes| {
            bytes.resize(usize::try_from(len).map_err(|_| out_of_range())?, 0);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with_copy(|bytes| {
            let target = bytes
                .get_mut(span(offset, data.len())?)
                .ok_or_else(out_of_range)?;
            target.copy_from_slice(data);
            Ok(())
        })
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
