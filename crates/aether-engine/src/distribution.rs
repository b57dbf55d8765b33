//! Code distribution, edge side: registration and heartbeats, and
//! reconciliation against the control plane's manifest (on notification, at
//! start, periodically, and on a request for a name this edge does not hold
//! yet). New modules are downloaded, verified against their sha256, stored
//! in `<data_dir>/modules` as `<sha256>.wasm` and compiled *before* the
//! registry switches to them, so a request runs either the old version or
//! the new one, complete. `func_dir` stays the operator's: its `<name>.wasm`
//! files are served beside the managed functions.
//!
//! The last applied manifest is kept in `<data_dir>/manifest.json`, so a
//! restarted edge serves its functions even while the control plane is down.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_http::auth::Token;
use aether_proto::control::{
    CompileFailed, FunctionLoaded, FunctionRemoved, FunctionStatsReport, JoinRequest, Manifest,
    ManifestEntry, RegisterRequest,
};
use aether_runtime::{Limits, ModuleHash, Runtime};
use tokio::sync::{Mutex, Notify};

use crate::control::{CallAuth, ControlClient, ControlError};
use crate::events::EventSink;
use crate::identity::Identity;
use crate::metrics::EdgeMetrics;
use crate::registry::{ManagedFunction, Registry};

/// File in the data dir holding the last applied manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// On-demand reconciles (a request for an unknown name) start at most this
/// often, so a flood of unknown names costs the control plane at most ten
/// manifest reads a second per edge; concurrent requests share one.
const ON_DEMAND_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// First retry delay after a failed heartbeat; doubles up to the interval.
const MIN_BACKOFF: Duration = Duration::from_millis(250);

/// Distribution state of a managed edge, and the parts of the edge it
/// installs functions into.
pub struct Distribution {
    client: ControlClient,
    /// Serialises reconciles and remembers the last one.
    last: Mutex<Option<LastReconcile>>,
    wake: Notify,
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    metrics: Option<Arc<EdgeMetrics>>,
    events: EventSink,
    settings: Settings,
    /// What the control plane must present to `/notify`: the node token
    /// until this edge has joined, then its notify secret (or, with a
    /// control plane older than per-edge credentials, still the node
    /// token); `None` without a node token.
    notify: std::sync::RwLock<Option<Token>>,
}

/// What distribution needs of the edge's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This edge's id.
    pub node_id: String,
    /// Where the last applied manifest is kept.
    pub data_dir: PathBuf,
    /// Where downloaded modules are kept, as `<sha256>.wasm`.
    pub blob_dir: PathBuf,
    /// Limits of a function whose manifest entry sets none.
    pub default_limits: Limits,
    /// The control plane's heartbeat timeout; heartbeats every third.
    pub node_timeout: Duration,
    /// Periodic reconcile against the manifest.
    pub reconcile_interval: Duration,
    /// How often per-function statistics are reported.
    pub stats_interval: Duration,
}

/// The parts of the edge distribution works on.
#[derive(Clone)]
pub struct Parts {
    /// Functions served.
    pub registry: Arc<Registry>,
    /// Where modules are compiled and cached.
    pub runtime: Arc<Runtime>,
    /// Load-time metrics, when telemetry is on.
    pub metrics: Option<Arc<EdgeMetrics>>,
    /// Where events go.
    pub events: EventSink,
}

