//! Per-function execution statistics aggregated from the edges'
//! `function_stats` events, for `GET /api/functions/{name}/stats` and
//! `GET /api/overview`.
//!
//! Two views of the same reports:
//! - running totals per function and node since this control plane
//!   started (or, with a shared database, over the retained event log:
//!   [`crate::replicas`]);
//! - the last [`WINDOW_MINUTES`] minutes, minute by minute (by the time the
//!   control plane stored the report), per function and per node: the
//!   dashboard's charts.
//!
//! Kept in memory: the events themselves are in the durable log, and the
//! figures describe recent traffic, so a restart starting them afresh is the
//! expected behaviour (as with Prometheus counters). Latency figures are
//! derived from the edges' own percentiles: a p50 is the invocation-weighted
//! mean of the reported p50s (an estimate) and a p99 the highest reported
//! p99 (an upper bound); percentiles of several edges cannot be combined
//! exactly without their samples.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use aether_proto::control::{
    EventReport as _, FunctionStats, FunctionStatsReport, MinuteStats, NodeFunctionStats,
    NodeTotals,
};
use serde::Deserialize as _;

/// Length of the per-minute window.
pub const WINDOW_MINUTES: u64 = 60;

const MINUTE_MS: u64 = 60_000;

/// One minute's reports, summed.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    invocations: u64,
    errors: u64,
    /// Sum of p50 × invocations (for the weighted mean).
    p50_weighted: f64,
    p99_max: f64,
}

impl Bucket {
    fn add(&mut self, other: &Bucket) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.p50_weighted += other.p50_weighted;
        self.p99_max = self.p99_max.max(other.p99_max);
    }

    fn to_wire(self, start: String) -> MinuteStats {
        MinuteStats {
            start,
            invocations: self.invocations,
            errors: self.errors,
            p50_ms: if self.invocations > 0 {
                self.p50_weighted / self.invocations as f64
            } else {
                0.0
            },
            p99_ms: self.p99_max,
        }
    }
}

/// Minute index (minutes since the Unix epoch) → bucket.
type Minutes = BTreeMap<u64, Bucket>;

#[derive(Debug, Default)]
struct Book {
    /// Function → node → running totals.
    by_function: HashMap<String, BTreeMap<String, NodeFunctionStats>>,
    /// Function → its last minutes.
    function_minutes: HashMap<String, Minutes>,
    /// Node → its last minutes.
    node_minutes: HashMap<String, Minutes>,
}

/// All statistics.
#[derive(Debug, Default)]
pub struct StatsBook {
    book: Mutex<Book>,
}

/// The first minute still in the window at `now_ms`.
fn window_start(now_ms: u64) -> u64 {
    (now_ms / MINUTE_MS).saturating_sub(WINDOW_MINUTES - 1)
}

/// Drops the minutes before `first`.
fn prune(minutes: &mut Minutes, first: u64) {
    *minutes = minutes.split_off(&first);
}

/// The window ending at `now_ms`, one entry per minute, zero-filled.
fn series(minutes: &Minutes, now_ms: u64) -> Vec<MinuteStats> {
    let first = window_start(now_ms);
    (first..first + WINDOW_MINUTES)
        .map(|m| {
            let bucket = minutes.get(&m).copied().unwrap_or_default();
            bucket.to_wire(crate::wire::rfc3339(m * MINUTE_MS))
        })
        .collect()
}

