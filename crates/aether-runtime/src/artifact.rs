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
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use crate::cache::ModuleHash;

/// File header: identifies the format version of our artifact wrapper.
const MAGIC: &[u8; 8] = b"AETHCW01";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// Compiled code: a core module or a component.
pub(crate) enum Compiled {
    /// A core module (preview 1).
    Module(Module),
    /// A component (preview 2).
    Component(Component),
}

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
        let store = ArtifactStore {
            dir: dir.to_owned(),
            engine_tag: engine_tag(engine),
        };
        store.remove_unusable();
        Ok(store)
    }

    /// Removes what this engine can never load: artifacts named after
    /// another engine (an older wasmtime or other settings) and temporary
    /// files of writes cut short. Failures are logged; the cache still
    /// works without the cleanup.
    fn remove_unusable(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let current = format!("-{}.cwasm", self.engine_tag);
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unusable =
                (name.ends_with(".cwasm") && !name.ends_with(&current)) || name.starts_with(".tmp");
            if unusable && let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %name, error = %e, "cannot remove an unusable artifact");
            }
        }
    }

    /// Removes the artifacts of this engine whose module `keep` rejects;
    /// returns how many. Failures are logged.
    pub(crate) fn retain(&self, keep: &dyn Fn(&ModuleHash) -> bool) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let suffix = format!("-{}.cwasm", self.engine_tag);
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hash) = name.strip_suffix(&suffix).and_then(ModuleHash::from_hex) else {
                continue;
            };
            if keep(&hash) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot remove an artifact"),
            }
        }
        removed
    }

    fn path(&self, hash: &ModuleHash) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hash.to_hex(), self.engine_tag))
    }

    /// Loads the artifact of `hash`, or `None` when there is none or it is
    /// not trustworthy (then it is removed).
    pub(crate) fn load(&self, engine: &Engine, hash: &ModuleHash) -> Option<Compiled> {
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
        // directory, from `Module::serialize` or `Component::serialize` of
        // this engine configuration (the file name carries the engine's
        // compatibility hash), and its sha256 was verified just now, so it
        // is exactly what we wrote; wasmtime's own header says which of
        // the two it is.
        let loaded = match Engine::detect_precompiled(payload) {
            Some(Precompiled::Component) => {
                unsafe { Component::deserialize(engine, payload) }.map(Compiled::Component)
            }
            _ => unsafe { Module::deserialize(engine, payload) }.map(Compiled::Module),
        };
        match loaded {
            Ok(compiled) => Some(compiled),
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
    pub(crate) fn store(&self, hash: &ModuleHash, compiled: &Compiled) -> std::io::Result<()> {
        let payload = match compiled {
            Compiled::Module(module) => module.serialize(),
            Compiled::Component(component) => component.serialize(),
        }
        .map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(&payload))?;
        tmp.write_all(&payload)?;
        tmp.persist(self.path(hash)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The engine's part of an artifact's name: wasmtime's own compatibility
/// hash (version and every setting that changes compiled code), fed to
/// sha256 rather than `DefaultHasher`, whose algorithm may change between
/// Rust releases and would orphan every artifact on a toolchain upgrade.
fn engine_tag(engine: &Engine) -> String {
    let mut hasher = StableHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// A `Hasher` over sha256: the same bytes give the same hash with any
/// toolchain.
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
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
    fn the_engine_tag_is_a_stable_digest_and_other_engines_artifacts_are_removed() {
        let engine = Engine::default();
        let tag = engine_tag(&engine);
        assert_eq!(tag, engine_tag(&Engine::default()), "same engine, same tag");
        assert_eq!(tag.len(), 16);
        let dir = tempfile::tempdir().unwrap();
        let stale = dir
            .path()
            .join(format!("{}-0123456789abcdef.cwasm", "ab".repeat(32)));
        let tmp = dir.path().join(".tmpXYZ");
        let current = dir.path().join(format!("{}-{tag}.cwasm", "cd".repeat(32)));
        let other = dir.path().join("notes.txt");
        for f in [&stale, &tmp, &current, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        ArtifactStore::open(dir.path(), &engine).unwrap();
        assert!(!stale.exists() && !tmp.exists());
        assert!(current.exists() && other.exists());
    }

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
