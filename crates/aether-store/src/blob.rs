//! Content-addressed wasm blobs: `<dir>/<sha256>.wasm`, written so that a
//! crash at any instant leaves either no file or a complete one under the
//! final name.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Prefix of temporary files; anything with it is debris from an
/// interrupted write and may be removed when no write is in progress.
const TEMP_PREFIX: &str = ".upload-";

/// Extension of a stored blob.
const BLOB_SUFFIX: &str = ".wasm";

/// A directory of blobs named by their sha256.
#[derive(Debug)]
pub(crate) struct BlobDir {
    dir: PathBuf,
}

/// What a directory listing found.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// sha256 of every complete blob.
    pub blobs: Vec<String>,
    /// Paths of temporary files.
    pub temp_files: Vec<PathBuf>,
}

/// `true` for 64 lowercase hex digits: the only names that become paths.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobDir {
    /// Opens (creating if needed) a blob directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io("creating blob directory", dir, e))?;
        Ok(BlobDir {
            dir: dir.to_owned(),
        })
    }

    /// Where the blob with this sha256 lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}{BLOB_SUFFIX}"))
    }

    /// Writes `bytes` under `sha256` durably: temp file, fsync, rename,
    /// fsync of the directory. When the blob exists already only the
    /// directory is fsynced (another writer may have renamed it without
    /// having fsynced the directory yet).
    pub fn write(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        debug_assert!(is_sha256_hex(sha256));
        let path = self.path(sha256);
        let complete = match fs::metadata(&path) {
            Ok(meta) => meta.len() == bytes.len() as u64,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(StoreError::io("inspecting blob", &path, e)),
        };
        if !complete {
            let mut tmp = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .suffix(".tmp")
                .tempfile_in(&self.dir)
                .map_err(|e| StoreError::io("creating temporary blob in", &self.dir, e))?;
            tmp.write_all(bytes)
                .map_err(|e| StoreError::io("writing", tmp.path(), e))?;
            tmp.as_file()
                .sync_all()
                .map_err(|e| StoreError::io("syncing", tmp.path(), e))?;
            tmp.persist(&path)
                .map_err(|e| StoreError::io("renaming blob to", &path, e.error))?;
        }
        self.sync_dir()
    }

    /// Reads a blob.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        if !is_sha256_hex(sha256) {
            return Err(StoreError::BlobMissing {
                sha256: sha256.to_owned(),
            });
        }
        let path = self.path(sha256);
        fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::BlobMissing {
                sha256: sha256.to_owned(),
            },
            _ => StoreError::io("reading blob", path, e),
        })
    }

    /// Whether a blob is present.
    pub fn exists(&self, sha256: &str) -> Result<bool, StoreError> {
        let path = self.path(sha256);
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("inspecting blob", path, e)),
        }
    }

    /// Removes a blob; absent already is fine. The caller decides whether
    /// to fsync the directory (a removal that is lost in a crash only
    /// leaves an orphan for the next collection).
    pub fn remove(&self, sha256: &str) -> Result<(), StoreError> {
        remove_file(&self.path(sha256))
    }

    /// Removes a temporary file left by an interrupted write.
    pub fn remove_temp(&self, path: &Path) -> Result<(), StoreError> {
        remove_file(path)
    }

    /// Lists blobs and temporary files; other files are left alone.
    pub fn list(&self) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        let entries =
            fs::read_dir(&self.dir).map_err(|e| StoreError::io("listing", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("listing", &self.dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name.starts_with(TEMP_PREFIX) {
                listing.temp_files.push(entry.path());
            } else if let Some(sha) = name.strip_suffix(BLOB_SUFFIX)
                && is_sha256_hex(sha)
            {
                listing.blobs.push(sha.to_owned());
            }
        }
        Ok(listing)
    }

    /// fsyncs the directory so renames and removals in it are durable.
    pub fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("syncing directory", &self.dir, e))
    }
}

fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("removing", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_hex;

    #[test]
    fn written_blob_reads_back_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        let sha = sha256_hex(b"abc");
        blobs.write(&sha, b"abc").unwrap();
        blobs.write(&sha, b"abc").unwrap();
        assert_eq!(blobs.read(&sha).unwrap(), b"abc");
        let listing = blobs.list().unwrap();
        assert_eq!(listing.blobs, vec![sha]);
        assert!(listing.temp_files.is_empty());
    }

    #[test]
    fn names_that_are_not_hashes_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        assert!(matches!(
            blobs.read("../etc/passwd"),
            Err(StoreError::BlobMissing { .. })
        ));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(is_sha256_hex(&"a".repeat(64)));
    }
}
