//! Keeping a replica in step with the others when several control planes
//! share one database ([`aether_store::Store::is_shared`]).
//!
//! What every replica reads from the database directly needs nothing here:
//! functions, versions, blobs, nodes (so every replica notifies every
//! online edge of a change it took, and judges `node_timeout` from the
//! same heartbeats) and the event log. Two things are kept in memory and
//! are caught up by [`run`], once a [`SYNC_INTERVAL`]:
//! - node credentials: joins and removals made through other replicas
//!   (a credential issued elsewhere is also looked up at its first use, in
//!   the authentication middleware (`routes/access.rs`), so a freshly joined edge is never refused;
//!   a removal made elsewhere takes effect here within the interval);
//! - execution statistics: built from the `function_stats` events of the
//!   shared log, whichever replica received them, so every replica reports
//!   the same figures (over the retained log, from the first one).

use std::time::Duration;

use aether_store::EventQuery;

use crate::state::AppState;

/// Time between two catch-ups with the database.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Events read per query while catching up.
const PAGE: usize = 1000;

/// Catches up every [`SYNC_INTERVAL`] until aborted (only started for a
/// shared store).
pub async fn run(state: AppState) {
    let mut since = 0;
    let mut ticker = tokio::time::interval(SYNC_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        match sync(&state, &mut since).await {
            Ok(()) if failing => {
                tracing::info!("caught up with the database again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e.message, "cannot catch up with the database; retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

async fn sync(state: &AppState, since: &mut u64) -> Result<(), aether_http::ApiError> {
    let nodes = state.blocking(|store| store.nodes()).await?;
    state.auth().replace_nodes(&nodes);
    loop {
        let query = EventQuery {
            since: *since,
            limit: PAGE,
            function: None,
            ..Default::default()
        };
        let page = state.blocking(move |store| store.events(&query)).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        *since = last.id;
        for event in &page {
            state.stats().record_event(event);
        }
        if page.len() < PAGE {
            return Ok(());
        }
    }
}
