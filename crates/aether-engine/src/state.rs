//! The edge's shared state: it only wires the components (runtime,
//! registry, executor, metrics, events, distribution); none of them knows
//! it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_proto::control::EventIn;
use aether_runtime::{Runtime, RuntimeError};
use tokio::sync::mpsc;

use crate::config::EngineConfig;
use crate::control::ControlClient;
use crate::distribution::{Distribution, Parts, Settings};
use crate::events::EventSink;
use crate::executor::Executor;
use crate::metrics::{EdgeMetrics, Gauges};
use crate::registry::Registry;

/// Cheap to clone; handed to every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    executor: Executor,
    config: EngineConfig,
    node_id: String,
    started: Instant,
    distribution: Option<Arc<Distribution>>,
    events: EventSink,
    event_rx: std::sync::Mutex<Option<mpsc::Receiver<EventIn>>>,
    metrics: Option<Arc<EdgeMetrics>>,
    tls: Option<aether_http::tls::ServerTls>,
}

/// The edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The wasm runtime could not be created.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The control-plane client could not be built.
    #[error("cannot set up the control-plane client: {0}")]
    Control(#[from] crate::control::SetupError),
    /// The TLS certificate, key or CA could not be used.
    #[error(transparent)]
    Tls(#[from] aether_http::tls::TlsError),
    /// A directory could not be created or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl AppState {
    /// Creates the runtime, the registry over `func_dir`, the node id and,
    /// when `config.telemetry` is on, this edge's metrics recorder (without
    /// it: no metrics, request ids or request spans).
    pub fn new(config: EngineConfig) -> Result<Self, StartError> {
        let telemetry = config.telemetry;
        let tls = config
            .tls
            .clone()
            .map(aether_http::tls::ServerTls::load)
            .transpose()?;
        let io = |what: String| move |source| StartError::Io { what, source };
        std::fs::create_dir_all(&config.data_dir).map_err(io(format!(
            "cannot create data dir {}",
            config.data_dir.display()
        )))?;
        let managed = config.control_url.is_some();
        let blob_dir = config.blob_dir();
        // Writes cut short by a crash leave `<file>.tmp` beside the file.
        let ours =
            |name: &str| name == crate::node_id::FILE || name == crate::distribution::MANIFEST_FILE;
        let cleanup = || io("cannot remove temporary files".into());
        let mut leftovers =
            crate::durable::remove_leftovers(&config.data_dir, ours).map_err(cleanup())?;
        let registry = Registry::open(&config.func_dir, config.limits).map_err(io(format!(
            "cannot open function dir {}",
            config.func_dir.display()
        )))?;
        if managed {
            std::fs::create_dir_all(&blob_dir).map_err(io(format!(
                "cannot create module dir {}",
                blob_dir.display()
            )))?;
            let is_blob = crate::distribution::is_blob_name;
            leftovers += crate::durable::remove_leftovers(&blob_dir, is_blob).map_err(cleanup())?;
            leftovers +=
                crate::durable::remove_leftovers(&config.func_dir, is_blob).map_err(cleanup())?;
            let adopted =
                crate::distribution::adopt_old_blobs(&config.func_dir, &blob_dir).map_err(io(
                    format!("cannot move downloaded modules to {}", blob_dir.display()),
                ))?;
            if adopted > 0 {
                tracing::info!(adopted, dir = %blob_dir.display(), "moved downloaded modules out of the function dir");
            }
        }
        if leftovers > 0 {
            tracing::info!(leftovers, "removed temporary files of writes cut short");
        }
        let node_id = match &config.node_id {
            Some(id) => id.clone(),
            None => crate::node_id::load_or_create(&config.data_dir)
                .map_err(io("cannot keep the node id".into()))?,
        };
        let runtime = Arc::new(Runtime::new(config.runtime_config())?);
        let registry = Arc::new(registry);
        let metrics = telemetry.then(|| Arc::new(EdgeMetrics::new()));
        let (distribution, events, event_rx) = match &config.control_url {
            Some(_) => {
                let client = ControlClient::new(
                    &config.control_urls(),
                    config.node_token.clone(),
                    config.ca_cert.as_deref(),
                )?;
                let (events, rx) = EventSink::channel(&node_id);
                let parts = Parts {
                    registry: registry.clone(),
                    runtime: runtime.clone(),
                    metrics: metrics.clone(),
                    events: events.clone(),
                };
                let settings = Settings {
                    node_id: node_id.clone(),
                    data_dir: config.data_dir.clone(),
                    blob_dir,
                    default_limits: config.limits,
                    node_timeout: config.node_timeout,
                    reconcile_interval: config.reconcile_interval,
                    stats_interval: config.stats_interval,
                };
                let distribution = Distribution::new(client, parts, settings);
                (Some(Arc::new(distribution)), events, Some(rx))
            }
            None => (None, EventSink::disabled(&node_id), None),
        };
        Ok(AppState(Arc::new(Inner {
            distribution,
            events,
            event_rx: std::sync::Mutex::new(event_rx),
            runtime,
            registry,
            executor: Executor::new(config.max_concurrency, config.max_queue)
                .map_err(io("cannot start the long-lane threads".into()))?,
            config,
            node_id,
            started: Instant::now(),
            metrics,
            tls,
        })))
    }

    /// The certificate this edge serves HTTPS with, if any.
    pub fn tls(&self) -> Option<&aether_http::tls::ServerTls> {
        self.0.tls.as_ref()
    }

    /// The wasm runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.0.runtime
    }

    /// Known functions.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Execution slots.
    pub fn executor(&self) -> &Executor {
        &self.0.executor
    }

    /// Effective configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.0.config
    }

    /// This edge's id.
    pub fn node_id(&self) -> &str {
        &self.0.node_id
    }

    /// Distribution state, when a control plane is configured.
    pub fn distribution(&self) -> Option<&Arc<Distribution>> {
        self.0.distribution.as_ref()
    }

    /// Where events go (a no-op sink in standalone mode).
    pub fn events(&self) -> &EventSink {
        &self.0.events
    }

    /// Takes the event receiver (once, for the reporter task).
    pub fn take_event_receiver(&self) -> Option<mpsc::Receiver<EventIn>> {
        self.0
            .event_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// This edge's metrics (`None` when built without telemetry).
    pub fn metrics(&self) -> Option<&EdgeMetrics> {
        self.0.metrics.as_deref()
    }

    /// The values `/metrics` copies from the other components.
    pub fn gauges(&self) -> Gauges {
        let (held_modules, module_memory_bytes) = self.0.runtime.held_modules();
        Gauges {
            runtime: self.0.runtime.stats(),
            cached_modules: self.0.runtime.cached_modules() as u64,
            held_modules: held_modules as u64,
            module_memory_bytes,
            module_memory_budget: self.0.runtime.config().module_memory_budget,
            in_flight: self.0.executor.running(),
            waiting: self.0.executor.waiting(),
            events_dropped: self.0.events.dropped(),
            functions: self.0.registry.len(),
            uptime: self.uptime(),
        }
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.0.started.elapsed()
    }
}
