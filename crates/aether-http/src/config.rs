//! The pieces of both binaries' configuration loading: defaults < TOML
//! file < `AETHER_*` variables < flags (clap reads the latter two, a flag
//! winning over its variable). One error type, one spelling of sizes
//! (`bytesize`: `16MB` = 16·10^6, `16MiB` = 16·2^20), durations
//! (`humantime`: `250ms`, `3s`, `1m`), listen addresses (an IP address or
//! a host name such as `localhost`) and secrets ([`Secret`], never shown by
//! `Debug`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use aether_proto::limits::{LimitsError, parse_duration, parse_size};
use serde::de::DeserializeOwned;

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (the TOML parser's words, naming the key).
        message: String,
    },
    /// A size or duration could not be parsed.
    #[error(transparent)]
    Value(#[from] LimitsError),
    /// A value is out of its allowed range, or values conflict.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No credentials, and a non-loopback address without `--insecure`.
    #[error(
        "refusing to listen on {host} without tokens: {remedy}, bind to 127.0.0.1, or pass --insecure"
    )]
    InsecureBind {
        /// The refused address.
        host: String,
        /// Which tokens to set, e.g. "set AETHER_ADMIN_TOKEN and AETHER_NODE_TOKEN".
        remedy: &'static str,
    },
}

impl ConfigError {
    /// A value out of its range.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// The file at `path` parsed as `T`, or `T::default()` without a path.
pub fn read_file<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, ConfigError> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file(path, &text)
}

/// TOML `text` (read from `path`) parsed as `T`.
pub fn parse_file<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The flag (or its variable) if set, else the file's value, parsed as a
/// human duration; `None` when neither is set.
pub fn duration(
    field: &'static str,
    flag: &Option<String>,
    file: &Option<String>,
) -> Result<Option<Duration>, ConfigError> {
    flag.as_deref()
        .or(file.as_deref())
        .map(|text| parse_duration(field, text))
        .transpose()
        .map_err(ConfigError::from)
}

/// The flag (or its variable) if set, else the file's value, parsed as a
/// human size in bytes; `None` when neither is set.
pub fn size(
    field: &'static str,
    flag: &Option<String>,
    file: &Option<String>,
) -> Result<Option<u64>, ConfigError> {
    flag.as_deref()
        .or(file.as_deref())
        .map(|text| parse_size(field, text))
        .transpose()
        .map_err(ConfigError::from)
}

/// `true` for `localhost` and loopback IP addresses (`[::1]` included).
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a listen address: not empty, and loopback unless the service has
/// credentials or the operator said `--insecure`.
pub fn check_listen(
    host: &str,
    has_credentials: bool,
    insecure: bool,
    remedy: &'static str,
) -> Result<(), ConfigError> {
    if host.is_empty() {
        return Err(ConfigError::invalid("host", "must not be empty"));
    }
    if !has_credentials && !insecure && !is_loopback(host) {
        return Err(ConfigError::InsecureBind {
            host: host.to_owned(),
            remedy,
        });
    }
    Ok(())
}

/// The address to bind: `host` (bracketed if it is an IPv6 address) and
/// `port`, as `TcpListener::bind` takes it.
pub fn listen_addr(host: &str, port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

/// The flags every server has (each also read from its `AETHER_*`
/// variable); flattened into each binary's own flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerFlags {
    /// TOML configuration file.
    #[arg(long, env = "AETHER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on: an IP address or a host name [default: 127.0.0.1].
    #[arg(long, env = "AETHER_HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 9090 for the control
    /// plane, 9091 for an edge].
    #[arg(long, env = "AETHER_PORT")]
    pub port: Option<u16>,
    /// Log format: `text` or `json` (one object per line).
    #[arg(long, env = "AETHER_LOG_FORMAT", default_value = "text")]
    pub log_format: crate::logging::LogFormat,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key);
    /// reloaded when the file changes.
    #[arg(long, env = "AETHER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, env = "AETHER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Extra CA certificate(s) (PEM) to trust for `https://` calls this
    /// server makes, beside the system's roots.
    #[arg(long, env = "AETHER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl ServerFlags {
    /// The certificate and key to serve HTTPS with: flags win over the
    /// file's `[server] tls_cert` / `tls_key`; both or neither.
    pub fn tls_files(
        &self,
        file_cert: Option<PathBuf>,
        file_key: Option<PathBuf>,
    ) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
        let cert = self.tls_cert.clone().or(file_cert);
        let key = self.tls_key.clone().or(file_key);
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles { cert, key })),
            (None, None) => Ok(None),
            _ => Err(ConfigError::invalid(
                "tls",
                "set both tls_cert and tls_key (--tls-cert, --tls-key), or neither",
            )),
        }
    }
}

/// A token that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token; an empty string means "not configured".
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        (!token.is_empty()).then_some(Secret(token))
    }

    /// The token bytes, for comparison only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The token text, for an `Authorization` header only.
    pub fn expose_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        port: Option<u16>,
    }

    #[test]
    fn a_missing_file_and_an_unknown_key_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = read_file::<File>(Some(&missing)).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "prot = 1\n").unwrap();
        let err = read_file::<File>(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        assert_eq!(read_file::<File>(None).unwrap().port, None);
    }

    #[test]
    fn the_flag_wins_over_the_file_and_bad_values_name_their_field() {
        let set = |s: &str| Some(s.to_owned());
        let d = duration("exec_timeout", &set("500ms"), &set("3s")).unwrap();
        assert_eq!(d, Some(Duration::from_millis(500)));
        let d = duration("exec_timeout", &None, &set("3s")).unwrap();
        assert_eq!(d, Some(Duration::from_secs(3)));
        assert_eq!(size("memory_limit", &None, &None).unwrap(), None);
        assert_eq!(size("m", &set("16MiB"), &None).unwrap(), Some(16 << 20));
        let err = duration("exec_timeout", &set("forever"), &None).unwrap_err();
        assert!(err.to_string().contains("exec_timeout"), "{err}");
    }

    #[test]
    fn without_credentials_only_loopback_is_allowed_unless_insecure() {
        for host in ["127.0.0.1", "::1", "[::1]", "localhost"] {
            assert!(is_loopback(host), "{host}");
            check_listen(host, false, false, "set X").unwrap();
        }
        assert!(!is_loopback("example.com"));
        let err = check_listen("0.0.0.0", false, false, "set AETHER_NODE_TOKEN").unwrap_err();
        assert!(
            err.to_string().contains("set AETHER_NODE_TOKEN")
                && err.to_string().contains("--insecure"),
            "{err}"
        );
        check_listen("0.0.0.0", true, false, "").unwrap();
        check_listen("0.0.0.0", false, true, "").unwrap();
        assert!(check_listen("", true, true, "").is_err());
    }

    #[test]
    fn listen_addresses_bracket_ipv6() {
        assert_eq!(listen_addr("::1", 80), "[::1]:80");
        assert_eq!(listen_addr("[::1]", 80), "[::1]:80");
        assert_eq!(listen_addr("0.0.0.0", 80), "0.0.0.0:80");
        assert_eq!(listen_addr("localhost", 80), "localhost:80");
    }

    #[test]
    fn secrets_are_never_shown_and_empty_means_none() {
        let s = Secret::new("topsecret").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(Secret::new(""), None);
    }
}
