//! The edge's Prometheus metrics (`GET /metrics`), on an
//! [`aether_http::metrics::Exporter`] of its own.
//!
//! Handles are registered on that exporter directly, once per function
//! (kept in its [`ExecutionStats`](crate::stats::ExecutionStats)),
//! so the request path only adds to atomics: no label strings, no lock.
//! Values the runtime and the executor already count (cache loads, queue
//! depth, in-flight executions, dropped events) are copied into the
//! exporter when `/metrics` is scraped, costing the hot path nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use aether_http::metrics::{Exporter, Family, label_value};
use aether_proto::ErrorCode;
use aether_runtime::{CacheStats, ModuleSource};
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata};

use crate::histogram::Buckets;

/// Label value of errors that concern no known function (bad request,
/// unknown name, …): function names are not used as labels until they
/// exist, so clients cannot create series.
pub const UNKNOWN_FUNCTION: &str = "_unknown";

const EXECUTION_SECONDS: &str = "aether_edge_execution_duration_seconds";
const MEMORY_BYTES: &str = "aether_edge_memory_used_bytes";
const LOAD_SECONDS: &str = "aether_edge_module_load_duration_seconds";
const INVOCATIONS: &str = "aether_edge_invocations_total";
const ERRORS: &str = "aether_edge_errors_total";
const MODULE_LOADS: &str = "aether_edge_module_loads_total";
const OUTBOUND: &str = "aether_edge_outbound_requests_total";
const OUTBOUND_BYTES: &str = "aether_edge_outbound_response_bytes_total";
static OUTBOUND_SENT: [Label; 1] = [Label::from_static_parts("result", "sent")];
static OUTBOUND_DENIED: [Label; 1] = [Label::from_static_parts("result", "denied")];

/// Execution-time buckets, seconds: 0.5 ms (a cached hello world) up to
/// the longest timeouts.
const EXECUTION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Peak linear memory buckets, bytes: 64 KiB (one page) to 1 GiB.
const MEMORY_BUCKETS: &[f64] = &[
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
];
/// Module load buckets, seconds: a disk artifact takes milliseconds, a
/// large compile seconds.
const LOAD_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("aether_engine", metrics::Level::INFO, Some(module_path!()));

/// Number of [`ErrorCode`] variants (for per-code handle arrays).
const ERROR_CODES: usize = ErrorCode::ALL.len();

/// The edge's metrics: a recorder of its own and the handles that do not
/// depend on a function.
pub struct EdgeMetrics {
    exporter: Exporter,
    loads: [Counter; 3],
    load_seconds_disk: Histogram,
    load_seconds_compiled: Histogram,
    evictions: Counter,
    cached_modules: Gauge,
    held_modules: Gauge,
    module_memory: Gauge,
    module_memory_budget: Gauge,
    in_flight: Gauge,
    queue_depth: Gauge,
    events_dropped: Counter,
    functions: Gauge,
    uptime: Gauge,
    outbound_sent: Counter,
    outbound_denied: Counter,
    outbound_bytes: Counter,
    /// Error answers that concern no known function, by code.
    unknown_errors: ErrorCounts,
    /// Every function's request-path counts, for `/metrics`. Held weakly:
    /// a function's [`FunctionMetrics`] (in its registry statistics) owns
    /// them, so the series of a removed function leave with it.
    function_counts: std::sync::Mutex<Vec<Weak<FunctionCounts>>>,
}

impl std::fmt::Debug for EdgeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeMetrics").finish_non_exhaustive()
    }
}

/// The counts of one function name, made on its first invocation.
#[derive(Debug)]
pub struct FunctionMetrics {
    counts: Arc<FunctionCounts>,
}

/// What every execution of one function records: its invocation count and
/// its execution-time and memory histograms, kept in one slot per thread
/// (see [`Slot`]) and summed when `/metrics` is scraped, and its error
/// answers by code. Rendered by this module, not the exporter, so the
/// series of a removed function go away with it; counts of a later
/// function of that name start from zero (a counter reset).
#[derive(Debug)]
struct FunctionCounts {
    /// The function's name, escaped as a label value.
    function: String,
    slots: Box<[Slot]>,
    errors: ErrorCounts,
}

