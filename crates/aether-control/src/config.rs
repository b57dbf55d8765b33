//! Configuration: defaults, then a TOML file, then `AETHER_*` environment
//! variables and command-line flags (clap reads both; a flag wins over its
//! variable). Every option has a working default, so the binary starts with
//! no file at all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aether_http::config::{self as layers, ServerFlags, check_listen};
pub use aether_http::config::{ConfigError, Secret, is_loopback};
use aether_store::DEFAULT_EVENT_RETENTION;
use clap::Parser;
use serde::Deserialize;

/// Default listening port of the control plane.
pub const DEFAULT_PORT: u16 = 9090;
/// Default address: loopback, so a server without tokens is safe as started.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default database file, as in the original description.
pub const DEFAULT_DB_PATH: &str = "./data/control.db";
/// A node is offline after this long without a heartbeat; edges heartbeat
/// every third of it, so two lost heartbeats are tolerated.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest module accepted: real Rust/Go/.NET modules with debug info reach
/// tens of MB; beyond this an upload is almost certainly a mistake.
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 50_000_000;
/// A node offline for this long is forgotten: an edge replaced or renamed
/// long ago should not stay in `GET /api/nodes` (and its scans) forever. A
/// week covers a weekend outage with room to spare; an edge that comes back
/// later simply registers again.
pub const DEFAULT_NODE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest per-function timeout a deploy may ask for: a function that may
/// hold an execution slot for minutes is a denial of service of its edge.
/// Longer jobs belong in a queue worker, not a request-path function.
pub const DEFAULT_MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest per-function memory limit a deploy may ask for: the edges'
/// own ceiling (`aether_runtime`'s default `max_memory_limit`), so a
/// deploy that no edge could run is refused where it is made.
pub const DEFAULT_MAX_FUNCTION_MEMORY: u64 = 256 << 20;
/// Hard ceiling on `max_module_size`: the module is held in memory while
/// validating, and base64 adds a third.
pub const MAX_MODULE_SIZE_CEILING: u64 = 1 << 30;

/// Command-line flags (each also readable from its `AETHER_*` variable).
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "aether-control", version, about = "Aether control plane")]
pub struct Cli {
    /// `--config`, `--host`, `--port`, `--log-format`.
    #[command(flatten)]
    pub server: ServerFlags,
    /// Database file.
    #[arg(long, env = "AETHER_DB")]
    pub db: Option<PathBuf>,
    /// PostgreSQL database instead of the embedded file
    /// (`postgres://user:password@host:5432/aether`): several control
    /// planes on one database act as one.
    #[arg(long, env = "AETHER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of content-addressed wasm blobs [default: `blobs` next
    /// to the database]. `--func-dir` is its old name.
    #[arg(long, alias = "func-dir", env = "AETHER_BLOB_DIR")]
    pub blob_dir: Option<PathBuf>,
    /// A node is offline after this long without a heartbeat (e.g. "30s").
    #[arg(long, env = "AETHER_NODE_TIMEOUT")]
    pub node_timeout: Option<String>,
    /// Forget a node after this long without a heartbeat [default: 7d].
    #[arg(long, env = "AETHER_NODE_RETENTION")]
    pub node_retention: Option<String>,
    /// Largest accepted module (e.g. "50MB").
    #[arg(long, env = "AETHER_MAX_MODULE_SIZE")]
    pub max_module_size: Option<String>,
    /// Longest `limits.timeout` a deploy may set [default: 60s].
    #[arg(long, env = "AETHER_MAX_FUNCTION_TIMEOUT")]
    pub max_function_timeout: Option<String>,
    /// Largest `limits.memory` a deploy may set [default: 256MiB].
    #[arg(long, env = "AETHER_MAX_FUNCTION_MEMORY")]
    pub max_function_memory: Option<String>,
    /// Number of events kept.
    #[arg(long, env = "AETHER_EVENT_RETENTION")]
    pub event_retention: Option<u64>,
    /// Admin bearer token(s), comma-separated: all are valid (rotation).
    /// Prefer the environment variable to the flag; to change them without
    /// a restart, put them in the config file and send SIGHUP.
    #[arg(long, env = "AETHER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Join token: what an edge presents once to get its own credential
    /// (prefer the environment variable to the flag).
    #[arg(long, env = "AETHER_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// Allow listening on a non-loopback address without tokens.
    #[arg(long, env = "AETHER_INSECURE")]
    pub insecure: bool,
    /// Same as `--log-format json` (kept for existing deployments).
    #[arg(long, env = "AETHER_LOG_JSON", hide = true)]
    pub log_json: bool,
}

