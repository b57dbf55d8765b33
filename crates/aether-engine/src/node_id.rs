//! The edge's stable node id: generated once and kept in its data dir, so a
//! restarted edge is recognised as the same node.

use std::path::Path;

/// The file in the data dir.
pub const FILE: &str = "node_id";

/// Reads `<data_dir>/node_id`, or creates it with a fresh `edge-<uuid>`.
pub fn load_or_create(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = format!("edge-{}", uuid::Uuid::new_v4().simple());
    crate::durable::write(&path, id.as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_id_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::load_or_create(dir.path()).unwrap();
        assert!(first.starts_with("edge-"));
        assert_eq!(super::load_or_create(dir.path()).unwrap(), first);
    }
}