/// When the last successful reconcile started and finished.
#[derive(Debug, Clone, Copy)]
struct LastReconcile {
    started: Instant,
    finished: Instant,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("client", &self.client)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Distribution {
    /// Distribution through `client` into `parts`.
    pub fn new(client: ControlClient, parts: Parts, settings: Settings) -> Self {
        let notify = client.join_token().map(Token::new);
        Distribution {
            client,
            last: Mutex::new(None),
            wake: Notify::new(),
            registry: parts.registry,
            runtime: parts.runtime,
            metrics: parts.metrics,
            events: parts.events,
            settings,
            notify: std::sync::RwLock::new(notify),
        }
    }

    /// What the control plane must present to `/notify`, if anything.
    pub fn notify_token(&self) -> Option<Token> {
        self.notify
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// From now on calls carry `identity`'s credential and `/notify`
    /// wants its notify secret.
    fn adopt(&self, identity: Identity) {
        *self
            .notify
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(identity.notify);
        self.client.set_auth(CallAuth::Bearer(identity.credential));
    }

    /// The control-plane client.
    pub fn client(&self) -> &ControlClient {
        &self.client
    }

    /// Asks the reconcile loop to run now (a notification arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Fetches the manifest and applies it. Serialised: concurrent callers wait
/// for the running reconcile, then run their own.
pub async fn reconcile(dist: &Distribution) -> Result<(), ControlError> {
    let mut last = dist.last.lock().await;
    reconcile_locked(dist, &mut last).await
}

async fn reconcile_locked(
    dist: &Distribution,
    last: &mut Option<LastReconcile>,
) -> Result<(), ControlError> {
    let started = Instant::now();
    let manifest = dist.client.manifest().await?;
    apply(dist, &manifest, Some(&dist.client)).await;
    save_manifest(dist.settings.data_dir.as_path(), &manifest);
    *last = Some(LastReconcile {
        started,
        finished: Instant::now(),
    });
    Ok(())
}

/// Reconciles for a request naming a function this edge does not hold, so
/// a deploy whose notification has not arrived yet is served, not a 404.
/// Skipped when a reconcile that started after the request arrived has
/// completed (its result is fresh); otherwise waits until
/// [`ON_DEMAND_MIN_INTERVAL`] has passed since the last one finished.
pub async fn reconcile_on_demand(dist: &Distribution) {
    // Not joined yet: a request does not wait for that.
    if !dist.client.is_ready() {
        return;
    }
    let arrival = Instant::now();
    let mut last = dist.last.lock().await;
    if let Some(previous) = *last {
        if previous.started > arrival {
            return;
        }
        let since = previous.finished.elapsed();
        if since < ON_DEMAND_MIN_INTERVAL {
            tokio::time::sleep(ON_DEMAND_MIN_INTERVAL - since).await;
        }
    }
    if let Err(e) = reconcile_locked(dist, &mut last).await {
        tracing::debug!(error = %e, "on-demand reconcile failed");
    }
}

/// Installs the functions of the manifest saved by the previous run whose
/// modules are still on disk (no network). Called before serving.
pub async fn restore(dist: &Distribution) {
    let path = dist.settings.data_dir.join(MANIFEST_FILE);
    let manifest = match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable saved manifest");
                return;
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read saved manifest");
            return;
        }
    };
    apply(dist, &manifest, None).await;
    tracing::info!(
        functions = dist.registry.len(),
        "restored functions from the last manifest"
    );
}

fn save_manifest(data_dir: &Path, manifest: &Manifest) {
    let result = serde_json::to_vec(manifest)
        .map_err(std::io::Error::other)
        .and_then(|json| crate::durable::write(&data_dir.join(MANIFEST_FILE), &json));
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot save the manifest; a restart without the control plane would serve an older set");
    }
}

fn limits_of(entry: &ManifestEntry, defaults: Limits) -> Limits {
    let mut limits = defaults;
    match entry.limits.parse() {
        Ok(parsed) => {
            if let Some(t) = parsed.timeout {
                limits.timeout = t;
            }
            if let Some(m) = parsed.memory_bytes {
                limits.memory_bytes = m;
            }
        }
        Err(e) => {
            tracing::warn!(function = %entry.name, error = %e, "ignoring invalid limits from the manifest")
        }
    }
    limits
}

