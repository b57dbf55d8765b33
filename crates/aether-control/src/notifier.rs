//! Edge notification: after a deploy, rollback or delete is durable, every
//! online edge is told to reconcile (`POST {edge}/notify`, with the notify
//! secret that edge got when it joined).
//! Best effort by design: an edge that misses a notification converges at
//! its next periodic reconcile.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

/// How long one notification may take before it is abandoned.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs until the change channel closes (the state is dropped), calling
/// edges with `client` (its timeout [`NOTIFY_TIMEOUT`], trusting the
/// configured CA).
pub async fn run(state: AppState, client: reqwest::Client) {
    let mut changes = state.subscribe();
    loop {
        match changes.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        // Coalesce a burst of changes into one round of notifications: an
        // edge reconciles against the whole manifest anyway.
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
            changes.try_recv()
        {}
        notify_online_edges(&state, &client).await;
    }
}

async fn notify_online_edges(state: &AppState, client: &reqwest::Client) {
    let nodes = match state.blocking(|store| store.nodes()).await {
        Ok(nodes) => nodes,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot list nodes to notify");
            return;
        }
    };
    let now = aether_store::now_ms();
    let timeout = u64::try_from(state.settings().node_timeout.as_millis()).unwrap_or(u64::MAX);
    for node in nodes {
        if crate::wire::node_status(&node, now, timeout)
            != aether_proto::control::NodeStatus::Online
        {
            continue;
        }
        let mut request = client.post(format!("{}/notify", node.url.trim_end_matches('/')));
        // A joined edge takes its own secret; one registered without
        // credentials (authentication off) takes the shared token, if any.
        if let Some(secret) = &node.notify_secret {
            request = request.bearer_auth(secret);
        } else if let Some(token) = state.node_token() {
            request = request.bearer_auth(token.expose_str());
        }
        tokio::spawn(async move {
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!(node = %node.node_id, "edge notified");
                }
                Ok(resp) => {
                    tracing::warn!(node = %node.node_id, status = %resp.status(), "edge refused the notification; it will converge at its next reconcile")
                }
                Err(e) => {
                    let error = aether_http::tls::error_chain(&e);
                    tracing::warn!(node = %node.node_id, %error, "cannot notify edge; it will converge at its next reconcile")
                }
            }
        });
    }
}
