//! The shared state of the server: store, settings, auth, change
//! notifications and counters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use aether_http::ApiError;
use aether_store::{Store, StoreError};

use crate::auth::Auth;
use crate::config::Config;
use crate::error::store_error;
use crate::metrics::ControlMetrics;
use crate::stats::StatsBook;

/// Changes buffered for slow subscribers before they are told they lagged
/// (they then reconcile against the manifest, as after a missed
/// notification).
const CHANGE_CHANNEL_CAPACITY: usize = 1024;

/// A change of what edges should run, sent after it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new version was deployed and made current.
    Deployed {
        /// Function name.
        name: String,
        /// The new current version.
        version: u64,
        /// Its sha256.
        sha256: String,
    },
    /// An older version was made current.
    RolledBack {
        /// Function name.
        name: String,
        /// The now-current version.
        version: u64,
        /// Its sha256.
        sha256: String,
    },
    /// The function was removed.
    Deleted {
        /// Function name.
        name: String,
    },
}

/// Settings the handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Offline after this long without a heartbeat.
    pub node_timeout: Duration,
    /// Forgotten after this long without a heartbeat.
    pub node_retention: Duration,
    /// Largest accepted module.
    pub max_module_size: u64,
    /// Largest accepted JSON deploy body.
    pub max_json_body: u64,
    /// Longest per-function timeout a deploy may set.
    pub max_function_timeout: Duration,
    /// Largest per-function memory limit a deploy may set, bytes.
    pub max_function_memory: u64,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            node_timeout: config.node_timeout,
            node_retention: config.node_retention,
            max_module_size: config.max_module_size,
            max_json_body: config.max_json_body(),
            max_function_timeout: config.max_function_timeout,
            max_function_memory: config.max_function_memory,
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    /// Held shared by every store operation run by [`AppState::blocking`]
    /// until it ends, even when its caller was dropped (a blocking thread
    /// cannot be cancelled); taken exclusively to wait for all of them.
    store_operations: Arc<tokio::sync::RwLock<()>>,
    settings: Settings,
    auth: Auth,
    changes: broadcast::Sender<Change>,
    metrics: Arc<ControlMetrics>,
    stats: StatsBook,
    node_token: Option<aether_http::Secret>,
    started: Instant,
}

/// The one state of the control plane, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a store with the settings and tokens of `config`.
    /// Reads the stored nodes' credentials (a small blocking read, at
    /// start).
    pub fn new(store: Arc<dyn Store>, config: &Config) -> Result<Self, StoreError> {
        let (changes, _) = broadcast::channel(CHANGE_CHANNEL_CAPACITY);
        let auth = Auth::new(&config.admin_tokens, config.node_token.as_ref());
        auth.load_nodes(&store.nodes()?);
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                store_operations: Arc::default(),
                settings: Settings::from(config),
                auth,
                changes,
                metrics: Arc::new(ControlMetrics::new()),
                stats: StatsBook::default(),
                node_token: config.node_token.clone(),
                started: Instant::now(),
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Handler settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Token checks.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// This server's metrics (its own Prometheus exporter, never the
    /// global recorder).
    pub fn metrics(&self) -> &Arc<ControlMetrics> {
        &self.inner.metrics
    }

    /// Execution statistics reported by edges.
    pub fn stats(&self) -> &StatsBook {
        &self.inner.stats
    }

    /// The node token, for calls to edges (never logged).
    pub fn node_token(&self) -> Option<&aether_http::Secret> {
        self.inner.node_token.as_ref()
    }

    /// Time since the state was created.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Subscribes to changes (the hook for notifying edges).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// Publishes a change that is already durable.
    pub fn publish(&self, change: Change) {
        // `send` fails only when nobody subscribes, which is normal: edges
        // also reconcile periodically against the manifest.
        if self.inner.changes.send(change).is_err() {
            tracing::trace!("no change subscribers");
        }
    }

    /// Runs a store operation on a blocking thread.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        let running = self.inner.store_operations.clone().read_owned().await;
        tokio::task::spawn_blocking(move || {
            let result = f(store.as_ref());
            // The store first: the permit says the store is no longer held.
            drop(store);
            drop(running);
            result
        })
        .await
        .map_err(|e| ApiError::internal("running a store task", e))?
        .map_err(store_error)
    }

    /// Waits until every store operation started by [`Self::blocking`] has
    /// ended and dropped its handle on the store.
    pub async fn store_operations_finished(&self) {
        let _all = self.inner.store_operations.write().await;
    }
}