/// Brings the registry in line with `manifest`. Downloads missing modules
/// when a client is given; without one, installs only what is on disk.
async fn apply(dist: &Distribution, manifest: &Manifest, client: Option<&ControlClient>) {
    let registry = &dist.registry;
    let mut wanted = HashSet::new();
    let mut changed = false;
    for entry in &manifest.functions {
        if aether_proto::validate_function_name(&entry.name).is_err() {
            tracing::warn!(function = %entry.name, "manifest names an invalid function; skipped");
            continue;
        }
        wanted.insert(entry.name.clone());
        let Some(hash) = ModuleHash::from_hex(&entry.sha256) else {
            tracing::warn!(function = %entry.name, sha256 = %entry.sha256, "manifest has an invalid sha256; skipped");
            continue;
        };
        if let Some(current) = registry.get(&entry.name)
            && current.hash == hash
            && current.version == Some(entry.version)
        {
            continue;
        }
        let path = dist
            .settings
            .blob_dir
            .join(format!("{}.wasm", hash.to_hex()));
        match ensure_blob(&path, hash, entry, client).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(function = %entry.name, version = entry.version, error = %e, "cannot fetch module; keeping the current version");
                continue;
            }
        }
        precompile(dist, entry, hash, &path).await;
        registry.install(ManagedFunction {
            name: entry.name.clone(),
            hash,
            path,
            args: entry.args.clone(),
            env: entry
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            limits: limits_of(entry, dist.settings.default_limits),
            kind: entry.kind,
            allowed_outbound_hosts: entry.allowed_outbound_hosts.clone(),
            version: entry.version,
        });
        tracing::info!(function = %entry.name, version = entry.version, sha256 = %hash, "function ready");
        changed = true;
    }
    for gone in registry
        .managed()
        .into_iter()
        .filter(|e| !wanted.contains(&e.name))
    {
        registry.remove(&gone.name);
        dist.runtime.evict(&gone.hash);
        changed = true;
        tracing::info!(function = %gone.name, "function removed");
        dist.events.report(&FunctionRemoved {
            function: gone.name.clone(),
        });
    }
    if client.is_some() {
        remove_unreferenced_blobs(dist);
    }
    // A replaced version's or a removed function's compiled artifact goes
    // with it.
    if changed {
        crate::loader::sweep_artifacts(&dist.runtime, registry);
    }
}

