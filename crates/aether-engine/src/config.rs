//! Edge configuration: TOML file, then `AETHER_*` environment variables,
//! then command-line flags (clap reads both of the latter). Every option has
//! a working default, so the edge starts with no file at all.

use std::path::PathBuf;
use std::time::Duration;

use aether_http::config::{self as layers, ConfigError, Secret, ServerFlags};
use aether_runtime::{DEFAULT_CACHE_SIZE, DEFAULT_MAX_INSTANCES, Limits, RuntimeConfig};
use serde::Deserialize;

/// Default port of the edge, as in the original description of Aether.
pub const DEFAULT_PORT: u16 = 9091;
/// Default address: loopback, so an edge is not reachable from other
/// hosts until an operator says so.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Largest request input (stdin) by default. 1 MiB covers JSON payloads of
/// typical edge functions; raise `max_input` for bulk transforms.
pub const DEFAULT_MAX_INPUT: u64 = 1 << 20;
/// How often `func_dir` is rescanned for new or changed modules.
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Concurrent executions. Beyond the core count on purpose: a function
/// stuck until its timeout must not stall the others, and the OS scheduler
/// shares the cores fairly between running guests.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// Requests allowed to wait for an execution slot before new ones are shed
/// with 503 `overloaded` (bounded memory under a flood).
pub const DEFAULT_MAX_QUEUE: usize = 1024;

/// The control plane's default `node_timeout`; the edge heartbeats every
/// third of it.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(30);
/// Periodic reconcile against the manifest, healing missed notifications.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(10);

/// How often per-function statistics go to the control plane.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

/// The control plane an edge registers with unless told otherwise: the
/// one `aether-control` starts by default on the same machine, so the
/// quick start (`aether-control`, then `aether-engine`) works with no flags.
pub const DEFAULT_CONTROL_URL: &str = "http://127.0.0.1:9090";

/// What to set instead of `--insecure` for an edge attached to a control
/// plane on a non-loopback address.
const NODE_TOKEN_REMEDY: &str = "set AETHER_NODE_TOKEN (or [control] node_token) to the control plane's node token, run --standalone";

/// The TOML file's shape. All fields optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]`
    #[serde(default)]
    pub server: ServerSection,
    /// `[runtime]`
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Stable id of this edge.
    pub node_id: Option<String>,
    /// `[control]`
    #[serde(default)]
    pub control: ControlSection,
    /// `[http]`
    #[serde(default)]
    pub http: HttpSection,
}

/// `[http]` table: the HTTP trigger.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// With `domain = "fn.example.com"`, a request whose Host is
    /// `{name}.fn.example.com` runs function `name` with its whole path
    /// (as `/fn/{name}/{path}` does).
    pub domain: Option<String>,
}

/// `[control]` table: the control plane this edge registers with.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Base URL of the control plane [default: `http://127.0.0.1:9090`];
    /// `""` runs the edge standalone.
    pub url: Option<String>,
    /// Base URLs of several replicas of the control plane, instead of
    /// `url`: the first is used until it does not answer, then the next;
    /// `[]` runs the edge standalone.
    pub urls: Option<Vec<String>>,
    /// Node token shared with the control plane.
    pub node_token: Option<String>,
    /// URL the control plane uses to reach this edge.
    pub advertise_url: Option<String>,
    /// Heartbeat timeout of the control plane, e.g. `"30s"`; heartbeats are
    /// sent every third of it.
    pub node_timeout: Option<String>,
    /// Periodic reconcile against the manifest, e.g. `"10s"`.
    pub reconcile_interval: Option<String>,
    /// Extra CA (PEM) trusted for an `https://` control plane.
    pub ca_cert: Option<PathBuf>,
}

/// `[server]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to bind: an IP address or a host name.
    pub host: Option<String>,
    /// Port to bind.
    pub port: Option<u16>,
    /// Serve HTTPS with this PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// Private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Metrics and request ids (`GET /metrics`, `x-request-id`); on unless
    /// `false`.
    pub telemetry: Option<bool>,
}

