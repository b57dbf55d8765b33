//! The Prometheus exporter both services build on: a recorder of the
//! service's own (never installed as the global `metrics` recorder: tests
//! start several servers in one process and each must count only its own
//! requests), its metric families described once with their buckets, the
//! periodic upkeep and the text answer of `GET /metrics`.

use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use metrics::{Counter, Gauge, Histogram, Key, Metadata, Recorder as _, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// How often histogram samples are folded into their buckets (the
/// exporter buffers samples lock-free until then).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// `Content-Type` of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a metric family is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Samples in these buckets (upper bounds, ascending), in this unit.
    Histogram(&'static [f64], Option<Unit>),
}

/// One metric family: name, `# HELP` text and kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
}

impl Family {
    /// A counter family.
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind: Kind::Counter,
        }
    }

    /// A gauge family.
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind: Kind::Gauge,
        }
    }

    /// A histogram family in seconds with these buckets.
    pub const fn seconds(name: &'static str, help: &'static str, buckets: &'static [f64]) -> Self {
        Family {
            name,
            help,
            kind: Kind::Histogram(buckets, Some(Unit::Seconds)),
        }
    }
}

/// A service's own Prometheus recorder.
pub struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    metadata: &'static Metadata<'static>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// A fresh recorder with `families` described (and the histograms'
    /// buckets set); handles are registered with `metadata`.
    pub fn new(metadata: &'static Metadata<'static>, families: &[Family]) -> Self {
        let mut builder = PrometheusBuilder::new();
        for family in families {
            if let Kind::Histogram(buckets, _) = family.kind {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(family.name.into()), buckets)
                    .expect("histogram families have buckets");
            }
        }
        let recorder = builder.build_recorder();
        for family in families {
            let (name, help) = (family.name.into(), family.help.into());
            match family.kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram(_, unit) => recorder.describe_histogram(name, unit, help),
            }
        }
        Exporter {
            handle: recorder.handle(),
            recorder,
            metadata,
        }
    }

    /// The counter of `key`.
    pub fn counter(&self, key: &Key) -> Counter {
        self.recorder.register_counter(key, self.metadata)
    }

    /// The gauge of `key`.
    pub fn gauge(&self, key: &Key) -> Gauge {
        self.recorder.register_gauge(key, self.metadata)
    }

    /// The histogram of `key`.
    pub fn histogram(&self, key: &Key) -> Histogram {
        self.recorder.register_histogram(key, self.metadata)
    }

    /// The text of every series.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds buffered histogram samples into their buckets every
    /// [`UPKEEP_INTERVAL`], so memory stays bounded between scrapes; runs
    /// until dropped (spawn it and abort it with the server).
    pub fn upkeep(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let handle = self.handle.clone();
        async move {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                handle.run_upkeep();
            }
        }
    }
}

/// The answer of `GET /metrics`: `text` in the Prometheus text format.
pub fn text_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
}

/// A Prometheus label value: backslash, double quote and newline escaped.
pub fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    static METADATA: Metadata<'static> =
        Metadata::new("aether_http", metrics::Level::INFO, Some(module_path!()));

    #[test]
    fn families_are_described_and_histograms_use_their_buckets() {
        let exporter = Exporter::new(
            &METADATA,
            &[
                Family::counter("t_requests_total", "Requests."),
                Family::seconds("t_seconds", "Time.", &[0.5, 1.0]),
            ],
        );
        exporter
            .counter(&Key::from_static_name("t_requests_total"))
            .increment(2);
        exporter
            .histogram(&Key::from_static_name("t_seconds"))
            .record(0.7);
        let text = exporter.render();
        assert!(
            text.contains("# HELP t_requests_total Requests.\n"),
            "{text}"
        );
        assert!(text.contains("t_requests_total 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.5\"} 0\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
