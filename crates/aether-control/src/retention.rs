//! Forgetting edges: a node silent for longer than `node_retention` leaves
//! the registry, so edges replaced or renamed long ago do not stay listed
//! (and scanned by every `/api/nodes`, `/health` and notification) forever.

use std::time::Duration;

use crate::state::AppState;

/// Most time between two prunings: a week's retention does not need a
/// finer grain.
const MAX_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Least time between two prunings (tests use retentions of a second).
const MIN_PRUNE_INTERVAL: Duration = Duration::from_millis(100);

/// Prunes every quarter of the retention (between
/// [`MIN_PRUNE_INTERVAL`] and [`MAX_PRUNE_INTERVAL`]), until aborted.
pub async fn run(state: AppState) {
    let retention = state.settings().node_retention;
    let every = (retention / 4).clamp(MIN_PRUNE_INTERVAL, MAX_PRUNE_INTERVAL);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let cutoff = aether_store::now_ms()
            .saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
        match state.blocking(move |store| store.prune_nodes(cutoff)).await {
            Ok(pruned) => {
                for node_id in pruned {
                    tracing::info!(
                        node_id,
                        retention = %humantime::format_duration(retention),
                        "forgot a node silent for longer than node_retention"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune nodes"),
        }
    }
}