/// `[runtime]` table; sizes and durations are human strings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Wall-clock limit per invocation, e.g. `"3s"`.
    pub exec_timeout: Option<String>,
    /// Linear-memory limit per invocation, e.g. `"16MB"`.
    pub memory_limit: Option<String>,
    /// Modules kept linked and ready to instantiate.
    pub cache_size: Option<usize>,
    /// Most memory the loaded modules may take, e.g. `"4GiB"`.
    pub module_memory_budget: Option<String>,
    /// `"copy"` (default) or `"cow"`: how fresh instances get their data.
    pub memory_init: Option<String>,
    /// Largest stdout/stderr per invocation, e.g. `"1MiB"`.
    pub max_output: Option<String>,
    /// Largest input per invocation, e.g. `"1MiB"`.
    pub max_input: Option<String>,
    /// Directory of `<name>.wasm` functions.
    pub func_dir: Option<PathBuf>,
    /// Directory for this edge's own state (compiled artifacts, node id).
    pub data_dir: Option<PathBuf>,
    /// Concurrent executions.
    pub max_concurrency: Option<usize>,
    /// Requests waiting for a slot before 503.
    pub max_queue: Option<usize>,
    /// How often `func_dir` is rescanned, e.g. `"1s"`.
    pub scan_interval: Option<String>,
}

