//! Precompiled artifacts on disk, so a restarted edge is warm without
//! recompiling. The only module in Aether that uses `unsafe`:
//! `Module::deserialize` trusts its input, so it is only ever given bytes
//! that (1) this process family wrote into a directory it owns (mode 0700),
//! (2) carry a sha256 of their payload that still matches (catches torn
//! writes and bit rot), and (3) are named after this engine's compatibility
//! hash (wasmtime also refuses artifacts from another engine config).
//! Anything else is deleted and the module recompiled from its wasm.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::cache::ModuleHash;

/// File header: identifies the format version of our artifact wrapper.
const MAGIC: &[u8; 8] = b"AETHCW01";
const HEADER_LEN: usize = MAGIC.len() + 32;

pub(crate) struct ArtifactStore {
    dir: PathBuf,
    engine_tag: String,
}

impl ArtifactStore {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ArtifactStore {
            dir: dir.to_owned(),
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, hash: &ModuleHash) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hash.to_hex(), self.engine_tag))
    }

    /// Loads the artifact of `hash`, or `None` when there is none or it is
    /// not trustworthy (then it is removed).
    pub(crate) fn load(&self, engine: &Engine, hash: &ModuleHash) -> Option<Module> {
        let path = self.path(hash);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read compiled artifact; recompiling");
                return None;
            }
        };
        let payload = match split_checked(&bytes) {
            Some(payload) => payload,
            None => {
                self.discard(&path, "header or checksum mismatch");
                return None;
            }
        };
        // SAFETY: `payload` was written by `store` below into our own 0700
        // directory, from `Module::serialize` of this engine configuration
        // (the file name carries the engine's compatibility hash), and its
        // sha256 was verified just now, so it is exactly what we wrote.
        match unsafe { Module::deserialize(engine, payload) } {
            Ok(module) => Some(module),
            Err(e) => {
                self.discard(&path, &format!("{e:#}"));
                None
            }
        }
    }

    fn discard(&self, path: &Path, why: &str) {
        tracing::warn!(path = %path.display(), why, "discarding untrusted compiled artifact; recompiling");
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove compiled artifact");
        }
    }

    /// Writes the artifact of `module` atomically (temp file + rename). No
    /// fsync: this is a cache, and a torn file fails its checksum.
    pub(crate) fn store(&self, hash: &ModuleHash, module: &Module) -> std::io::Result<()> {
        let payload = module.serialize().map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(&payload))?;
        tmp.write_all(&payload)?;
        tmp.persist(self.path(hash)).map_err(|e| e.error)?;
        Ok(())
    }
}

fn split_checked(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    let digest: [u8; 32] = Sha256::digest(payload).into();
    (header[MAGIC.len()..] == digest).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_detects_truncation_and_flips() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&Sha256::digest(b"payload"));
        bytes.extend_from_slice(b"payload");
        assert_eq!(split_checked(&bytes), Some(&b"payload"[..]));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(split_checked(&flipped), None);
        assert_eq!(split_checked(&bytes[..bytes.len() - 1]), None);
        assert_eq!(split_checked(&bytes[..4]), None);
    }
}