impl StatsBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a stored event if it is a `function_stats` report (a
    /// malformed one is logged and ignored).
    pub fn record_event(&self, event: &aether_store::EventRecord) {
        if event.event == FunctionStatsReport::EVENT {
            self.record(
                event.node_id.as_deref(),
                &event.data,
                event.received_at_ms,
                aether_store::now_ms(),
            );
        }
    }

    /// Records one report from `node_id`, stored at `received_at_ms`.
    pub fn record(
        &self,
        node_id: Option<&str>,
        data: &serde_json::Value,
        received_at_ms: u64,
        now_ms: u64,
    ) {
        let report = match FunctionStatsReport::deserialize(data) {
            Ok(report) => report,
            Err(e) => {
                tracing::debug!(?data, error = %e, "malformed function_stats event");
                return;
            }
        };
        let node = node_id.unwrap_or("unknown").to_owned();
        let mut book = self.lock();
        let entry = book
            .by_function
            .entry(report.function.clone())
            .or_default()
            .entry(node.clone())
            .or_default();
        entry.invocations += report.invocations;
        entry.errors += report.errors;
        entry.p50_ms = report.p50_ms;
        entry.p99_ms = report.p99_ms;
        entry.last_report = crate::wire::rfc3339(received_at_ms);

        let first = window_start(now_ms);
        let minute = received_at_ms / MINUTE_MS;
        if minute < first {
            return;
        }
        let bucket = Bucket {
            invocations: report.invocations,
            errors: report.errors,
            p50_weighted: report.p50_ms * report.invocations as f64,
            p99_max: report.p99_ms,
        };
        let minutes = book.function_minutes.entry(report.function).or_default();
        minutes.entry(minute).or_default().add(&bucket);
        prune(minutes, first);
        let minutes = book.node_minutes.entry(node).or_default();
        minutes.entry(minute).or_default().add(&bucket);
        prune(minutes, first);
    }

    /// Forgets a deleted function.
    pub fn forget(&self, function: &str) {
        let mut book = self.lock();
        book.by_function.remove(function);
        book.function_minutes.remove(function);
    }

    /// The aggregate for one function (zeros when nothing was reported),
    /// with its last hour ending at `now_ms`.
    pub fn get(&self, function: &str, now_ms: u64) -> FunctionStats {
        let book = self.lock();
        let nodes = book.by_function.get(function).cloned().unwrap_or_default();
        let invocations: u64 = nodes.values().map(|n| n.invocations).sum();
        let errors = nodes.values().map(|n| n.errors).sum();
        let weighted: f64 = nodes
            .values()
            .map(|n| n.p50_ms * n.invocations as f64)
            .sum();
        let minutes = book
            .function_minutes
            .get(function)
            .map(|m| series(m, now_ms))
            .unwrap_or_else(|| series(&Minutes::new(), now_ms));
        FunctionStats {
            function: function.to_owned(),
            invocations,
            errors,
            p50_ms: if invocations > 0 {
                weighted / invocations as f64
            } else {
                0.0
            },
            p99_ms: nodes.values().map(|n| n.p99_ms).fold(0.0, f64::max),
            nodes,
            minutes,
        }
    }

    /// Every function's last hour summed, minute by minute and as one
    /// window, and each node's totals over it.
    pub fn fleet(
        &self,
        now_ms: u64,
    ) -> (Vec<MinuteStats>, MinuteStats, BTreeMap<String, NodeTotals>) {
        let book = self.lock();
        let first = window_start(now_ms);
        let mut all = Minutes::new();
        for minutes in book.function_minutes.values() {
            for (m, bucket) in minutes.range(first..) {
                all.entry(*m).or_default().add(bucket);
            }
        }
        let mut window = Bucket::default();
        for bucket in all.values() {
            window.add(bucket);
        }
        let nodes = book
            .node_minutes
            .iter()
            .filter_map(|(node, minutes)| {
                let mut total = Bucket::default();
                for bucket in minutes.range(first..).map(|(_, b)| b) {
                    total.add(bucket);
                }
                (total.invocations > 0).then(|| {
                    (
                        node.clone(),
                        NodeTotals {
                            invocations: total.invocations,
                            errors: total.errors,
                        },
                    )
                })
            })
            .collect();
        (series(&all, now_ms), window.to_wire(String::new()), nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn report(inv: u64, p50: f64, p99: f64) -> serde_json::Value {
        serde_json::json!({"function": "f", "invocations": inv, "errors": 1, "p50_ms": p50, "p99_ms": p99})
    }

    #[test]
    fn aggregates_reports_of_several_edges() {
        let book = StatsBook::default();
        book.record(Some("a"), &report(10, 1.0, 5.0), NOW, NOW);
        book.record(Some("b"), &report(30, 3.0, 9.0), NOW, NOW);
        book.record(Some("a"), &report(10, 1.0, 4.0), NOW, NOW);
        let stats = book.get("f", NOW);
        assert_eq!(stats.invocations, 50);
        assert_eq!(stats.errors, 3);
        assert_eq!(stats.p99_ms, 9.0);
        assert!((stats.p50_ms - (20.0 * 1.0 + 30.0 * 3.0) / 50.0).abs() < 1e-9);
        assert_eq!(book.get("other", NOW).invocations, 0);
        book.forget("f");
        assert_eq!(book.get("f", NOW).invocations, 0);
        assert!(
            book.get("f", NOW)
                .minutes
                .iter()
                .all(|m| m.invocations == 0)
        );
    }

    #[test]
    fn the_last_hour_is_bucketed_by_minute_zero_filled_and_old_reports_drop_out() {
        let book = StatsBook::default();
        let minute = 60_000;
        book.record(Some("a"), &report(10, 1.0, 5.0), NOW - 2 * minute, NOW);
        book.record(Some("b"), &report(30, 3.0, 9.0), NOW - 2 * minute, NOW);
        book.record(Some("a"), &report(5, 2.0, 4.0), NOW, NOW);
        // Older than the window: in the totals, not in the minutes.
        book.record(Some("a"), &report(100, 1.0, 1.0), NOW - 61 * minute, NOW);
        let stats = book.get("f", NOW);
        assert_eq!(stats.minutes.len(), WINDOW_MINUTES as usize);
        let last = &stats.minutes[59];
        assert_eq!((last.invocations, last.errors), (5, 1));
        let two_ago = &stats.minutes[57];
        assert_eq!(two_ago.invocations, 40);
        assert!((two_ago.p50_ms - 2.5).abs() < 1e-9, "{}", two_ago.p50_ms);
        assert_eq!(two_ago.p99_ms, 9.0);
        assert_eq!(stats.minutes.iter().map(|m| m.invocations).sum::<u64>(), 45);
        assert_eq!(stats.invocations, 145);
        assert!(stats.minutes[0].start < stats.minutes[59].start);

        let (minutes, window, nodes) = book.fleet(NOW);
        assert_eq!(minutes[57].invocations, 40);
        assert_eq!((window.invocations, window.errors), (45, 3));
        assert_eq!(window.p99_ms, 9.0);
        assert_eq!(nodes["a"].invocations, 15);
        assert_eq!(nodes["b"].invocations, 30);
        // An hour later everything has left the window.
        let (minutes, window, nodes) = book.fleet(NOW + 60 * minute);
        assert!(minutes.iter().all(|m| m.invocations == 0));
        assert_eq!(window.invocations, 0);
        assert!(nodes.is_empty());
    }
}