/// The TOML file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `[server]`
    pub server: ServerSection,
    /// `[database]`
    pub database: DatabaseSection,
    /// `[storage]`
    pub storage: StorageSection,
    /// `[registry]`
    pub registry: RegistrySection,
    /// `[limits]`
    pub limits: LimitsSection,
    /// `[events]`
    pub events: EventsSection,
    /// `[auth]`
    pub auth: AuthSection,
}

/// `[server]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Listen address.
    pub host: Option<String>,
    /// Listen port.
    pub port: Option<u16>,
    /// Serve HTTPS with this PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// Private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Extra CA (PEM) trusted when notifying `https://` edges.
    pub ca_cert: Option<PathBuf>,
}

/// `[database]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// Database file.
    pub path: Option<PathBuf>,
    /// PostgreSQL URL; when set, `path` and the blob directory are unused.
    pub url: Option<String>,
}

/// `[storage]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Blob directory; default `blobs` next to the database.
    pub blob_dir: Option<PathBuf>,
}

/// `[registry]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySection {
    /// Human duration, e.g. `"30s"`.
    pub node_timeout: Option<String>,
    /// Human duration, e.g. `"7d"`.
    pub node_retention: Option<String>,
}

/// `[limits]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Human size, e.g. `"50MB"`.
    pub max_module_size: Option<String>,
    /// Longest per-function timeout, e.g. `"60s"`.
    pub max_function_timeout: Option<String>,
    /// Largest per-function memory limit, e.g. `"256MiB"`.
    pub max_function_memory: Option<String>,
}

/// `[events]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSection {
    /// Number of events kept.
    pub retention: Option<u64>,
}

/// `[auth]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Admin bearer token.
    pub admin_token: Option<String>,
    /// More admin bearer tokens, all valid (rotation).
    pub admin_tokens: Vec<String>,
    /// Join token of the edges.
    pub node_token: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Database file.
    pub db_path: PathBuf,
    /// PostgreSQL URL (may hold a password: never logged); `None` for the
    /// embedded database at `db_path`.
    pub database_url: Option<Secret>,
    /// Blob directory.
    pub blob_dir: PathBuf,
    /// Offline after this long without a heartbeat.
    pub node_timeout: Duration,
    /// Forgotten after this long without a heartbeat.
    pub node_retention: Duration,
    /// Largest accepted module, bytes.
    pub max_module_size: u64,
    /// Longest per-function timeout a deploy may set.
    pub max_function_timeout: Duration,
    /// Largest per-function memory limit a deploy may set, bytes.
    pub max_function_memory: u64,
    /// Number of events kept.
    pub event_retention: u64,
    /// Admin bearer tokens; any of them opens the management API.
    pub admin_tokens: Vec<Secret>,
    /// Join token of the edges.
    pub node_token: Option<Secret>,
    /// Allow a non-loopback address without tokens.
    pub insecure: bool,
    /// Serve HTTPS with these files (plain HTTP without).
    pub tls: Option<aether_http::tls::TlsFiles>,
    /// Extra CA trusted when notifying `https://` edges.
    pub ca_cert: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let db_path = PathBuf::from(DEFAULT_DB_PATH);
        Config {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            blob_dir: default_blob_dir(&db_path),
            db_path,
            database_url: None,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            node_retention: DEFAULT_NODE_RETENTION,
            max_module_size: DEFAULT_MAX_MODULE_SIZE,
            max_function_timeout: DEFAULT_MAX_FUNCTION_TIMEOUT,
            max_function_memory: DEFAULT_MAX_FUNCTION_MEMORY,
            event_retention: DEFAULT_EVENT_RETENTION,
            admin_tokens: Vec::new(),
            node_token: None,
            insecure: false,
            tls: None,
            ca_cert: None,
        }
    }
}

/// What to set instead of `--insecure` on a non-loopback address.
const TOKENS_REMEDY: &str = "set AETHER_ADMIN_TOKEN and AETHER_NODE_TOKEN";

/// The admin tokens: the flag or variable (comma-separated) if set, else
/// the file's `admin_token` and `admin_tokens`; blanks dropped.
fn admin_tokens(flag: Option<&str>, file: &AuthSection) -> Vec<Secret> {
    let listed: Vec<String> = match flag.filter(|f| !f.trim().is_empty()) {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => file
            .admin_token
            .iter()
            .chain(&file.admin_tokens)
            .cloned()
            .collect(),
    };
    listed
        .into_iter()
        .filter_map(|t| Secret::new(t.trim()))
        .collect()
}

/// `blobs` next to the database file.
pub fn default_blob_dir(db_path: &Path) -> PathBuf {
    match db_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("blobs"),
        _ => PathBuf::from("blobs"),
    }
}