/// Error answers by [`ErrorCode`].
#[derive(Debug, Default)]
struct ErrorCounts([AtomicU64; ERROR_CODES]);

impl ErrorCounts {
    fn increment(&self, code: ErrorCode) {
        self.0[code as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The `aether_edge_errors_total` lines of the codes counted so far.
    fn render(&self, out: &mut String, function: &str) {
        use std::fmt::Write as _;
        for code in ErrorCode::ALL {
            let n = self.0[code as usize].load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "{ERRORS}{{function=\"{function}\",code=\"{}\"}} {n}",
                    code.as_str()
                );
            }
        }
    }
}

/// One thread's counts of one function, on cache lines of its own: the
/// two request workers of a 2-core edge running the same function no
/// longer bounce the same lines between cores on every request (measured
/// before: 0.3 µs per request for one shared counter and two shared
/// histograms, by a per-symbol profile under load).
#[derive(Debug)]
#[repr(align(128))]
struct Slot {
    invocations: AtomicU64,
    duration: Buckets<{ EXECUTION_BUCKETS.len() + 1 }>,
    memory: Buckets<{ MEMORY_BUCKETS.len() + 1 }>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            invocations: AtomicU64::new(0),
            duration: Buckets::new(EXECUTION_BUCKETS),
            memory: Buckets::new(MEMORY_BUCKETS),
        }
    }
}

/// Slots per function: one per thread that runs guests (request workers
/// and the long lane, one each per core), at most 16 (a slot is ≈ 0.3 KB,
/// so a 64-core edge with 1 000 functions spends 4 MB on them). Threads
/// beyond that share slots, which only costs contention.
fn slot_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores * 2).clamp(2, 16)
    })
}

/// The calling thread's slot among `len`: threads are numbered in the
/// order they first record.
fn slot_index(len: usize) -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i) % len
}

/// The invocation and error counters of every function (errors that
/// concern no known function under `_unknown`).
fn render_counters(out: &mut String, functions: &[Arc<FunctionCounts>], unknown: &ErrorCounts) {
    use std::fmt::Write as _;
    if !functions.is_empty() {
        out.push_str(&format!(
            "# HELP {INVOCATIONS} Executions started, by function.\n# TYPE {INVOCATIONS} counter\n"
        ));
        for f in functions {
            let total: u64 = f
                .slots
                .iter()
                .map(|s| s.invocations.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(out, "{INVOCATIONS}{{function=\"{}\"}} {total}", f.function);
        }
        out.push('\n');
    }
    let mut errors = String::new();
    unknown.render(&mut errors, UNKNOWN_FUNCTION);
    for f in functions {
        f.errors.render(&mut errors, &f.function);
    }
    if !errors.is_empty() {
        out.push_str(&format!(
            "# HELP {ERRORS} Error answers of POST /execute, by function (_unknown when none matched) and error code.\n# TYPE {ERRORS} counter\n{errors}\n"
        ));
    }
}

/// The `# HELP`/`# TYPE` header and every function's series of one
/// histogram family.
fn render_family<const N: usize>(
    out: &mut String,
    (name, help): (&str, &str),
    bounds: &[f64],
    functions: &[Arc<FunctionCounts>],
    pick: fn(&Slot) -> &Buckets<N>,
) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
    for f in functions {
        Buckets::render(f.slots.iter().map(pick), bounds, out, name, &f.function);
    }
    out.push('\n');
}

