//! HTTP client of the control plane: registration, the manifest, blob
//! downloads and event batches, all with the node token.

use std::time::Duration;

use aether_proto::control::{EventIn, Manifest, RegisterRequest};

/// Time limit of one call to the control plane (blob downloads get more).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Time limit of one blob download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a call to the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Not reachable, the connection broke, or TLS failed (the reason
    /// names the certificate problem).
    #[error("control plane {url} unreachable: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error with its causes.
        reason: String,
    },
    /// The node token was refused.
    #[error(
        "control plane refused this edge's node token (401) at {url}: set AETHER_NODE_TOKEN (or [control] node_token) to the control plane's node token"
    )]
    Unauthorized {
        /// The URL called.
        url: String,
    },
    /// Any other non-success answer.
    #[error("control plane answered {status} at {url}: {body}")]
    Status {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// The (truncated) body.
        body: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// A control-plane client (cheap to clone).
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    token: Option<aether_http::Secret>,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client of the control plane at `base` (no trailing slash),
    /// trusting the system's roots and `ca_cert` for `https://`.
    pub fn new(
        base: &str,
        token: Option<aether_http::Secret>,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Self, crate::state::StartError> {
        Ok(ControlClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: aether_http::tls::client_builder(ca_cert)?
                .connect_timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    /// The control plane's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(timeout);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_str());
        }
        req
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<reqwest::Response, ControlError> {
        let url = format!("{}{path}", self.base);
        let resp = req.send().await.map_err(|e| ControlError::Unreachable {
            url: url.clone(),
            reason: aether_http::tls::error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        if status == 401 {
            return Err(ControlError::Unauthorized { url });
        }
        if !resp.status().is_success() {
            let mut body = resp.text().await.unwrap_or_default();
            body.truncate(500);
            return Err(ControlError::Status { url, status, body });
        }
        Ok(resp)
    }

    /// `POST /register` (also the heartbeat).
    pub async fn register(&self, body: &RegisterRequest) -> Result<(), ControlError> {
        let req = self
            .request(reqwest::Method::POST, "/register", CALL_TIMEOUT)
            .json(body);
        self.send(req, "/register").await.map(drop)
    }

    /// `GET /api/functions/manifest`.
    pub async fn manifest(&self) -> Result<Manifest, ControlError> {
        let path = "/api/functions/manifest";
        let req = self.request(reqwest::Method::GET, path, CALL_TIMEOUT);
        let resp = self.send(req, path).await?;
        resp.json().await.map_err(|e| ControlError::Decode {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    /// `GET /api/functions/{name}/wasm?version=n`: the module bytes.
    pub async fn blob(&self, name: &str, version: u64) -> Result<bytes::Bytes, ControlError> {
        let path = format!("/api/functions/{name}/wasm?version={version}");
        let req = self.request(reqwest::Method::GET, &path, DOWNLOAD_TIMEOUT);
        let resp = self.send(req, &path).await?;
        resp.bytes().await.map_err(|e| ControlError::Unreachable {
            url: format!("{}{path}", self.base),
            reason: aether_http::tls::error_chain(&e),
        })
    }

    /// `POST /callback` with a batch of events.
    pub async fn post_events(&self, events: &[EventIn]) -> Result<(), ControlError> {
        let req = self
            .request(reqwest::Method::POST, "/callback", CALL_TIMEOUT)
            .json(events);
        self.send(req, "/callback").await.map(drop)
    }
}
