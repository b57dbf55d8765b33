//! The binaries' log output: `tracing` lines on stdout (on stderr for a
//! command whose stdout is its own output, such as `aether up`),
//! human-readable or one JSON object per line, filtered by `RUST_LOG`.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::TryInitError;

/// Log output of a binary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line: the event's fields under `fields`
    /// (`fields.request_id` on a request's errors) and, when a debug-level
    /// `request` span is enabled, its fields under `span`
    /// (`span.request_id`).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "human" | "pretty" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}; expected text or json"
            )),
        }
    }
}

/// Where the log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard output: the server binaries ([`init`]).
    Stdout,
    /// Standard error: a command whose stdout is its own output
    /// (`aether up --json` prints its URLs there).
    Stderr,
}

/// Installs the global tracing subscriber: filter from `RUST_LOG`, or
/// `default_filter` when it is unset or invalid, lines on stdout in
/// `format`. Spans of the targets in `quiet_span_targets` are never
/// created unless `RUST_LOG` names the target: wasmtime-wasi wraps every
/// WASI host call in an `info` span, so a plain `RUST_LOG=info` would
/// otherwise build a span per host call on the hot path (−10 % hello_world
/// throughput, BENCHMARKS.md) for lines nobody asked for.
///
/// # Panics
///
/// When a global subscriber is already installed ([`try_init`] returns
/// that as an error instead).
pub fn init(format: LogFormat, default_filter: &str, quiet_span_targets: &'static [&'static str]) {
    try_init(
        LogOutput::Stdout,
        format,
        default_filter,
        quiet_span_targets,
    )
    .expect("failed to set global default subscriber");
}

/// [`init`] with the lines on `output`, and an error instead of a panic
/// when a global subscriber is already installed (a test running a
/// command in-process, say).
pub fn try_init(
    output: LogOutput,
    format: LogFormat,
    default_filter: &str,
    quiet_span_targets: &'static [&'static str],
) -> Result<(), TryInitError> {
    match output {
        LogOutput::Stdout => install(std::io::stdout, format, default_filter, quiet_span_targets),
        LogOutput::Stderr => install(std::io::stderr, format, default_filter, quiet_span_targets),
    }
}

/// [`try_init`] for one writer (generic, so the servers' subscriber
/// writes to stdout without a boxed writer per line).
fn install<W>(
    writer: W,
    format: LogFormat,
    default_filter: &str,
    quiet_span_targets: &'static [&'static str],
) -> Result<(), TryInitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let quiet = quiet_targets(rust_log.as_deref(), quiet_span_targets);
    // A static filter: wasmtime-wasi's span call sites are switched off
    // once (cached interest), not checked per call.
    let quiet_spans = (!quiet.is_empty()).then(|| {
        tracing_subscriber::filter::filter_fn(move |meta| {
            !(meta.is_span() && quiet.iter().any(|t| meta.target().starts_with(t)))
        })
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(quiet_spans);
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
    }
}

/// The targets of `candidates` that `rust_log` does not name.
fn quiet_targets(rust_log: Option<&str>, candidates: &[&'static str]) -> Vec<&'static str> {
    candidates
        .iter()
        .copied()
        .filter(|t| !rust_log.is_some_and(|l| l.contains(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_unknown_ones_are_named() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("yaml") && err.contains("json"), "{err}");
    }

    #[test]
    fn host_call_spans_stay_off_unless_rust_log_names_their_target() {
        let quiet = ["wasmtime_wasi"];
        assert_eq!(quiet_targets(None, &quiet), ["wasmtime_wasi"]);
        assert_eq!(quiet_targets(Some("debug"), &quiet), ["wasmtime_wasi"]);
        assert!(quiet_targets(Some("info,wasmtime_wasi=trace"), &quiet).is_empty());
    }

    #[test]
    fn try_init_over_an_installed_subscriber_is_an_error_not_a_panic() {
        // A silent global subscriber first (nothing else in these tests
        // installs one; one installed before would serve as well), so no
        // test here prints log lines.
        let _ =
            tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
        for output in [LogOutput::Stdout, LogOutput::Stderr] {
            for format in [LogFormat::Text, LogFormat::Json] {
                let result = try_init(output, format, "info", &["wasmtime_wasi"]);
                assert!(result.is_err(), "{output:?} {format:?}");
            }
        }
    }
}