/// Command-line flags; each also reads an `AETHER_*` variable.
#[derive(Debug, Default, Clone, clap::Parser)]
#[command(
    name = "aether-engine",
    version,
    about = "Aether edge runtime: runs WebAssembly functions behind POST /execute"
)]
pub struct Flags {
    /// `--config`, `--host`, `--port`, `--log-format`.
    #[command(flatten)]
    pub server: ServerFlags,
    /// Directory of `<name>.wasm` functions [default: ./functions].
    #[arg(long, env = "AETHER_FUNC_DIR")]
    pub func_dir: Option<PathBuf>,
    /// Directory for compiled artifacts and the node id [default: ./data/edge].
    #[arg(long, env = "AETHER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Wall-clock limit per invocation [default: 3s].
    #[arg(long, env = "AETHER_EXEC_TIMEOUT")]
    pub exec_timeout: Option<String>,
    /// Memory limit per invocation [default: 16MB].
    #[arg(long, env = "AETHER_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,
    /// Modules kept linked and ready to instantiate [default: 100]; the
    /// others stay in memory compiled, microseconds from ready.
    #[arg(long, env = "AETHER_CACHE_SIZE")]
    pub cache_size: Option<usize>,
    /// Most memory the loaded modules' compiled code may take; a load past
    /// it is refused (503 memory_budget_exceeded) [default: 4GiB].
    #[arg(long, env = "AETHER_MODULE_MEMORY_BUDGET")]
    pub module_memory_budget: Option<String>,
    /// How a fresh instance's memory gets the module's data segments:
    /// `copy` (best with many functions) or `cow` (mapped copy-on-write:
    /// best for few functions with megabytes of data) [default: copy].
    #[arg(long, env = "AETHER_MEMORY_INIT")]
    pub memory_init: Option<String>,
    /// Largest stdout and stderr per invocation [default: 1MiB].
    #[arg(long, env = "AETHER_MAX_OUTPUT")]
    pub max_output: Option<String>,
    /// Largest input per invocation [default: 1MiB].
    #[arg(long, env = "AETHER_MAX_INPUT")]
    pub max_input: Option<String>,
    /// Concurrent executions [default: 64].
    #[arg(long, env = "AETHER_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// Requests waiting for an execution slot before 503 [default: 1024].
    #[arg(long, env = "AETHER_MAX_QUEUE")]
    pub max_queue: Option<usize>,
    /// Stable id of this edge [default: generated once, kept in data_dir].
    #[arg(long, env = "AETHER_NODE_ID")]
    pub node_id: Option<String>,
    /// Control plane to register with [default: http://127.0.0.1:9090];
    /// several replicas comma-separated (`http://a:9090,http://b:9090`),
    /// used in turn when one does not answer; an empty value runs
    /// standalone, like --standalone.
    #[arg(long, env = "AETHER_CONTROL_URL")]
    pub control_url: Option<String>,
    /// Run without a control plane: serve only the `<name>.wasm` files of
    /// `func_dir`, register nowhere.
    #[arg(
        long,
        env = "AETHER_STANDALONE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub standalone: bool,
    /// Allow a non-loopback address without a node token while attached
    /// to a control plane (anyone who reaches the edge can then trigger its
    /// reconciles).
    #[arg(
        long,
        env = "AETHER_INSECURE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure: bool,
    /// Node token shared with the control plane.
    #[arg(long, env = "AETHER_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// URL the control plane uses to reach this edge [default: http://HOST:PORT].
    #[arg(long, env = "AETHER_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// The control plane's heartbeat timeout; heartbeats every third [default: 30s].
    #[arg(long, env = "AETHER_NODE_TIMEOUT")]
    pub node_timeout: Option<String>,
    /// Periodic reconcile against the manifest [default: 10s].
    #[arg(long, env = "AETHER_RECONCILE_INTERVAL")]
    pub reconcile_interval: Option<String>,
    /// Turn off metrics and request ids: no `GET /metrics` (404), no
    /// `x-request-id` header. Logging is set apart by `RUST_LOG`.
    #[arg(
        long,
        env = "AETHER_NO_TELEMETRY",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_telemetry: bool,
    /// Run function `name` for requests whose Host is `{name}.DOMAIN`
    /// (with the whole path), besides `/fn/{name}/…`.
    #[arg(long, env = "AETHER_HTTP_DOMAIN")]
    pub http_domain: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Address to bind: an IP address or a host name.
    pub host: String,
    /// Port to bind.
    pub port: u16,
    /// Directory of `<name>.wasm` functions.
    pub func_dir: PathBuf,
    /// Directory for this edge's own state.
    pub data_dir: PathBuf,
    /// Default limits for every function.
    pub limits: Limits,
    /// Largest input in bytes.
    pub max_input: u64,
    /// Modules kept linked and ready.
    pub cache_size: usize,
    /// Bytes the loaded modules may take.
    pub module_memory_budget: u64,
    /// How fresh instances get their data segments.
    pub memory_init: aether_runtime::MemoryInit,
    /// Concurrent executions.
    pub max_concurrency: usize,
    /// Requests waiting for a slot before 503.
    pub max_queue: usize,
    /// `func_dir` rescan interval.
    pub scan_interval: Duration,
    /// Explicit node id, if configured.
    pub node_id: Option<String>,
    /// Metrics (`GET /metrics`) and request ids; on by default.
    pub telemetry: bool,
    /// Control plane base URL; `None` = standalone.
    pub control_url: Option<String>,
    /// More base URLs of the same control plane (replicas on one
    /// database), tried in turn after `control_url` when the URL in use
    /// does not answer; empty by default. Needs `control_url`.
    pub fallback_control_urls: Vec<String>,
    /// Allow a non-loopback address without a node token.
    pub insecure: bool,
    /// Serve HTTPS with these files (plain HTTP without).
    pub tls: Option<aether_http::tls::TlsFiles>,
    /// Extra CA trusted for an `https://` control plane.
    pub ca_cert: Option<PathBuf>,
    /// Node token for edge↔control traffic.
    pub node_token: Option<Secret>,
    /// URL the control plane uses to reach this edge.
    pub advertise_url: Option<String>,
    /// The control plane's heartbeat timeout; heartbeats every third.
    pub node_timeout: Duration,
    /// Periodic reconcile against the manifest.
    pub reconcile_interval: Duration,
    /// How often per-function statistics are reported.
    pub stats_interval: Duration,
    /// `[http] domain`: requests to `{name}.{domain}` run function `name`
    /// (lowercase, without a leading dot); none by default.
    pub http_domain: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            func_dir: PathBuf::from("./functions"),
            data_dir: PathBuf::from("./data/edge"),
            limits: Limits::default(),
            max_input: DEFAULT_MAX_INPUT,
            cache_size: DEFAULT_CACHE_SIZE,
            module_memory_budget: aether_runtime::DEFAULT_MODULE_MEMORY_BUDGET,
            memory_init: aether_runtime::MemoryInit::default(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_queue: DEFAULT_MAX_QUEUE,
            scan_interval: DEFAULT_SCAN_INTERVAL,
            node_id: None,
            telemetry: true,
            control_url: Some(DEFAULT_CONTROL_URL.to_owned()),
            fallback_control_urls: Vec::new(),
            insecure: false,
            tls: None,
            ca_cert: None,
            node_token: None,
            advertise_url: None,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            reconcile_interval: DEFAULT_RECONCILE_INTERVAL,
            stats_interval: DEFAULT_STATS_INTERVAL,
            http_domain: None,
        }
    }
}

