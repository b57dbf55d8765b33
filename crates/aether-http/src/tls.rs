//! TLS for both sides of every Aether connection, with rustls and its
//! `ring` provider (it builds with a C compiler alone; aws-lc-rs would add
//! cmake to the build, and nothing here needs FIPS).
//!
//! - Servers: [`ServerTls`] loads a PEM certificate chain and private key,
//!   and [`ServerTls::watch`] reloads them when either file changes, so a
//!   renewed certificate is used for new connections without a restart;
//!   connections already open keep the one they started with.
//! - Clients: [`client_builder`] makes a `reqwest` client builder that
//!   trusts the system's roots plus, optionally, one extra CA bundle (a
//!   private CA for a fleet's own certificates).
//! - [`error_chain`] spells out a failed call with its causes, so a
//!   certificate problem is named ("invalid peer certificate:
//!   UnknownIssuer") instead of "error sending request".

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How often [`ServerTls::watch`] looks at the certificate files.
/// Two `stat` calls a second cost nothing, and a renewal is in use within a
/// second of being written.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// A certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// `certificate`, `private key` or `CA certificate`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind wanted.
    #[error("{path} holds no {what} in PEM: {reason}")]
    Pem {
        /// `certificate`, `private key` or `CA certificate`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the certificate or key (e.g. they do not match).
    #[error("cannot use certificate {cert} with key {key}: {source}")]
    Rustls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// `reqwest` refused the CA certificate.
    #[error("cannot use CA certificate {path}: {reason}")]
    Client {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Where a server's certificate chain and private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The crypto provider every TLS config here is built with.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Loads `files` into a key rustls can serve.
fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    fn pem_error(
        what: &'static str,
        path: &Path,
    ) -> impl FnOnce(rustls_pki_types::pem::Error) -> TlsError + use<> {
        let path = path.to_owned();
        move |e| TlsError::Pem {
            what,
            path,
            reason: e.to_string(),
        }
    }
    let cert_pem = read("certificate", &files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error("certificate", &files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            path: files.cert.clone(),
            reason: "no CERTIFICATE section".into(),
        });
    }
    let key_pem = read("private key", &files.key)?;
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(pem_error("private key", &files.key))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Rustls {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

/// Modification time and length of both files: a change to either means
/// a reload.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(files: &TlsFiles) -> Stamp {
    let of = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [of(&files.cert), of(&files.key)]
}

/// The certificate a server presents; swapped whole on reload.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A server's TLS set-up: the acceptor for new connections and the files
/// it reloads from.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<Resolver>,
    files: TlsFiles,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads `files` (an error here stops the server from starting: a
    /// server asked to speak HTTPS never falls back to plain HTTP).
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let key = load(&files)?;
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                cert: files.cert.clone(),
                key: files.key.clone(),
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // The servers speak HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
            files,
        })
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Loads the files again now; on success new connections get the new
    /// certificate. On failure the current one stays (and the error says
    /// why): a half-written renewal must not take a server off the air.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load(&self.files)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// Reloads whenever either file changes (looked at every `every`), for
    /// as long as the returned future runs. A change that cannot be loaded
    /// (a renewal caught half-written) is tried again at every look until
    /// it loads, with one warning per state of the files.
    pub async fn watch(self, every: Duration) {
        let mut loaded = stamp(&self.files);
        let mut warned: Option<Stamp> = None;
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = stamp(&self.files);
            if now == loaded {
                continue;
            }
            match self.reload() {
                Ok(()) => {
                    loaded = now;
                    warned = None;
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Err(e) if warned != Some(now) => {
                    warned = Some(now);
                    tracing::warn!(error = %e, "cannot reload the TLS certificate; keeping the current one");
                }
                Err(_) => {}
            }
        }
    }
}

/// A `reqwest` client builder that speaks `https://` with the system's
/// roots plus the certificates of `ca_cert` (a PEM bundle), if given.
pub fn client_builder(ca_cert: Option<&Path>) -> Result<reqwest::ClientBuilder, TlsError> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_cert {
        let pem = read("CA certificate", path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| TlsError::Client {
            path: path.to_owned(),
            reason: error_chain(&e),
        })?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                what: "CA certificate",
                path: path.to_owned(),
                reason: "no CERTIFICATE section".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

/// `e` and its causes, joined by `: ` — repeated messages (wrappers that
/// print their cause) once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
