//! Precompiled artifacts on disk, so a restarted edge is warm without
//! recompiling. The only module in Aether that uses `unsafe`:
//! `Module::deserialize_file` trusts its input, so it is only ever given
//! files that (1) this process family wrote into a directory it owns (mode
//! 0700), (2) match the sha256 kept beside them (catches torn writes and
//! bit rot), and (3) are named after this engine's compatibility hash
//! (wasmtime also refuses artifacts from another engine config). Anything
//! else is deleted and the module recompiled from its wasm.
//!
//! An artifact is two files: `{module sha256}-{engine tag}.cwasm`, exactly
//! what wasmtime serialized, and `….sum`, a magic number and the sha256 of
//! the `.cwasm`. Keeping the checksum out of the `.cwasm` lets wasmtime
//! *map* the file instead of copying it: its code pages and the data
//! segments instances are initialised from are then the page cache's,
//! shared, clean and never swapped, rather than anonymous memory of each
//! edge process (a hello_world module: 308 KiB of artifact; see
//! BENCHMARKS.md, "Many tenants"). The mapping stays valid while the file
//! is replaced or deleted (a rename or unlink never changes the mapped
//! inode's pages), which is all this store ever does to a file.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use crate::cache::ModuleHash;

/// The `.sum` file: this magic number, then the `.cwasm`'s sha256.
const MAGIC: &[u8; 8] = b"AETHCW02";
const SUM_LEN: usize = MAGIC.len() + 32;
/// The checksum file's extension.
const SUM: &str = "sum";
/// The compiled code's extension.
const CWASM: &str = "cwasm";

/// Compiled code: a core module or a component (a cheap clone: both are
/// reference-counted).
#[derive(Clone)]
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
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = [CWASM, SUM]
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")));
            let unusable = (ours && self.hash_of(&name).is_none()) || name.starts_with(".tmp");
            if unusable && let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %name, error = %e, "cannot remove an unusable artifact");
            }
        }
    }

    /// The module hash an artifact file of this engine is named after.
    fn hash_of(&self, file_name: &str) -> Option<ModuleHash> {
        let stem = file_name
            .strip_suffix(CWASM)
            .or_else(|| file_name.strip_suffix(SUM))?
            .strip_suffix('.')?
            .strip_suffix(&self.engine_tag)?
            .strip_suffix('-')?;
        ModuleHash::from_hex(stem)
    }

    /// Removes the artifacts of this engine whose module `keep` rejects;
    /// returns how many. Failures are logged.
    pub(crate) fn retain(&self, keep: &dyn Fn(&ModuleHash) -> bool) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hash) = self.hash_of(&name) else {
                continue;
            };
            if keep(&hash) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) if name.ends_with(CWASM) => removed += 1,
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot remove an artifact"),
            }
        }
        removed
    }

    fn path(&self, hash: &ModuleHash, ext: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{}.{ext}", hash.to_hex(), self.engine_tag))
    }

    /// Loads the artifact of `hash`, mapped from its file, or `None` when
    /// there is none or it is not trustworthy (then it is removed).
    pub(crate) fn load(&self, engine: &Engine, hash: &ModuleHash) -> Option<Compiled> {
        let (path, sum) = (self.path(hash, CWASM), self.path(hash, SUM));
        let (bytes, expected) = match (std::fs::read(&path), std::fs::read(&sum)) {
            (Ok(bytes), Ok(expected)) => (bytes, expected),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => return None,
            (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                self.discard(hash, "no checksum file");
                return None;
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read compiled artifact; recompiling");
                return None;
            }
        };
        if !checksum_matches(&expected, &bytes) {
            self.discard(hash, "checksum mismatch");
            return None;
        }
        let kind = Engine::detect_precompiled(&bytes);
        // Only the mapping is kept: the bytes read for the checksum go.
        drop(bytes);
        self.map(engine, hash, kind)
    }

    /// Maps the `.cwasm` of `hash`, a component or a module as `kind`
    /// says; `None` (and the artifact removed) when wasmtime refuses it.
    /// Only for a file whose checksum was just verified or that `store`
    /// just wrote.
    fn map(
        &self,
        engine: &Engine,
        hash: &ModuleHash,
        kind: Option<Precompiled>,
    ) -> Option<Compiled> {
        let path = self.path(hash, CWASM);
        // SAFETY: the file was written by `store` below into our own 0700
        // directory, from `Module::serialize` or `Component::serialize` of
        // this engine configuration (its name carries the engine's
        // compatibility hash), and its sha256 was verified just now or it
        // was written just now, so it is exactly what we wrote; wasmtime's
        // own header (or the value just serialized) says which of the two
        // it is. This store never modifies a file in place (it renames and
        // unlinks), so the mapping keeps those bytes for as long as the
        // module lives.
        let loaded = match kind {
            Some(Precompiled::Component) => {
                unsafe { Component::deserialize_file(engine, &path) }.map(Compiled::Component)
            }
            _ => unsafe { Module::deserialize_file(engine, &path) }.map(Compiled::Module),
        };
        match loaded {
            Ok(compiled) => Some(compiled),
            Err(e) => {
                self.discard(hash, &format!("{e:#}"));
                None
            }
        }
    }

    /// Removes both files of an artifact that cannot be trusted.
    fn discard(&self, hash: &ModuleHash, why: &str) {
        let path = self.path(hash, CWASM);
        tracing::warn!(path = %path.display(), why, "discarding untrusted compiled artifact; recompiling");
        for file in [path, self.path(hash, SUM)] {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %file.display(), error = %e, "cannot remove compiled artifact")
                }
            }
        }
    }

    /// Writes the artifact of `module` atomically (temp file + rename), the
    /// `.cwasm` first, then its `.sum`: a crash between the two leaves a
    /// `.cwasm` without a checksum, which is discarded. No fsync: this is a
    /// cache, and a torn file fails its checksum. Returns the artifact
    /// mapped from the file just written (`None` if wasmtime refused to
    /// map it), without reading it back.
    pub(crate) fn store(
        &self,
        engine: &Engine,
        hash: &ModuleHash,
        compiled: &Compiled,
    ) -> std::io::Result<Option<Compiled>> {
        let (payload, kind) = match compiled {
            Compiled::Module(module) => (module.serialize(), Precompiled::Module),
            Compiled::Component(component) => (component.serialize(), Precompiled::Component),
        };
        let payload = payload.map_err(std::io::Error::other)?;
        let write = |path: PathBuf, parts: &[&[u8]]| -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            for part in parts {
                tmp.write_all(part)?;
            }
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        };
        write(self.path(hash, CWASM), &[&payload])?;
        write(self.path(hash, SUM), &[MAGIC, &Sha256::digest(&payload)])?;
        Ok(self.map(engine, hash, Some(kind)))
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