impl EngineConfig {
    /// Builds the effective configuration: defaults, then the file named by
    /// `--config` (if any), then env/flags.
    pub fn load(flags: &Flags) -> Result<Self, ConfigError> {
        let file: FileConfig = layers::read_file(flags.server.config.as_deref())?;
        let mut cfg = EngineConfig::default();
        let rt = &file.runtime;
        let ctl = &file.control;
        let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or(file.clone());

        cfg.host = pick(&flags.server.host, &file.server.host).unwrap_or(cfg.host);
        cfg.port = flags.server.port.or(file.server.port).unwrap_or(cfg.port);
        if let Some(dir) = flags.func_dir.clone().or(rt.func_dir.clone()) {
            cfg.func_dir = dir;
        }
        if let Some(dir) = flags.data_dir.clone().or(rt.data_dir.clone()) {
            cfg.data_dir = dir;
        }
        if let Some(t) = layers::duration("exec_timeout", &flags.exec_timeout, &rt.exec_timeout)? {
            cfg.limits.timeout = t;
        }
        if let Some(m) = layers::size("memory_limit", &flags.memory_limit, &rt.memory_limit)? {
            cfg.limits.memory_bytes = m;
        }
        if let Some(o) = layers::size("max_output", &flags.max_output, &rt.max_output)? {
            let bytes = usize::try_from(o).unwrap_or(usize::MAX);
            cfg.limits.max_stdout_bytes = bytes;
            cfg.limits.max_stderr_bytes = bytes;
        }
        if let Some(i) = layers::size("max_input", &flags.max_input, &rt.max_input)? {
            cfg.max_input = i;
        }
        if let Some(s) = layers::duration("scan_interval", &None, &rt.scan_interval)? {
            cfg.scan_interval = s;
        }
        cfg.cache_size = flags.cache_size.or(rt.cache_size).unwrap_or(cfg.cache_size);
        if let Some(b) = layers::size(
            "module_memory_budget",
            &flags.module_memory_budget,
            &rt.module_memory_budget,
        )? {
            cfg.module_memory_budget = b;
        }
        if let Some(m) = flags.memory_init.as_ref().or(rt.memory_init.as_ref()) {
            cfg.memory_init = m
                .parse()
                .map_err(|e: String| ConfigError::invalid("memory_init", e))?;
        }
        cfg.max_concurrency = flags
            .max_concurrency
            .or(rt.max_concurrency)
            .unwrap_or(cfg.max_concurrency);
        cfg.max_queue = flags.max_queue.or(rt.max_queue).unwrap_or(cfg.max_queue);
        cfg.node_id = flags.node_id.clone().or(file.node_id);
        cfg.telemetry = !flags.no_telemetry && file.server.telemetry.unwrap_or(true);
        let urls = if flags.standalone {
            Vec::new()
        } else {
            match control_urls(flags.control_url.as_deref(), ctl)? {
                Some(urls) => urls,
                None => cfg.control_urls(),
            }
        };
        let mut urls = urls.into_iter();
        cfg.control_url = urls.next();
        cfg.fallback_control_urls = urls.collect();
        cfg.insecure = flags.insecure;
        cfg.tls = flags
            .server
            .tls_files(file.server.tls_cert.clone(), file.server.tls_key.clone())?;
        cfg.ca_cert = flags.server.ca_cert.clone().or(ctl.ca_cert.clone());
        cfg.node_token = pick(&flags.node_token, &ctl.node_token).and_then(Secret::new);
        cfg.advertise_url = pick(&flags.advertise_url, &ctl.advertise_url);
        if let Some(t) = layers::duration("node_timeout", &flags.node_timeout, &ctl.node_timeout)? {
            cfg.node_timeout = t;
        }
        if let Some(t) = layers::duration(
            "reconcile_interval",
            &flags.reconcile_interval,
            &ctl.reconcile_interval,
        )? {
            cfg.reconcile_interval = t;
        }
        cfg.http_domain = pick(&flags.http_domain, &file.http.domain)
            .map(|d| d.trim_start_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty());
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges that parsing alone does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| Err(ConfigError::invalid(field, reason));
        if self.control_url.is_none() && !self.fallback_control_urls.is_empty() {
            return invalid(
                "fallback_control_urls",
                "needs control_url (without it the edge runs standalone)",
            );
        }
        let urls = self.control_urls();
        for (i, url) in urls.iter().enumerate() {
            check_control_url("control_url", url)?;
            if urls[..i].contains(url) {
                return Err(ConfigError::invalid(
                    "control_url",
                    format!("{url} is named twice"),
                ));
            }
        }
        if self.control_url.is_some() {
            // Attached to a control plane: the node token is what keeps
            // strangers off `/notify`, as the admin token keeps them off
            // the control plane's API.
            layers::check_listen(
                &self.host,
                self.node_token.is_some(),
                self.insecure,
                NODE_TOKEN_REMEDY,
            )?;
        } else if self.host.is_empty() {
            return invalid("host", "must not be empty");
        }
        if self.cache_size == 0 {
            return invalid("cache_size", "must be at least 1");
        }
        if self.max_concurrency == 0 {
            return invalid("max_concurrency", "must be at least 1");
        }
        if self.max_concurrency > 4096 {
            return invalid("max_concurrency", "must be at most 4096");
        }
        if self.limits.memory_bytes > aether_runtime::RuntimeConfig::default().max_memory_limit {
            return invalid("memory_limit", "must be at most 256MiB");
        }
        if let Some(id) = &self.node_id
            && (id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()))
        {
            return invalid("node_id", "must be 1-128 printable characters");
        }
        Ok(())
    }

    /// Every control-plane URL in the order they are tried: `control_url`,
    /// then `fallback_control_urls`; empty when standalone.
    pub fn control_urls(&self) -> Vec<String> {
        match &self.control_url {
            Some(url) => std::iter::once(url)
                .chain(&self.fallback_control_urls)
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// The runtime configuration this edge config implies.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            default_limits: self.limits,
            cache_size: self.cache_size,
            module_memory_budget: self.module_memory_budget,
            memory_init: self.memory_init,
            artifact_dir: Some(self.artifact_dir()),
            // Every running execution needs a slot; a few spare ones cover
            // the instant between a permit's release and the slot's.
            max_instances: u32::try_from(self.max_concurrency + 16)
                .unwrap_or(DEFAULT_MAX_INSTANCES),
            ..RuntimeConfig::default()
        }
    }

    /// Where modules downloaded from the control plane are kept.
    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("modules")
    }

    /// Where compiled artifacts are kept.
    pub fn artifact_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }
}