impl Config {
    /// Builds the configuration from the flags (and their variables) and
    /// the file they name, then validates it.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let file = layers::read_file(cli.server.config.as_deref())?;
        let config = Self::merge(file, cli)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses the TOML text of a config file.
    pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
        layers::parse_file(path, text)
    }

    /// Applies the file, then the flags, over the defaults (no validation).
    pub fn merge(file: FileConfig, cli: &Cli) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let db_path = cli
            .db
            .clone()
            .or(file.database.path)
            .unwrap_or(defaults.db_path);
        let blob_dir = cli
            .blob_dir
            .clone()
            .or(file.storage.blob_dir)
            .unwrap_or_else(|| default_blob_dir(&db_path));
        let node_timeout = layers::duration(
            "node_timeout",
            &cli.node_timeout,
            &file.registry.node_timeout,
        )?
        .unwrap_or(defaults.node_timeout);
        let node_retention = layers::duration(
            "node_retention",
            &cli.node_retention,
            &file.registry.node_retention,
        )?
        .unwrap_or(defaults.node_retention);
        let max_module_size = layers::size(
            "max_module_size",
            &cli.max_module_size,
            &file.limits.max_module_size,
        )?
        .unwrap_or(defaults.max_module_size);
        let max_function_timeout = layers::duration(
            "max_function_timeout",
            &cli.max_function_timeout,
            &file.limits.max_function_timeout,
        )?
        .unwrap_or(defaults.max_function_timeout);
        let max_function_memory = layers::size(
            "max_function_memory",
            &cli.max_function_memory,
            &file.limits.max_function_memory,
        )?
        .unwrap_or(defaults.max_function_memory);
        let tls = cli
            .server
            .tls_files(file.server.tls_cert.clone(), file.server.tls_key.clone())?;
        Ok(Config {
            tls,
            ca_cert: cli.server.ca_cert.clone().or(file.server.ca_cert),
            host: cli
                .server
                .host
                .clone()
                .or(file.server.host)
                .unwrap_or(defaults.host),
            port: cli
                .server
                .port
                .or(file.server.port)
                .unwrap_or(defaults.port),
            db_path,
            database_url: cli
                .database_url
                .clone()
                .or(file.database.url)
                .and_then(|u| Secret::new(u.trim())),
            blob_dir,
            node_timeout,
            node_retention,
            max_module_size,
            max_function_timeout,
            max_function_memory,
            event_retention: cli
                .event_retention
                .or(file.events.retention)
                .unwrap_or(defaults.event_retention),
            admin_tokens: admin_tokens(cli.admin_token.as_deref(), &file.auth),
            node_token: cli
                .node_token
                .clone()
                .or(file.auth.node_token)
                .and_then(Secret::new),
            insecure: cli.insecure,
        })
    }

    /// Whether bearer tokens are required.
    pub fn auth_enabled(&self) -> bool {
        !self.admin_tokens.is_empty() || self.node_token.is_some()
    }

    /// Checks the values together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.admin_tokens.is_empty() == self.node_token.is_some() {
            return Err(ConfigError::invalid(
                "tokens",
                "set both the admin token and the node token (AETHER_ADMIN_TOKEN, AETHER_NODE_TOKEN), or neither",
            ));
        }
        check_listen(
            &self.host,
            self.auth_enabled(),
            self.insecure,
            TOKENS_REMEDY,
        )?;
        if self.max_module_size > MAX_MODULE_SIZE_CEILING {
            return Err(ConfigError::invalid(
                "max_module_size",
                format!("must be at most {MAX_MODULE_SIZE_CEILING} bytes"),
            ));
        }
        if self.node_retention <= self.node_timeout {
            return Err(ConfigError::invalid(
                "node_retention",
                "must be longer than node_timeout",
            ));
        }
        if self.max_function_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "max_function_timeout",
                "must be above 0",
            ));
        }
        if self.max_function_memory == 0 {
            return Err(ConfigError::invalid(
                "max_function_memory",
                "must be above 0",
            ));
        }
        if self.event_retention == 0 {
            return Err(ConfigError::invalid(
                "events.retention",
                "must be at least 1",
            ));
        }
        for (field, path) in [
            ("database.path", &self.db_path),
            ("storage.blob_dir", &self.blob_dir),
        ] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::invalid(field, "must not be empty"));
            }
        }
        Ok(())
    }

    /// Largest accepted `POST /api/functions` body: the module in base64
    /// (4/3 of it) plus room for the name, args, env and limits.
    pub fn max_json_body(&self) -> u64 {
        self.max_module_size.div_ceil(3) * 4 + JSON_OVERHEAD
    }

    /// Where the data is, for the log: the file and blob directory, or the
    /// PostgreSQL server and database without user or password.
    pub fn database_summary(&self) -> String {
        match &self.database_url {
            None => format!(
                "db={} blob_dir={}",
                self.db_path.display(),
                self.blob_dir.display()
            ),
            Some(url) => {
                let url = url.expose_str();
                // Everything after the credentials, if any, and before the
                // query (which may hold a password too).
                let rest = url.rsplit_once('@').map_or(url, |(_, r)| r);
                let rest = rest.split('?').next().unwrap_or_default();
                if url.contains("://") {
                    format!("db=postgresql://{rest}")
                } else {
                    "db=postgresql (key=value URL)".to_owned()
                }
            }
        }
    }

    /// One line per setting for the start-up log; never the tokens.
    pub fn summary(&self) -> String {
        let auth = if self.auth_enabled() {
            "bearer tokens (admin, node)"
        } else if self.insecure && !is_loopback(&self.host) {
            "DISABLED on a non-loopback address (--insecure)"
        } else {
            "disabled (loopback only)"
        };
        format!(
            "listen={}://{}:{} {} node_timeout={} max_module_size={} max_function_timeout={} max_function_memory={} event_retention={} auth={}",
            if self.tls.is_some() { "https" } else { "http" },
            self.host,
            self.port,
            self.database_summary(),
            humantime::format_duration(self.node_timeout),
            self.max_module_size,
            humantime::format_duration(self.max_function_timeout),
            self.max_function_memory,
            self.event_retention,
            auth
        )
    }
}

