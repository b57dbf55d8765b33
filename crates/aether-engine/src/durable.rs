//! The edge's own small files (node id, last manifest, downloaded modules)
//! written so that a crash or power loss leaves either the old file or the
//! new one, never a torn or empty one, and the leftovers of writes cut short
//! removed at start.

use std::io::Write as _;
use std::path::Path;

/// Suffix of a file being written.
const TMP: &str = "tmp";

/// Writes `bytes` to `path`: a temporary file beside it, fsynced, renamed
/// over `path`, then the directory fsynced so the rename survives a crash.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_mode(path, bytes, 0o644)
}

/// [`write()`] for a secret: the file is readable by its owner only (0600)
/// from the moment it exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_mode(path, bytes, 0o600)
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = tmp_path(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // A bare file name has the empty path as its parent: the current dir.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Removes the temporary files [`write()`] leaves in `dir` when cut short,
/// for the files `is_ours` names (e.g. `node_id`), and returns how many
/// there were. No other file is touched.
pub fn remove_leftovers(dir: &Path, is_ours: impl Fn(&str) -> bool) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(target) = name.strip_suffix(&format!(".{TMP}"))
            && is_ours(target)
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{TMP}"));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_our_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["node_id.tmp", "manifest.json.tmp", "notes.tmp", "node_id"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let ours = |name: &str| name == "node_id" || name == "manifest.json";
        assert_eq!(remove_leftovers(dir.path(), ours).unwrap(), 2);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["node_id", "notes.tmp"]);
        assert_eq!(
            remove_leftovers(&dir.path().join("missing"), ours).unwrap(),
            0
        );
    }
}