/// Whether `sum` (a `.sum` file's contents) is the magic number and the
/// sha256 of `bytes`.
fn checksum_matches(sum: &[u8], bytes: &[u8]) -> bool {
    sum.len() == SUM_LEN
        && &sum[..MAGIC.len()] == MAGIC
        && sum[MAGIC.len()..] == Sha256::digest(bytes)[..]
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
        let stale_sum = stale.with_extension("sum");
        let current = dir.path().join(format!("{}-{tag}.cwasm", "cd".repeat(32)));
        let other = dir.path().join("notes.txt");
        for f in [&stale, &stale_sum, &tmp, &current, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        ArtifactStore::open(dir.path(), &engine).unwrap();
        assert!(!stale.exists() && !stale_sum.exists() && !tmp.exists());
        assert!(current.exists() && other.exists());
    }

    #[test]
    fn checksum_detects_truncation_flips_and_an_old_format() {
        let mut sum = MAGIC.to_vec();
        sum.extend_from_slice(&Sha256::digest(b"payload"));
        assert!(checksum_matches(&sum, b"payload"));
        assert!(!checksum_matches(&sum, b"paylaod"));
        assert!(!checksum_matches(&sum, b"payloa"));
        assert!(!checksum_matches(&sum[..SUM_LEN - 1], b"payload"));
        let mut old = sum.clone();
        old[..MAGIC.len()].copy_from_slice(b"AETHCW01");
        assert!(!checksum_matches(&old, b"payload"));
    }

    #[test]
    fn a_sum_file_names_its_module_and_both_files_go_together() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path(), &engine).unwrap();
        let (a, b) = (ModuleHash::of(b"a"), ModuleHash::of(b"b"));
        for hash in [&a, &b] {
            for ext in [CWASM, SUM] {
                std::fs::write(store.path(hash, ext), b"x").unwrap();
            }
        }
        assert_eq!(
            store.hash_of(&format!("{a}-{}.sum", store.engine_tag)),
            Some(a)
        );
        assert_eq!(
            store.hash_of(&format!("{a}-{}.txt", store.engine_tag)),
            None
        );
        assert_eq!(store.retain(&|h| *h == a), 1, "one artifact removed");
        assert!(store.path(&a, CWASM).exists() && store.path(&a, SUM).exists());
        assert!(!store.path(&b, CWASM).exists() && !store.path(&b, SUM).exists());
    }
}
