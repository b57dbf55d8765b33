//! Per-function execution statistics, recorded lock-free on the request
//! path (atomic counters and a log-scale latency histogram) and drained
//! periodically into `function_stats` events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram buckets: bucket `i` counts latencies in `[2^i, 2^(i+1))` µs;
/// 32 buckets reach past an hour.
const BUCKETS: usize = 32;

/// Execution counts of one function name (kept across its versions).
#[derive(Debug, Default)]
pub struct ExecutionStats {
    invocations: AtomicU64,
    errors: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    /// Prometheus handles of this name, registered on first use.
    pub metrics: std::sync::OnceLock<crate::metrics::FunctionMetrics>,
}

/// A drained window of [`ExecutionStats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsWindow {
    /// Invocations in the window.
    pub invocations: u64,
    /// Failed invocations in the window.
    pub errors: u64,
    /// Median latency (upper edge of its bucket), ms.
    pub p50_ms: f64,
    /// 99th percentile latency (upper edge of its bucket), ms.
    pub p99_ms: f64,
}

impl ExecutionStats {
    /// Records one invocation.
    pub fn record(&self, elapsed: Duration, ok: bool) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let bucket = (63 - micros.leading_zeros() as usize).min(BUCKETS - 1);
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the counts since the last drain (`None` if there were none).
    pub fn drain(&self) -> Option<StatsWindow> {
        let invocations = self.invocations.swap(0, Ordering::Relaxed);
        let errors = self.errors.swap(0, Ordering::Relaxed);
        let counts: Vec<u64> = self
            .latency
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect();
        if invocations == 0 {
            return None;
        }
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| {
            let target = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= target {
                    return (1u64 << (i + 1)) as f64 / 1000.0;
                }
            }
            0.0
        };
        Some(StatsWindow {
            invocations,
            errors,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_reports_counts_and_bucketed_percentiles_once() {
        let stats = ExecutionStats::default();
        for _ in 0..98 {
            stats.record(Duration::from_micros(100), true);
        }
        stats.record(Duration::from_millis(50), false);
        stats.record(Duration::from_millis(50), false);
        let w = stats.drain().unwrap();
        assert_eq!((w.invocations, w.errors), (100, 2));
        assert_eq!(w.p50_ms, 0.128, "100 µs falls in [64, 128) µs");
        assert_eq!(w.p99_ms, 65.536, "50 ms falls in [32.768, 65.536) ms");
        assert!(stats.drain().is_none(), "a drain resets the window");
    }
}