impl Default for EdgeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EdgeMetrics {
    /// A fresh exporter with the edge's families.
    pub fn new() -> Self {
        let exporter = Exporter::new(&METADATA, FAMILIES);
        let counter = |name: &'static str| exporter.counter(&Key::from_static_name(name));
        let gauge = |name: &'static str| exporter.gauge(&Key::from_static_name(name));
        static LOADS: [[Label; 1]; 3] = [
            [Label::from_static_parts("source", "memory")],
            [Label::from_static_parts("source", "disk")],
            [Label::from_static_parts("source", "compiled")],
        ];
        let load_counter = |labels: &'static [Label]| {
            exporter.counter(&Key::from_static_parts(MODULE_LOADS, labels))
        };
        static LOAD_DISK: [Label; 1] = [Label::from_static_parts("source", "disk")];
        static LOAD_COMPILED: [Label; 1] = [Label::from_static_parts("source", "compiled")];
        EdgeMetrics {
            loads: [
                load_counter(&LOADS[0]),
                load_counter(&LOADS[1]),
                load_counter(&LOADS[2]),
            ],
            load_seconds_disk: exporter
                .histogram(&Key::from_static_parts(LOAD_SECONDS, &LOAD_DISK)),
            load_seconds_compiled: exporter
                .histogram(&Key::from_static_parts(LOAD_SECONDS, &LOAD_COMPILED)),
            evictions: counter("aether_edge_cache_evictions_total"),
            cached_modules: gauge("aether_edge_cached_modules"),
            held_modules: gauge("aether_edge_held_modules"),
            module_memory: gauge("aether_edge_module_memory_bytes"),
            module_memory_budget: gauge("aether_edge_module_memory_budget_bytes"),
            in_flight: gauge("aether_edge_executions_in_flight"),
            queue_depth: gauge("aether_edge_queue_depth"),
            events_dropped: counter("aether_edge_events_dropped_total"),
            functions: gauge("aether_edge_functions"),
            uptime: gauge("aether_edge_uptime_seconds"),
            outbound_sent: exporter.counter(&Key::from_static_parts(OUTBOUND, &OUTBOUND_SENT)),
            outbound_denied: exporter.counter(&Key::from_static_parts(OUTBOUND, &OUTBOUND_DENIED)),
            outbound_bytes: counter(OUTBOUND_BYTES),
            unknown_errors: ErrorCounts::default(),
            function_counts: std::sync::Mutex::default(),
            exporter,
        }
    }

    /// The handles of the function `name`, registered once per name.
    pub fn function<'a>(
        &self,
        slot: &'a OnceLock<FunctionMetrics>,
        name: &str,
    ) -> &'a FunctionMetrics {
        slot.get_or_init(|| {
            let counts = Arc::new(FunctionCounts {
                function: label_value(name),
                slots: (0..slot_count()).map(|_| Slot::new()).collect(),
                errors: ErrorCounts::default(),
            });
            self.function_counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Arc::downgrade(&counts));
            FunctionMetrics { counts }
        })
    }

    /// Counts an error answer to `POST /execute`.
    pub fn error(&self, function: Option<&FunctionMetrics>, code: ErrorCode) {
        let counts = function.map_or(&self.unknown_errors, |f| &f.counts.errors);
        counts.increment(code);
    }

    /// Counts one invocation's outbound HTTP requests (sent and refused)
    /// and the response bytes they received.
    pub fn outbound(&self, counts: aether_runtime::OutboundCounts) {
        if counts != aether_runtime::OutboundCounts::default() {
            self.outbound_sent.increment(counts.requests);
            self.outbound_denied.increment(counts.denied);
            self.outbound_bytes.increment(counts.bytes);
        }
    }

    /// Records how long loading a module took, unless it came from memory.
    pub fn module_loaded(&self, source: ModuleSource, elapsed: Duration) {
        match source {
            ModuleSource::Memory => {}
            ModuleSource::Disk => self.load_seconds_disk.record(elapsed.as_secs_f64()),
            ModuleSource::Compiled => self.load_seconds_compiled.record(elapsed.as_secs_f64()),
        }
    }

    /// The exporter's upkeep, to be spawned with the server.
    pub fn upkeep(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.exporter.upkeep()
    }

    /// The Prometheus text of this edge, after copying in `gauges`, the
    /// values other parts count themselves.
    pub fn render(&self, gauges: &Gauges) -> String {
        let stats = &gauges.runtime;
        self.loads[0].absolute(stats.memory_hits);
        self.loads[1].absolute(stats.disk_loads);
        self.loads[2].absolute(stats.compiled);
        let cached = gauges.cached_modules;
        // Every load from disk or by compiling inserted a module; those no
        // longer in memory were evicted (LRU) or dropped on removal.
        self.evictions
            .absolute((stats.disk_loads + stats.compiled).saturating_sub(cached));
        self.cached_modules.set(cached as f64);
        self.held_modules.set(gauges.held_modules as f64);
        self.module_memory.set(gauges.module_memory_bytes as f64);
        self.module_memory_budget
            .set(gauges.module_memory_budget as f64);
        self.in_flight.set(gauges.in_flight as f64);
        self.queue_depth.set(gauges.waiting as f64);
        self.events_dropped.absolute(gauges.events_dropped);
        self.functions.set(gauges.functions as f64);
        self.uptime.set(gauges.uptime.as_secs_f64());
        let functions: Vec<Arc<FunctionCounts>> = {
            let mut held = self
                .function_counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Removed functions' counts are gone: forget their places.
            held.retain(|f| f.strong_count() > 0);
            held.iter().filter_map(Weak::upgrade).collect()
        };
        let mut text = self.exporter.render();
        render_counters(&mut text, &functions, &self.unknown_errors);
        if !functions.is_empty() {
            render_family(
                &mut text,
                (EXECUTION_SECONDS, "Wall time of executions, by function."),
                EXECUTION_BUCKETS,
                &functions,
                |slot| &slot.duration,
            );
            render_family(
                &mut text,
                (
                    MEMORY_BYTES,
                    "Peak linear memory of executions, by function.",
                ),
                MEMORY_BUCKETS,
                &functions,
                |slot| &slot.memory,
            );
        }
        text
    }
}

