//! Reading `/metrics` (Prometheus text) in the servers' tests.
//!
//! [`value`] panics when the series is not there, so that a renamed metric
//! or label fails its test instead of reading 0. A series that only
//! appears on first use is read with [`value_or_zero`], and one that must
//! not be there is checked with [`assert_absent`]: each says so at the call.

use prometheus_parse::{Sample, Scrape, Value};

/// `GET metrics_url` (a server's `/metrics`), parsed; see [`text`].
pub async fn scrape(client: &reqwest::Client, metrics_url: &str) -> Scrape {
    parse(&text(client, metrics_url).await)
}

/// `GET metrics_url` (a server's `/metrics`): its text; panics unless it
/// answers 200 in the Prometheus text format.
pub async fn text(client: &reqwest::Client, metrics_url: &str) -> String {
    let r = client.get(metrics_url).send().await.expect("GET /metrics");
    assert_eq!(r.status(), 200, "GET {metrics_url}");
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain"),
        "GET {metrics_url}: content type {content_type:?}"
    );
    r.text().await.expect("the /metrics body")
}

/// Parses Prometheus text; panics when it is not valid.
pub fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
}

/// The sum of the samples `name` whose labels include all of `labels`; a
/// histogram gives its count. Panics when there is no such sample.
#[track_caller]
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = matching(scrape, name, labels);
    assert!(
        !found.is_empty(),
        "no sample {name} with labels {labels:?} in /metrics; {}",
        what_there_is(scrape, name)
    );
    sum(name, &found)
}

/// As [`value`], but 0 when there is no such sample: for a series that
/// appears on first use (a counter nothing has moved yet, in a registry
/// that only shows what was recorded), where absent and zero are the same.
/// A renamed metric reads 0 here as well: a test that uses it must also
/// read `name` with [`value`] once it has moved.
pub fn value_or_zero(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    sum(name, &matching(scrape, name, labels))
}

/// Panics when there is a sample `name` whose labels include all of
/// `labels`.
#[track_caller]
pub fn assert_absent(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) {
    let found = matching(scrape, name, labels);
    assert!(
        found.is_empty(),
        "{name} with labels {labels:?} should not be in /metrics: {:?}",
        found
            .iter()
            .map(|s| (&s.labels, &s.value))
            .collect::<Vec<_>>()
    );
}

fn matching<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn sum(name: &str, samples: &[&Sample]) -> f64 {
    samples
        .iter()
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => panic!("{name} is a summary, expected a histogram"),
        })
        .sum()
}

/// For a missing sample's message: the label sets `name` has, or else the
/// metrics there are.
fn what_there_is(scrape: &Scrape, name: &str) -> String {
    let labels: Vec<String> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| s.labels.to_string())
        .collect();
    if !labels.is_empty() {
        return format!("{name} has {labels:?}");
    }
    let mut names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    format!("no {name} at all; the metrics are {names:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE hits_total counter
hits_total{route=\"/a\",status=\"200\"} 3
hits_total{route=\"/a\",status=\"404\"} 1
hits_total{route=\"/b\",status=\"200\"} 0
# TYPE up gauge
up 1
# TYPE took_seconds histogram
took_seconds_bucket{route=\"/a\",le=\"0.1\"} 2
took_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4
took_seconds_sum{route=\"/a\"} 0.9
took_seconds_count{route=\"/a\"} 4
";

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).expect_err("should panic");
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn value_sums_matching_samples_and_counts_histograms() {
        let m = parse(TEXT);
        assert_eq!(value(&m, "hits_total", &[]), 4.0);
        assert_eq!(value(&m, "hits_total", &[("route", "/a")]), 4.0);
        assert_eq!(value(&m, "hits_total", &[("status", "200")]), 3.0);
        assert_eq!(value(&m, "hits_total", &[("route", "/b")]), 0.0);
        assert_eq!(value(&m, "up", &[]), 1.0);
        assert_eq!(value(&m, "took_seconds", &[("route", "/a")]), 4.0);
    }

    #[test]
    fn a_missing_series_is_an_error_unless_asked_for_deliberately() {
        let m = parse(TEXT);
        let msg = panics(|| {
            value(&parse(TEXT), "hit_total", &[]);
        });
        assert!(msg.contains("no hit_total at all"), "{msg}");
        assert!(msg.contains("\"hits_total\""), "{msg}");
        let msg = panics(|| {
            value(&parse(TEXT), "hits_total", &[("route", "/c")]);
        });
        assert!(msg.contains("hits_total has"), "{msg}");
        assert_eq!(value_or_zero(&m, "hits_total", &[("route", "/c")]), 0.0);
        assert_eq!(value_or_zero(&m, "hits_total", &[("route", "/a")]), 4.0);
        assert_absent(&m, "hits_total", &[("route", "/c")]);
        let msg = panics(|| assert_absent(&parse(TEXT), "hits_total", &[("route", "/b")]));
        assert!(msg.contains("should not be in /metrics"), "{msg}");
    }
}