/// The control-plane URLs set by the flag (or `AETHER_CONTROL_URL`),
/// else by the file's `[control] url` or `urls`: `None` when neither is
/// set, `Some(empty)` for standalone (an empty flag, `url = ""`,
/// `urls = []`), each URL checked and without a trailing `/`.
fn control_urls(
    flag: Option<&str>,
    file: &ControlSection,
) -> Result<Option<Vec<String>>, ConfigError> {
    let from_file = match (&file.url, &file.urls) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "[control] urls",
                "set either url (one control plane) or urls (several), not both",
            ));
        }
        (Some(url), None) if url.trim().is_empty() => Some(Vec::new()),
        (Some(url), None) if url.contains(',') => {
            return Err(ConfigError::invalid(
                "[control] url",
                format!(
                    "{url:?} names several URLs; list them as urls = [\"http://a:9090\", \"http://b:9090\"]"
                ),
            ));
        }
        (Some(url), None) => Some(vec![check_control_url("[control] url", url)?]),
        (None, Some(urls)) => Some(check_control_urls(
            "[control] urls",
            urls.iter().map(String::as_str),
        )?),
        (None, None) => None,
    };
    let from_flag = match flag {
        Some(text) if text.trim().is_empty() => Some(Vec::new()),
        Some(text) => Some(check_control_urls("control_url", text.split(','))?),
        None => None,
    };
    Ok(from_flag.or(from_file))
}

