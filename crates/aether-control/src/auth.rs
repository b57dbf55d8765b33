//! Who may call what.
//!
//! - **Admin tokens** open the management API. Several may be valid at
//!   once (rotation: add the new one, move clients, drop the old one), and
//!   they are replaced without a restart ([`Auth::set_tokens`], on
//!   `SIGHUP`).
//! - **The node token is a join token**: it opens only `POST
//!   /api/nodes/join`, where an edge gets its own credential. Heartbeats,
//!   events, the manifest and blob downloads need that credential; a
//!   request made with one is attributed to its node ([`Caller::Node`]),
//!   whatever a body says.
//! - **Node credentials** read `aen1.<node_id>.<64 hex>`. Only the sha256 of
//!   the secret part is kept (in the store, and here in memory for the
//!   lookup); `aether nodes remove ID` forgets it, and the edge's next call
//!   gets 401.
//!
//! Reading and comparing tokens (constant time, never logged) is
//! `aether_http::auth`. With no admin and no join token configured (a
//! loopback-only development stack), everything is admitted.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use aether_http::ApiError;
use aether_http::auth::{Token, bearer_token};
use aether_http::config::Secret;
use aether_proto::ErrorCode;
use aether_store::NodeRecord;
use axum::http::HeaderMap;

/// Which callers a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Operators: deploy, delete, rollback, nodes, events.
    Admin,
    /// Edges, with their own credential: register, callback.
    Node,
    /// Manifest and blob download: edges pull them, operators may read them.
    Pull,
    /// The join token: an edge asking for its credential.
    Join,
}

/// Who made a request; the middleware puts it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off (no tokens configured).
    Open,
    /// An operator with an admin token.
    Admin,
    /// The holder of the join token.
    Joining,
    /// The edge whose credential this was.
    Node(String),
}

/// Prefix of node credentials (version 1 of the format).
pub const CREDENTIAL_PREFIX: &str = "aen1.";

/// A node credential, made by [`issue`].
pub struct Issued {
    /// What the edge presents, shown to it once.
    pub credential: String,
    /// What is stored: the secret part's digest.
    pub digest: Token,
    /// What the control plane presents to the edge's `/notify`.
    pub notify_secret: String,
}

/// A new credential and notify secret for `node_id`.
pub fn issue(node_id: &str) -> std::io::Result<Issued> {
    let secret = aether_http::auth::new_secret()?;
    let digest = Token::new(&Secret::new(secret.clone()).expect("64 hex characters"));
    Ok(Issued {
        credential: format!("{CREDENTIAL_PREFIX}{node_id}.{secret}"),
        digest,
        notify_secret: aether_http::auth::new_secret()?,
    })
}

/// The node id and secret of a presented credential.
fn parse_credential(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(CREDENTIAL_PREFIX)?;
    let (node_id, secret) = rest.rsplit_once('.')?;
    (!node_id.is_empty() && secret.len() == 64).then_some((node_id, secret))
}

#[derive(Default)]
struct Keys {
    admin: Vec<Token>,
    join: Option<Token>,
    /// node id → digest of its credential's secret.
    nodes: HashMap<String, Token>,
}

