//! `aether nodes`: the edges known to the control plane.

use aether_proto::control::{NodeInfo, NodeStatus};

use crate::client::Client;
use crate::output::{self, Table};

/// Runs `aether nodes`.
pub async fn run(control: &Client, json: bool) -> anyhow::Result<()> {
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