/// Checks each URL of a list: none empty, none twice.
fn check_control_urls<'a>(
    field: &'static str,
    urls: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, ConfigError> {
    let mut checked: Vec<String> = Vec::new();
    for (i, url) in urls.enumerate() {
        if url.trim().is_empty() {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "entry {} is empty; separate control-plane URLs with single commas, e.g. http://a:9090,http://b:9090",
                    i + 1
                ),
            ));
        }
        let url = check_control_url(field, url)?;
        if checked.contains(&url) {
            return Err(ConfigError::invalid(field, format!("{url} is named twice")));
        }
        checked.push(url);
    }
    Ok(checked)
}

/// One control-plane base URL: `http://` or `https://` with a host, no
/// query or fragment; returned trimmed and without a trailing `/`.
fn check_control_url(field: &'static str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    let wrong = |why: &str| {
        Err(ConfigError::invalid(
            field,
            format!("{url:?} {why}; expected http://HOST:PORT or https://HOST:PORT"),
        ))
    };
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return wrong(&format!("is not a URL ({e})")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return wrong("is not an http:// or https:// URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return wrong("has no host");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return wrong("has a query or fragment");
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_no_file_on_the_documented_defaults() {
        let cfg = EngineConfig::load(&Flags::default()).unwrap();
        assert_eq!(cfg.port, 9091);
        assert_eq!(cfg.limits.timeout, Duration::from_secs(3));
        assert_eq!(cfg.limits.memory_bytes, 16_000_000);
        assert_eq!(cfg.cache_size, 100);
    }

    #[test]
    fn file_values_apply_and_flags_win_over_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(
            &path,
            r#"
            [server]
            host = "0.0.0.0"
            port = 8000
            telemetry = false
            [runtime]
            exec_timeout = "500ms"
            memory_limit = "32MiB"
            cache_size = 7
            module_memory_budget = "512MiB"
            memory_init = "cow"
            "#,
        )
        .unwrap();
        let flags = Flags {
            server: ServerFlags {
                config: Some(path),
                port: Some(9999),
                ..ServerFlags::default()
            },
            standalone: true,
            ..Flags::default()
        };
        let cfg = EngineConfig::load(&flags).unwrap();
        assert_eq!(cfg.host.to_string(), "0.0.0.0");
        assert_eq!(cfg.port, 9999, "flag wins over file");
        assert_eq!(cfg.limits.timeout, Duration::from_millis(500));
        assert_eq!(cfg.limits.memory_bytes, 32 << 20);
        assert_eq!(cfg.cache_size, 7);
        assert_eq!(cfg.module_memory_budget, 512 << 20);
        assert_eq!(cfg.memory_init, aether_runtime::MemoryInit::Cow);
        assert!(!cfg.telemetry);
        assert!(EngineConfig::load(&Flags::default()).unwrap().telemetry);
        let off = EngineConfig::load(&Flags {
            no_telemetry: true,
            ..Flags::default()
        })
        .unwrap();
        assert!(!off.telemetry);
    }

    #[test]
    fn the_control_plane_is_the_local_default_unless_standalone() {
        let load = |flags: Flags, file: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("edge.toml");
            std::fs::write(&path, file).unwrap();
            let flags = Flags {
                server: ServerFlags {
                    config: Some(path),
                    ..flags.server.clone()
                },
                ..flags
            };
            EngineConfig::load(&flags).map(|c| c.control_url)
        };
        let default = Some(DEFAULT_CONTROL_URL.to_owned());
        assert_eq!(load(Flags::default(), "").unwrap(), default);
        let standalone = Flags {
            standalone: true,
            ..Flags::default()
        };
        assert_eq!(load(standalone.clone(), "").unwrap(), None);
        assert_eq!(
            load(standalone, "[control]\nurl = \"http://10.0.0.1:9090\"\n").unwrap(),
            None,
            "--standalone wins over the file"
        );
        assert_eq!(
            load(Flags::default(), "[control]\nurl = \"\"\n").unwrap(),
            None
        );
        let flag = Flags {
            control_url: Some("http://10.0.0.1:9090/".into()),
            ..Flags::default()
        };
        assert_eq!(
            load(flag, "[control]\nurl = \"\"\n").unwrap().as_deref(),
            Some("http://10.0.0.1:9090"),
            "the flag wins over the file"
        );
    }

    /// `EngineConfig::load` with `flags` over a file holding `file`.
    fn load_with_file(flags: Flags, file: &str) -> Result<EngineConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, file).unwrap();
        EngineConfig::load(&Flags {
            server: ServerFlags {
                config: Some(path),
                ..flags.server.clone()
            },
            ..flags
        })
    }

    fn flag(urls: &str) -> Flags {
        Flags {
            control_url: Some(urls.into()),
            ..Flags::default()
        }
    }

    #[test]
    fn several_control_urls_come_from_a_comma_list_or_the_files_urls() {
        let cfg = load_with_file(flag(" http://a:9090/ , https://b:9443"), "").unwrap();
        assert_eq!(cfg.control_url.as_deref(), Some("http://a:9090"));
        assert_eq!(cfg.fallback_control_urls, ["https://b:9443"]);
        assert_eq!(cfg.control_urls(), ["http://a:9090", "https://b:9443"]);

        let file = "[control]\nurls = [\"http://a:9090\", \"http://b:9090/\", \"http://c:9090\"]\n";
        let cfg = load_with_file(Flags::default(), file).unwrap();
        assert_eq!(
            cfg.control_urls(),
            ["http://a:9090", "http://b:9090", "http://c:9090"]
        );
        // The flag (or AETHER_CONTROL_URL) replaces the file's whole list.
        let cfg = load_with_file(flag("http://d:9090"), file).unwrap();
        assert_eq!(cfg.control_urls(), ["http://d:9090"]);
        // `url` keeps meaning one control plane, `""` standalone.
        let cfg = load_with_file(Flags::default(), "[control]\nurl = \"http://a:9090\"\n").unwrap();
        assert_eq!(cfg.control_urls(), ["http://a:9090"]);
        assert!(cfg.fallback_control_urls.is_empty());
        for standalone in ["[control]\nurl = \"\"\n", "[control]\nurls = []\n"] {
            let cfg = load_with_file(Flags::default(), standalone).unwrap();
            assert_eq!(cfg.control_url, None, "{standalone}");
            assert!(cfg.control_urls().is_empty(), "{standalone}");
        }
        let standalone = Flags {
            standalone: true,
            ..flag("http://a:9090,http://b:9090")
        };
        assert!(
            load_with_file(standalone, file)
                .unwrap()
                .control_urls()
                .is_empty()
        );
    }

    #[test]
    fn url_and_urls_together_empty_entries_and_bad_urls_are_clear_errors() {
        let both = "[control]\nurl = \"http://a:9090\"\nurls = [\"http://b:9090\"]\n";
        let err = load_with_file(Flags::default(), both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[control] urls") && err.contains("not both"),
            "{err}"
        );

        for (urls, entry) in [
            ("http://a:9090,,http://b:9090", "entry 2 is empty"),
            ("http://a:9090,", "entry 2 is empty"),
            (",http://a:9090", "entry 1 is empty"),
        ] {
            let err = load_with_file(flag(urls), "").unwrap_err().to_string();
            assert!(
                err.contains("control_url") && err.contains(entry) && err.contains("single commas"),
                "{urls}: {err}"
            );
        }
        let err = load_with_file(
            Flags::default(),
            "[control]\nurls = [\"http://a:9090\", \" \"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[control] urls") && err.contains("entry 2 is empty"),
            "{err}"
        );

        for bad in [
            "127.0.0.1:9090",
            "ftp://a:21",
            "http://",
            "http://a:9090?x=1",
            "http://a b:9090",
        ] {
            let err = load_with_file(flag(&format!("http://ok:9090,{bad}")), "")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("control_url") && err.contains("expected http://HOST:PORT"),
                "{bad}: {err}"
            );
            let err = load_with_file(Flags::default(), &format!("[control]\nurl = {bad:?}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("[control] url"), "{bad}: {err}");
        }
        let err = load_with_file(flag("http://a:9090,http://a:9090/"), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("named twice"), "{err}");
        let err = load_with_file(
            Flags::default(),
            "[control]\nurl = \"http://a:9090,http://b:9090\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("urls = ["), "{err}");

        // In-process configurations are checked alike.
        let cfg = EngineConfig {
            control_url: None,
            fallback_control_urls: vec!["http://b:9090".into()],
            ..EngineConfig::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("needs control_url")
        );
        let cfg = EngineConfig {
            fallback_control_urls: vec!["b:9090".into()],
            ..EngineConfig::default()
        };
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn attached_on_a_public_address_needs_a_node_token_or_insecure() {
        let public = |f: Flags| Flags {
            server: ServerFlags {
                host: Some("0.0.0.0".into()),
                ..ServerFlags::default()
            },
            ..f
        };
        let err = EngineConfig::load(&public(Flags::default())).unwrap_err();
        assert!(matches!(err, ConfigError::InsecureBind { .. }), "{err}");
        for ok in [
            Flags {
                node_token: Some("n".into()),
                ..Flags::default()
            },
            Flags {
                insecure: true,
                ..Flags::default()
            },
            Flags {
                standalone: true,
                ..Flags::default()
            },
        ] {
            EngineConfig::load(&public(ok)).unwrap();
        }
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let flags = Flags {
            exec_timeout: Some("forever".into()),
            ..Flags::default()
        };
        let err = EngineConfig::load(&flags).unwrap_err();
        assert!(err.to_string().contains("exec_timeout"), "{err}");
        for (flags, key) in [
            (
                Flags {
                    memory_init: Some("mmap".into()),
                    ..Flags::default()
                },
                "memory_init",
            ),
            (
                Flags {
                    module_memory_budget: Some("lots".into()),
                    ..Flags::default()
                },
                "module_memory_budget",
            ),
        ] {
            let err = EngineConfig::load(&flags).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, "[runtime]\ntypo_key = 1\n").unwrap();
        let err = EngineConfig::load(&Flags {
            server: ServerFlags {
                config: Some(path),
                ..ServerFlags::default()
            },
            ..Flags::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("typo_key"), "{err}");

        let err = EngineConfig::load(&Flags {
            cache_size: Some(0),
            ..Flags::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("cache_size"), "{err}");
    }
}