/// Makes sure `path` holds the verified module; returns false when it is
/// missing and cannot be downloaded (no client).
async fn ensure_blob(
    path: &Path,
    hash: ModuleHash,
    entry: &ManifestEntry,
    client: Option<&ControlClient>,
) -> Result<bool, String> {
    let existing = path.to_owned();
    let on_disk = tokio::task::spawn_blocking(move || std::fs::read(&existing))
        .await
        .map_err(|e| e.to_string())?;
    if let Ok(bytes) = on_disk {
        if ModuleHash::of(&bytes) == hash {
            return Ok(true);
        }
        tracing::warn!(path = %path.display(), "stored module does not match its sha256; fetching it again");
    }
    let Some(client) = client else {
        return Ok(false);
    };
    let bytes = client
        .blob(&entry.name, entry.version)
        .await
        .map_err(|e| e.to_string())?;
    let actual = ModuleHash::of(&bytes);
    if actual != hash {
        return Err(format!(
            "downloaded module hashes to {actual}, the manifest says {hash}; refused"
        ));
    }
    let target: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || crate::durable::write(&target, &bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot store module: {e}"))?;
    Ok(true)
}

async fn precompile(dist: &Distribution, entry: &ManifestEntry, hash: ModuleHash, path: &Path) {
    let (runtime, metrics, p) = (dist.runtime.clone(), dist.metrics.clone(), path.to_owned());
    let loaded = tokio::task::spawn_blocking(move || {
        crate::loader::load_module(&runtime, metrics.as_deref(), hash, &p)
    })
    .await;
    match loaded {
        Ok(Ok((_, source))) => dist.events.report(&FunctionLoaded {
            function: entry.name.clone(),
            version: entry.version,
            sha256: entry.sha256.clone(),
            source: crate::loader::cache_source(source),
        }),
        Ok(Err(e)) => {
            tracing::warn!(function = %entry.name, version = entry.version, error = %e, "function cannot be compiled");
            dist.events.report(&CompileFailed {
                function: entry.name.clone(),
                version: entry.version,
                error: e.to_string(),
            });
        }
        Err(e) => tracing::error!(function = %entry.name, error = %e, "compile task failed"),
    }
}

fn remove_unreferenced_blobs(dist: &Distribution) {
    let registry = &dist.registry;
    let keep: HashSet<String> = registry
        .managed()
        .iter()
        .map(|e| format!("{}.wasm", e.hash.to_hex()))
        .collect();
    let Ok(dir) = std::fs::read_dir(&dist.settings.blob_dir) else {
        return;
    };
    for dirent in dir.flatten() {
        let name = dirent.file_name().to_string_lossy().into_owned();
        if is_blob_name(&name) && !keep.contains(&name) {
            match std::fs::remove_file(dirent.path()) {
                Ok(()) => tracing::debug!(blob = %name, "removed unreferenced module"),
                Err(e) => {
                    tracing::warn!(blob = %name, error = %e, "cannot remove unreferenced module")
                }
            }
        }
    }
}

/// True for `<sha256 hex>.wasm`, the name of a downloaded module.
pub fn is_blob_name(name: &str) -> bool {
    name.strip_suffix(".wasm")
        .is_some_and(|hex| ModuleHash::from_hex(hex).is_some())
}

/// Moves the modules an older edge downloaded into `func_dir` (which it
/// then owned) to `blob_dir`, so `func_dir` holds only the operator's files
/// and an upgrade downloads nothing again. Blocking I/O, at start.
pub fn adopt_old_blobs(func_dir: &Path, blob_dir: &Path) -> std::io::Result<usize> {
    let mut moved = 0;
    for dirent in std::fs::read_dir(func_dir)? {
        let dirent = dirent?;
        let name = dirent.file_name();
        if name.to_str().is_some_and(is_blob_name) {
            std::fs::rename(dirent.path(), blob_dir.join(&name))?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// The one line an edge logs while its control plane does not answer.
fn say_unreachable(e: &ControlError) {
    tracing::warn!(error = %e, "cannot reach the control plane; serving func_dir and the functions held, retrying (--standalone runs without one)");
}

/// Settles which token this edge's calls carry, before any of them goes
/// out: its kept credential; or, with a join token, a new credential from
/// `POST /api/nodes/join` (kept in the data dir, mode 0600); or none. A
/// control plane older than per-edge credentials (404 on the join) gets
/// the shared node token, as before. Retries (with backoff) while the
/// control plane is unreachable or refuses.
pub async fn establish_identity(dist: &Distribution, advertise_url: &str) {
    let client = &dist.client;
    let Some(join_token) = client.join_token().cloned() else {
        return;
    };
    let (data_dir, node_id) = (&dist.settings.data_dir, &dist.settings.node_id);
    match Identity::load(data_dir, node_id) {
        Ok(Some(identity)) => return dist.adopt(identity),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, file = %crate::identity::path(data_dir).display(), "cannot read the kept credential; joining again")
        }
    }
    let interval = (dist.settings.node_timeout / 3).max(Duration::from_millis(100));
    let mut backoff = MIN_BACKOFF;
    let mut last_failure = None;
    let request = JoinRequest {
        node_id: node_id.clone(),
        url: advertise_url.to_owned(),
    };
    loop {
        let failure = match client.join(&request).await {
            Ok(joined) => {
                let path = crate::identity::path(data_dir);
                match Identity::save(data_dir, &joined) {
                    Ok(identity) => {
                        tracing::info!(node_id = %joined.node_id, file = %path.display(), "joined the control plane; this edge's credential is kept (mode 0600)");
                        dist.adopt(identity);
                    }
                    Err(e) => {
                        // Joined, but a restart will not find the
                        // credential: this run uses it from memory.
                        tracing::error!(error = %e, file = %path.display(), "cannot keep this edge's credential; after a restart an operator must remove node {node_id} (aether nodes remove) before it can join again");
                        if let Some(identity) = Identity::from_join(&joined) {
                            dist.adopt(identity);
                        }
                    }
                }
                return;
            }
            Err(ControlError::Status { status: 404, .. }) => {
                tracing::warn!(
                    "the control plane predates per-edge credentials; every call carries the shared node token"
                );
                dist.adopt(Identity::shared(node_id, join_token));
                return;
            }
            Err(e) => e,
        };
        let kind = std::mem::discriminant(&failure);
        if last_failure != Some(kind) {
            match &failure {
                ControlError::Unreachable { .. } | ControlError::NoneAnswered { .. } => {
                    say_unreachable(&failure)
                }
                ControlError::Status { status: 409, .. } => {
                    tracing::error!(error = %failure, "node id {node_id} has joined with another credential; remove it (aether nodes remove {node_id}) or start this edge with another --node-id")
                }
                ControlError::Unauthorized { .. } => {
                    tracing::error!(error = %failure, "the control plane refused this edge's join token: set AETHER_NODE_TOKEN (or [control] node_token) to the control plane's node token")
                }
                _ => tracing::error!(error = %failure, "cannot join the control plane; retrying"),
            }
            last_failure = Some(kind);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(interval);
    }
}

/// Registers, then heartbeats every `node_timeout / 3`; retries with
/// backoff while the control plane is unreachable, and reconciles when it
/// answers again (it may have restarted or missed changes).
pub async fn heartbeat_loop(dist: Arc<Distribution>, advertise_url: String) {
    establish_identity(&dist, &advertise_url).await;
    // What the control plane holds may have changed while joining.
    dist.wake();
    let interval = (dist.settings.node_timeout / 3).max(Duration::from_millis(100));
    let mut backoff = MIN_BACKOFF;
    let mut healthy: Option<bool> = None;
    loop {
        let body = RegisterRequest {
            node_id: dist.settings.node_id.clone(),
            url: advertise_url.clone(),
            functions: dist.registry.versions(),
        };
        let delay = match dist.client.register(&body).await {
            Ok(()) => {
                if healthy != Some(true) {
                    tracing::info!(control = %dist.client.base(), url = %advertise_url, "registered with the control plane");
                    if healthy == Some(false) {
                        dist.wake();
                    }
                }
                healthy = Some(true);
                backoff = MIN_BACKOFF;
                interval
            }
            Err(e) => {
                if healthy != Some(false) || matches!(e, ControlError::Unauthorized { .. }) {
                    match e {
                        ControlError::Unauthorized { .. } if dist.client.join_token().is_none() => {
                            tracing::error!(
                                "{e}; set AETHER_NODE_TOKEN (or [control] node_token) to the control plane's node token"
                            )
                        }
                        ControlError::Unauthorized { .. } => tracing::error!(
                            "{e}; if an operator removed this edge (aether nodes remove), it gets nothing new; to join again, delete {} and restart it with the join token",
                            crate::identity::path(&dist.settings.data_dir).display()
                        ),
                        _ => say_unreachable(&e),
                    }
                }
                healthy = Some(false);
                let delay = backoff;
                backoff = (backoff * 2).min(interval);
                delay
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// Reconciles at start, on every notification and every
/// `reconcile_interval`.
pub async fn reconcile_loop(dist: Arc<Distribution>) {
    let mut failing = false;
    loop {
        match reconcile(&dist).await {
            Ok(()) => failing = false,
            Err(e) => {
                // An unreachable control plane is the heartbeat's to report
                // (once); a reconcile failing while it answers is news.
                if !failing && !e.is_unreachable() {
                    tracing::warn!(error = %e, "reconcile failed; serving the functions held");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(dist.settings.reconcile_interval) => {},
            () = dist.wake.notified() => {},
        }
    }
}

/// Sends each function's statistics window every `stats_interval`.
pub async fn stats_loop(dist: Arc<Distribution>) {
    let every = dist.settings.stats_interval;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        for (name, stats) in dist.registry.all_stats() {
            if let Some(w) = stats.drain() {
                let report = FunctionStatsReport {
                    function: name,
                    invocations: w.invocations,
                    errors: w.errors,
                    p50_ms: w.p50_ms,
                    p99_ms: w.p99_ms,
                    window_s: every.as_secs_f64(),
                };
                dist.events.report(&report);
            }
        }
    }
}