/// Room in a JSON deploy body for everything but the module.
const JSON_OVERHEAD: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_start_with_no_file() {
        let config = Config::load(&Cli::default()).unwrap();
        assert_eq!(config.port, 9090);
        assert_eq!(config.db_path, PathBuf::from("./data/control.db"));
        assert_eq!(config.blob_dir, PathBuf::from("./data/blobs"));
        assert_eq!(config.node_timeout, Duration::from_secs(30));
        assert!(!config.auth_enabled());
    }

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let file = Config::parse_file(
            Path::new("c.toml"),
            r#"
            [server]
            host = "127.0.0.1"
            port = 7000
            [database]
            path = "/var/lib/aether/control.db"
            [registry]
            node_timeout = "1m"
            [limits]
            max_module_size = "1MiB"
            [events]
            retention = 10
            [auth]
            admin_token = "a"
            node_token = "n"
            "#,
        )
        .unwrap();
        let cli = Cli {
            server: ServerFlags {
                port: Some(7001),
                ..ServerFlags::default()
            },
            ..Cli::default()
        };
        let config = Config::merge(file, &cli).unwrap();
        config.validate().unwrap();
        assert_eq!(config.port, 7001);
        assert_eq!(config.blob_dir, PathBuf::from("/var/lib/aether/blobs"));
        assert_eq!(config.node_timeout, Duration::from_secs(60));
        assert_eq!(config.max_module_size, 1 << 20);
        assert_eq!(config.event_retention, 10);
        assert!(config.auth_enabled());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(matches!(
            Config::parse_file(Path::new("c.toml"), "[server]\nhots = \"x\""),
            Err(ConfigError::Parse { .. })
        ));
        let cli = Cli {
            node_timeout: Some("soon".into()),
            ..Cli::default()
        };
        assert!(matches!(
            Config::merge(FileConfig::default(), &cli),
            Err(ConfigError::Value(_))
        ));
    }

    #[test]
    fn node_retention_defaults_to_a_week_and_must_outlast_node_timeout() {
        let config = Config::load(&Cli::default()).unwrap();
        assert_eq!(config.node_retention, Duration::from_secs(7 * 24 * 3600));
        let cli = Cli {
            node_retention: Some("10s".into()),
            ..Cli::default()
        };
        let err = Config::merge(FileConfig::default(), &cli)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("node_retention"), "{err}");
    }

    #[test]
    fn without_tokens_only_loopback_is_allowed_unless_insecure() {
        let mut config = Config {
            host: "0.0.0.0".into(),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InsecureBind { .. })
        ));
        config.insecure = true;
        config.validate().unwrap();
    }

    #[test]
    fn one_token_alone_is_refused_and_empty_tokens_mean_none() {
        let config = Config {
            admin_tokens: Secret::new("x").into_iter().collect(),
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string()
                .contains("AETHER_ADMIN_TOKEN, AETHER_NODE_TOKEN"),
            "{err}"
        );
        assert_eq!(Secret::new(""), None);
    }

    #[test]
    fn summary_and_debug_never_show_tokens() {
        let config = Config {
            admin_tokens: Secret::new("topsecret-admin").into_iter().collect(),
            node_token: Secret::new("topsecret-node"),
            ..Config::default()
        };
        let shown = format!("{} {:?}", config.summary(), config);
        assert!(!shown.contains("topsecret"), "{shown}");
    }
}