impl FunctionMetrics {
    /// Counts an execution that reached the sandbox.
    pub fn invoked(&self) {
        self.slot().invocations.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an execution's wall time and peak linear memory.
    pub fn executed(&self, elapsed: Duration, peak_memory_bytes: Option<u64>) {
        let slot = self.slot();
        slot.duration.record(elapsed.as_secs_f64());
        if let Some(bytes) = peak_memory_bytes {
            slot.memory.record(bytes as f64);
        }
    }

    /// The calling thread's slot.
    fn slot(&self) -> &Slot {
        let slots = &self.counts.slots;
        &slots[slot_index(slots.len())]
    }
}

/// The families the exporter renders (the per-function counters and
/// histograms are rendered after them by [`render_counters`] and
/// [`render_family`]).
const FAMILIES: &[Family] = &[
    Family::counter(
        MODULE_LOADS,
        "Module lookups by where the module came from: memory (cache hit), disk (precompiled artifact) or compiled.",
    ),
    Family::counter(
        "aether_edge_cache_evictions_total",
        "Compiled modules dropped from the in-memory cache.",
    ),
    Family::counter(
        "aether_edge_events_dropped_total",
        "Events to the control plane dropped (buffer full or control plane unreachable).",
    ),
    Family::counter(
        OUTBOUND,
        "Outbound HTTP requests of wasi:http functions: sent, or denied (not in the function's allow-list, a private address, or over the per-invocation cap).",
    ),
    Family::counter(
        OUTBOUND_BYTES,
        "Response bytes wasi:http functions received from their outbound requests.",
    ),
    Family::gauge(
        "aether_edge_cached_modules",
        "Modules linked and ready to instantiate (at most cache_size).",
    ),
    Family::gauge(
        "aether_edge_held_modules",
        "Modules held in memory compiled, linked or not (every module loaded since start whose function is deployed).",
    ),
    Family::gauge(
        "aether_edge_module_memory_bytes",
        "Bytes of compiled code, data and metadata of the modules held.",
    ),
    Family::gauge(
        "aether_edge_module_memory_budget_bytes",
        "The most the modules held may take (module_memory_budget); loads past it are refused.",
    ),
    Family::gauge(
        "aether_edge_executions_in_flight",
        "Executions running now.",
    ),
    Family::gauge(
        "aether_edge_queue_depth",
        "Requests waiting for an execution slot.",
    ),
    Family::gauge("aether_edge_functions", "Functions this edge serves."),
    Family::gauge("aether_edge_uptime_seconds", "Seconds since start."),
    Family::seconds(
        LOAD_SECONDS,
        "Time to load a module not in memory: from a disk artifact or by compiling.",
        LOAD_BUCKETS,
    ),
];

/// Values other parts of the edge count themselves, copied into the
/// exporter when `/metrics` is scraped (costing the hot path nothing).
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// Where modules came from since start.
    pub runtime: CacheStats,
    /// Modules linked and ready.
    pub cached_modules: u64,
    /// Modules held in memory, linked or not.
    pub held_modules: u64,
    /// Their bytes.
    pub module_memory_bytes: u64,
    /// The most they may take.
    pub module_memory_budget: u64,
    /// Executions running now.
    pub in_flight: usize,
    /// Requests waiting for a slot.
    pub waiting: usize,
    /// Events dropped so far.
    pub events_dropped: u64,
    /// Functions served.
    pub functions: usize,
    /// Time since start.
    pub uptime: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_recorded_on_many_threads_are_all_counted() {
        let metrics = EdgeMetrics::new();
        let slot = OnceLock::new();
        let f = metrics.function(&slot, "f");
        std::thread::scope(|scope| {
            for _ in 0..(slot_count() + 3) {
                scope.spawn(|| {
                    for _ in 0..100 {
                        f.invoked();
                        f.executed(Duration::from_millis(2), Some(65_536));
                    }
                });
            }
        });
        let n = (slot_count() + 3) * 100;
        let counts = &f.counts;
        let invoked: u64 = counts
            .slots
            .iter()
            .map(|s| s.invocations.load(Ordering::Relaxed))
            .sum();
        assert_eq!(invoked, n as u64);
        let mut text = String::new();
        Buckets::render(
            counts.slots.iter().map(|s| &s.duration),
            EXECUTION_BUCKETS,
            &mut text,
            "d",
            "f",
        );
        assert!(
            text.contains(&format!("d_bucket{{function=\"f\",le=\"0.0025\"}} {n}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("d_count{{function=\"f\"}} {n}\n")),
            "{text}"
        );
        assert!(
            counts
                .slots
                .iter()
                .filter(|s| s.invocations.load(Ordering::Relaxed) > 0)
                .count()
                > 1,
            "spread over slots"
        );
    }

    #[test]
    fn a_removed_functions_series_leave_the_text_with_its_counts() {
        let metrics = EdgeMetrics::new();
        let gauges = Gauges {
            runtime: aether_runtime::CacheStats::default(),
            cached_modules: 0,
            held_modules: 0,
            module_memory_bytes: 0,
            module_memory_budget: 0,
            in_flight: 0,
            waiting: 0,
            events_dropped: 0,
            functions: 0,
            uptime: Duration::ZERO,
        };
        let (kept, removed) = (OnceLock::new(), OnceLock::new());
        for (slot, name) in [(&kept, "kept"), (&removed, "gone")] {
            let f = metrics.function(slot, name);
            f.invoked();
            f.executed(Duration::from_millis(1), Some(65_536));
            metrics.error(Some(f), ErrorCode::Trap);
        }
        metrics.error(None, ErrorCode::InvalidRequest);
        let text = metrics.render(&gauges);
        for line in [
            "aether_edge_invocations_total{function=\"gone\"} 1\n",
            "aether_edge_errors_total{function=\"gone\",code=\"trap\"} 1\n",
            "aether_edge_errors_total{function=\"_unknown\",code=\"invalid_request\"} 1\n",
            "aether_edge_execution_duration_seconds_count{function=\"gone\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE aether_edge_errors_total counter")
                .count(),
            1
        );
        drop(removed);
        let text = metrics.render(&gauges);
        assert!(!text.contains("function=\"gone\""), "{text}");
        assert!(
            text.contains("aether_edge_invocations_total{function=\"kept\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn error_codes_fit_the_per_code_handles() {
        for code in ErrorCode::ALL {
            assert!((code as usize) < ERROR_CODES, "{code:?}");
        }
    }
}