/// The valid tokens and credentials, shared by every clone.
#[derive(Clone, Default)]
pub struct Auth {
    keys: Arc<RwLock<Keys>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Auth {
    /// Auth with these admin tokens and join token; with none, every
    /// request is admitted.
    pub fn new(admin: &[Secret], join: Option<&Secret>) -> Self {
        let auth = Auth::default();
        auth.set_tokens(admin, join);
        auth
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the admin tokens and the join token (a reload); node
    /// credentials stay valid.
    pub fn set_tokens(&self, admin: &[Secret], join: Option<&Secret>) {
        let mut keys = self.write();
        keys.admin = admin.iter().map(Token::new).collect();
        keys.join = join.map(Token::new);
    }

    /// Learns the credentials of stored nodes (at start).
    pub fn load_nodes(&self, nodes: &[NodeRecord]) {
        let mut keys = self.write();
        for node in nodes {
            if let Some(digest) = node.credential_sha256.as_deref().and_then(Token::from_hex) {
                keys.nodes.insert(node.node_id.clone(), digest);
            }
        }
    }

    /// Replaces every node credential with the stored ones (a replica
    /// catching up with joins and removals made through the others).
    pub fn replace_nodes(&self, nodes: &[NodeRecord]) {
        let fresh: HashMap<String, Token> = nodes
            .iter()
            .filter_map(|n| {
                Some((
                    n.node_id.clone(),
                    Token::from_hex(n.credential_sha256.as_deref()?)?,
                ))
            })
            .collect();
        self.write().nodes = fresh;
    }

    /// The node id of a presented node credential, if the request has one.
    pub fn credential_node(headers: &HeaderMap) -> Option<String> {
        let token = bearer_token(headers).ok()?;
        parse_credential(token).map(|(id, _)| id.to_owned())
    }

    /// A node joined with this credential digest.
    pub fn add_node(&self, node_id: &str, digest: Token) {
        self.write().nodes.insert(node_id.to_owned(), digest);
    }

    /// A node was removed: its credential opens nothing from now on.
    pub fn remove_node(&self, node_id: &str) {
        self.write().nodes.remove(node_id);
    }

    /// Whether any token is required.
    pub fn enabled(&self) -> bool {
        let keys = self.read();
        !keys.admin.is_empty() || keys.join.is_some()
    }

    /// Who is calling, if `access` admits them.
    pub fn check(&self, headers: &HeaderMap, access: Access) -> Result<Caller, ApiError> {
        if !self.enabled() {
            return Ok(Caller::Open);
        }
        let token = bearer_token(headers)?;
        let keys = self.read();
        let node = || {
            let (node_id, secret) = parse_credential(token)?;
            let digest = keys.nodes.get(node_id)?;
            digest
                .matches(secret)
                .then(|| Caller::Node(node_id.to_owned()))
        };
        let admin = || {
            keys.admin
                .iter()
                .any(|t| t.matches(token))
                .then_some(Caller::Admin)
        };
        let join = || {
            keys.join
                .as_ref()
                .is_some_and(|t| t.matches(token))
                .then_some(Caller::Joining)
        };
        let admitted = match access {
            Access::Admin => admin(),
            Access::Node => node(),
            Access::Pull => node().or_else(admin),
            Access::Join => join(),
        };
        if let Some(caller) = admitted {
            return Ok(caller);
        }
        let message = if parse_credential(token).is_some() {
            "this node credential is not valid (the node was removed, or it never joined this control plane)"
        } else if access == Access::Node && join().is_some() {
            "the node token is a join token: an edge exchanges it for its own credential at POST /api/nodes/join (upgrade this edge)"
        } else {
            "invalid token for this endpoint"
        };
        Err(ApiError::unauthorized(message))
    }
}

/// The node a request must speak for: with a credential, its node (a
/// body naming another one is refused); with authentication off, the id
/// the body gives.
pub fn speaking_for(caller: &Caller, claimed: &str) -> Result<String, ApiError> {
    match caller {
        Caller::Node(id) if id == claimed => Ok(id.clone()),
        Caller::Node(id) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this credential belongs to node {id}, not {claimed}"),
        )),
        _ => Ok(claimed.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn secrets(tokens: &[&str]) -> Vec<Secret> {
        tokens.iter().filter_map(|t| Secret::new(*t)).collect()
    }

    #[test]
    fn each_token_opens_only_its_endpoints() {
        let join = Secret::new("join-token");
        let auth = Auth::new(&secrets(&["admin-token"]), join.as_ref());
        let issued = issue("edge-1").unwrap();
        auth.add_node("edge-1", issued.digest);
        let node = format!("Bearer {}", issued.credential);
        let ok = |h: &str, a| auth.check(&headers(h), a);
        assert_eq!(
            ok("Bearer admin-token", Access::Admin).unwrap(),
            Caller::Admin
        );
        assert_eq!(
            ok("bearer admin-token", Access::Pull).unwrap(),
            Caller::Admin
        );
        assert_eq!(
            ok(&node, Access::Node).unwrap(),
            Caller::Node("edge-1".into())
        );
        assert_eq!(
            ok(&node, Access::Pull).unwrap(),
            Caller::Node("edge-1".into())
        );
        assert_eq!(
            ok("Bearer join-token", Access::Join).unwrap(),
            Caller::Joining
        );
        for (h, a) in [
            (node.as_str(), Access::Admin),
            (node.as_str(), Access::Join),
            ("Bearer join-token", Access::Node),
            ("Bearer join-token", Access::Pull),
            ("Bearer join-token", Access::Admin),
            ("Bearer admin-token", Access::Node),
            ("Bearer admin-token", Access::Join),
            ("Bearer ", Access::Pull),
            ("Basic admin-token", Access::Admin),
        ] {
            assert!(ok(h, a).is_err(), "{h} opened {a:?}");
        }
        assert!(auth.check(&HeaderMap::new(), Access::Admin).is_err());
        let err = ok("Bearer join-token", Access::Node).unwrap_err();
        assert!(err.message.contains("join token"), "{}", err.message);
    }

    #[test]
    fn a_credential_speaks_only_for_its_node_until_removed() {
        let auth = Auth::new(&secrets(&["a"]), Secret::new("j").as_ref());
        let one = issue("edge-1").unwrap();
        auth.add_node("edge-1", one.digest);
        // Its secret under another node's id.
        let secret = one.credential.rsplit_once('.').unwrap().1;
        let forged = format!("Bearer {CREDENTIAL_PREFIX}edge-2.{secret}");
        assert!(auth.check(&headers(&forged), Access::Node).is_err());
        let caller = auth
            .check(
                &headers(&format!("Bearer {}", one.credential)),
                Access::Node,
            )
            .unwrap();
        assert!(speaking_for(&caller, "edge-1").is_ok());
        let err = speaking_for(&caller, "edge-2").unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
        auth.remove_node("edge-1");
        let err = auth
            .check(
                &headers(&format!("Bearer {}", one.credential)),
                Access::Node,
            )
            .unwrap_err();
        assert!(err.message.contains("removed"), "{}", err.message);
    }

    #[test]
    fn several_admin_tokens_are_valid_and_a_reload_replaces_them() {
        let auth = Auth::new(&secrets(&["old", "new"]), None);
        for t in ["Bearer old", "Bearer new"] {
            assert!(auth.check(&headers(t), Access::Admin).is_ok());
        }
        auth.set_tokens(&secrets(&["new"]), None);
        assert!(auth.check(&headers("Bearer old"), Access::Admin).is_err());
        assert!(auth.check(&headers("Bearer new"), Access::Admin).is_ok());
    }

    #[test]
    fn without_tokens_everything_is_admitted() {
        let auth = Auth::new(&[], None);
        assert_eq!(
            auth.check(&HeaderMap::new(), Access::Admin).unwrap(),
            Caller::Open
        );
    }
}
