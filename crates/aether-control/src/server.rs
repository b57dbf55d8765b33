//! Running the server: open the store, bind, serve until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use aether_store::{PgOptions, PgStore, RedbStore, Store, StoreError, StoreOptions};

use crate::config::{Config, is_loopback};
use crate::routes::app;
use crate::state::AppState;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The TLS certificate, key or CA could not be used.
    #[error(transparent)]
    Tls(#[from] aether_http::tls::TlsError),
    /// The notification client could not be built.
    #[error("cannot build the notification client: {0}")]
    Client(#[from] reqwest::Error),
    /// The blocking task opening the store panicked.
    #[error("opening the store failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Time from the end of a request's headers to the end of its body.
/// Module uploads are the large bodies here: the largest default module
/// (50 MB) at a slow 500 KB/s (headers have
/// [`aether_http::connection::HEADER_READ_TIMEOUT`]).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Opens the store the configuration names: PostgreSQL when a database URL
/// is set, else the embedded file.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &config.database_url {
        Some(url) => Arc::new(PgStore::open(PgOptions {
            event_retention: config.event_retention,
            ..PgOptions::new(url.expose_str())
        })?),
        None => Arc::new(RedbStore::open(StoreOptions {
            db_path: config.db_path.clone(),
            blob_dir: config.blob_dir.clone(),
            event_retention: config.event_retention,
        })?),
    })
}

/// A bound, not yet serving, control plane.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
    tls: Option<aether_http::tls::ServerTls>,
    notify_client: reqwest::Client,
}

impl Server {
    /// Loads the TLS files, opens the store and binds the listener.
    pub async fn bind(config: &Config) -> Result<Self, ServeError> {
        let tls = config
            .tls
            .clone()
            .map(aether_http::tls::ServerTls::load)
            .transpose()?;
        let notify_client = aether_http::tls::client_builder(config.ca_cert.as_deref())?
            .timeout(crate::notifier::NOTIFY_TIMEOUT)
            .build()?;
        let store_config = config.clone();
        // Both block on the database (AppState::new reads the nodes'
        // credentials); PostgreSQL's blocking client must not run on an
        // async worker.
        let state = tokio::task::spawn_blocking(move || {
            AppState::new(open_store(&store_config)?, &store_config)
        })
        .await??;
        let addr = aether_http::config::listen_addr(&config.host, config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Server {
            listener,
            state,
            tls,
            notify_client,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Serve)
    }

    /// The state, e.g. to subscribe to changes.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    ///
    /// When it returns, every task it started has ended and no store
    /// operation is running: the store is closed as soon as the caller drops
    /// its own [`AppState`] clones, so the database can be reopened, copied
    /// or backed up right away.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let state = self.state.clone();
        let notifier = tokio::spawn(crate::notifier::run(self.state.clone(), self.notify_client));
        let upkeep = tokio::spawn(self.state.metrics().upkeep());
        let retention = tokio::spawn(crate::retention::run(self.state.clone()));
        let replicas = self
            .state
            .store()
            .is_shared()
            .then(|| tokio::spawn(crate::replicas::run(self.state.clone())));
        let result = aether_http::serve(
            self.listener,
            app(self.state),
            shutdown,
            aether_http::ServeOptions::new(BODY_READ_TIMEOUT).with_tls(self.tls),
        )
        .await
        .map_err(ServeError::Serve);
        // An aborted task drops its state clone only when it is polled
        // again, on some worker, after `abort` returns: wait for that.
        notifier.abort();
        retention.abort();
        if let Some(replicas) = replicas {
            replicas.abort();
            let _ = replicas.await;
        }
        upkeep.abort();
        let _ = notifier.await;
        let _ = retention.await;
        let _ = upkeep.await;
        state.store_operations_finished().await;
        result
    }
}

/// Logs the effective configuration (never the tokens) and the warning for
/// an unauthenticated non-loopback address.
pub fn log_startup(config: &Config, addr: SocketAddr) {
    tracing::info!(%addr, "aether-control listening; {}", config.summary());
    if !config.auth_enabled() {
        if is_loopback(&config.host) {
            tracing::info!("no tokens configured: authentication is off, loopback only");
        } else {
            tracing::warn!(
                "no tokens configured and --insecure given: anyone who can reach {addr} can deploy code"
            );
        }
    }
}
