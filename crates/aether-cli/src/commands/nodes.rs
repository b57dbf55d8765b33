//! `aether nodes`: the edges known to the control plane; `aether nodes
//! remove ID` revokes one.

use aether_proto::control::{NodeInfo, NodeRemoved, NodeStatus};
use reqwest::Method;

use crate::cli::{NodesAction, NodesArgs};
use crate::client::Client;
use crate::output::{self, Table};

/// Runs `aether nodes [list|remove ID]`.
pub async fn run(args: NodesArgs, control: &Client, json: bool) -> anyhow::Result<()> {
    match args.action.unwrap_or(NodesAction::List) {
        NodesAction::List => list(control, json).await,
        NodesAction::Remove { id } => {
            let path = format!("/api/nodes/{}", urlencode(&id));
            let removed: NodeRemoved = control.json(control.request(Method::DELETE, &path)).await?;
            if json {
                return output::json(&removed);
            }
            println!(
                "removed node {}: its credential is revoked",
                removed.node_id
            );
            Ok(())
        }
    }
}

/// Node ids are `[A-Za-z0-9._:-]`; anything else is escaped so the path
/// stays one segment (the control plane then refuses the id clearly).
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn list(control: &Client, json: bool) -> anyhow::Result<()> {
    let nodes: Vec<NodeInfo> = control.get("/api/nodes").await?;
    if json {
        return output::json(&nodes);
    }
    if nodes.is_empty() {
        eprintln!(
            "no edge has registered with {} yet (edges register on start with --control-url)",
            control.base()
        );
        return Ok(());
    }
    let mut table = Table::new(&["NODE", "URL", "STATUS", "LAST SEEN", "FUNCTIONS"]);
    for n in &nodes {
        let status = match n.status {
            NodeStatus::Online => "online",
            NodeStatus::Offline => "offline",
            NodeStatus::Stopped => "stopped",
        };
        table.row(vec![
            n.node_id.clone(),
            n.url.clone(),
            status.to_owned(),
            n.last_seen.clone(),
            n.functions.len().to_string(),
        ]);
    }
    table.print();
    Ok(())
}
