//! Per-function execution statistics aggregated from the edges'
//! `function_stats` events, for `GET /api/functions/{name}/stats`.
//!
//! Kept in memory: the events themselves are in the durable log, and the
//! figures describe recent traffic, so a restart starting them afresh is the
//! expected behaviour (as with Prometheus counters).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use aether_proto::control::{
    EventReport as _, FunctionStats, FunctionStatsReport, NodeFunctionStats,
};
use serde::Deserialize as _;

/// All statistics, keyed by function then node.
#[derive(Debug, Default)]
pub struct StatsBook {
    by_function: Mutex<HashMap<String, BTreeMap<String, NodeFunctionStats>>>,
}

impl StatsBook {
    /// Records one `function_stats` event from `node_id` (ignored if
    /// malformed, logged).
    pub fn record(&self, node_id: Option<&str>, data: &serde_json::Value, received_at: &str) {
        let report = match FunctionStatsReport::deserialize(data) {
            Ok(report) => report,
            Err(e) => {
                tracing::debug!(?data, error = %e, "malformed function_stats event");
                return;
            }
        };
        let node = node_id.unwrap_or("unknown").to_owned();
        let mut book = self
            .by_function
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = book
            .entry(report.function)
            .or_default()
            .entry(node)
            .or_default();
        entry.invocations += report.invocations;
        entry.errors += report.errors;
        entry.p50_ms = report.p50_ms;
        entry.p99_ms = report.p99_ms;
        entry.last_report = received_at.to_owned();
    }

    /// Records a stored event if it is a `function_stats` report.
    pub fn record_event(&self, event: &aether_store::EventRecord) {
        if event.event == FunctionStatsReport::EVENT {
            let received = crate::wire::rfc3339(event.received_at_ms);
            self.record(event.node_id.as_deref(), &event.data, &received);
        }
    }

    /// Forgets a deleted function.
    pub fn forget(&self, function: &str) {
        self.by_function
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(function);
    }

    /// The aggregate for one function (zeros when nothing was reported).
    pub fn get(&self, function: &str) -> FunctionStats {
        let nodes = self
            .by_function
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(function)
            .cloned()
            .unwrap_or_default();
        let invocations: u64 = nodes.values().map(|n| n.invocations).sum();
        let errors = nodes.values().map(|n| n.errors).sum();
        let weighted: f64 = nodes
            .values()
            .map(|n| n.p50_ms * n.invocations as f64)
            .sum();
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_reports_of_several_edges() {
        let book = StatsBook::default();
        let report = |inv: u64, p50: f64, p99: f64| serde_json::json!({"function": "f", "invocations": inv, "errors": 1, "p50_ms": p50, "p99_ms": p99});
        book.record(Some("a"), &report(10, 1.0, 5.0), "t1");
        book.record(Some("b"), &report(30, 3.0, 9.0), "t1");
        book.record(Some("a"), &report(10, 1.0, 4.0), "t2");
        let stats = book.get("f");
        assert_eq!(stats.invocations, 50);
        assert_eq!(stats.errors, 3);
        assert_eq!(stats.p99_ms, 9.0);
        assert!((stats.p50_ms - (20.0 * 1.0 + 30.0 * 3.0) / 50.0).abs() < 1e-9);
        assert_eq!(book.get("other").invocations, 0);
        book.forget("f");
        assert_eq!(book.get("f").invocations, 0);
    }
}
