//! This edge's own identity with the control plane: the credential it got
//! by presenting the join token once (`POST /api/nodes/join`), kept in
//! `<data_dir>/node_credential.json`, readable by its owner only. From then
//! on every call to the control plane carries it, and the control plane
//! reaches this edge's `/notify` with the notify secret of the same file.

use std::path::{Path, PathBuf};

use aether_http::Secret;
use aether_http::auth::Token;
use aether_proto::control::JoinResponse;
use serde::{Deserialize, Serialize};

/// The file in the data dir.
pub const FILE: &str = "node_credential.json";

/// What the file holds.
#[derive(Serialize, Deserialize)]
struct Stored {
    node_id: String,
    credential: String,
    notify_secret: String,
}

/// A credential this edge holds.
#[derive(Clone)]
pub struct Identity {
    /// The node it speaks for.
    pub node_id: String,
    /// Bearer token of its calls to the control plane.
    pub credential: Secret,
    /// What the control plane presents to its `/notify`.
    pub notify: Token,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Where the credential is kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

impl Identity {
    fn from_parts(node_id: String, credential: &str, notify_secret: &str) -> Option<Identity> {
        Some(Identity {
            node_id,
            credential: Secret::new(credential)?,
            notify: Token::new(&Secret::new(notify_secret)?),
        })
    }

    /// The identity a join's answer gives (`None` for an empty credential
    /// or notify secret).
    pub fn from_join(joined: &JoinResponse) -> Option<Identity> {
        Identity::from_parts(
            joined.node_id.clone(),
            &joined.credential,
            &joined.notify_secret,
        )
    }

    /// With a control plane older than per-edge credentials: the shared
    /// node token, both for this edge's calls and for its `/notify`.
    pub fn shared(node_id: &str, token: Secret) -> Identity {
        Identity {
            node_id: node_id.to_owned(),
            notify: Token::new(&token),
            credential: token,
        }
    }

    /// The credential kept for `node_id`, if any. One kept for another id
    /// (the operator changed `--node-id`) is not used: the edge joins
    /// again under the new id.
    pub fn load(data_dir: &Path, node_id: &str) -> std::io::Result<Option<Identity>> {
        let text = match std::fs::read(path(data_dir)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let stored: Stored = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
        if stored.node_id != node_id {
            tracing::info!(
                stored = %stored.node_id,
                node_id,
                "the kept credential is another node's; joining again"
            );
            return Ok(None);
        }
        Ok(Identity::from_parts(
            stored.node_id,
            &stored.credential,
            &stored.notify_secret,
        ))
    }

    /// Keeps a join's answer (mode 0600, durably) and returns it.
    pub fn save(data_dir: &Path, joined: &JoinResponse) -> std::io::Result<Identity> {
        let stored = Stored {
            node_id: joined.node_id.clone(),
            credential: joined.credential.clone(),
            notify_secret: joined.notify_secret.clone(),
        };
        let json = serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other)?;
        crate::durable::write_private(&path(data_dir), &json)?;
        Identity::from_join(joined)
            .ok_or_else(|| std::io::Error::other("the control plane sent an empty credential"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_credential_is_kept_for_its_owner_only_and_for_its_node_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Identity::load(dir.path(), "edge-1").unwrap().is_none());
        let joined = JoinResponse {
            node_id: "edge-1".into(),
            credential: "aen1.edge-1.secret".into(),
            notify_secret: "notify".into(),
        };
        Identity::save(dir.path(), &joined).unwrap();
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let kept = Identity::load(dir.path(), "edge-1").unwrap().unwrap();
        assert_eq!(kept.credential.expose_str(), "aen1.edge-1.secret");
        assert!(kept.notify.matches("notify"));
        assert!(Identity::load(dir.path(), "edge-2").unwrap().is_none());
    }
}
