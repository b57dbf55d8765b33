//! HTTP client of the control plane: joining (with the join token), then
//! registration, the manifest, blob downloads and event batches with this
//! edge's own credential. Calls other than the join wait until the edge
//! knows which bearer token to present.

use std::time::Duration;

use aether_proto::control::{EventIn, JoinRequest, JoinResponse, Manifest, RegisterRequest};

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
    /// The credential or join token was refused.
    #[error("control plane refused this edge (401) at {url}: {message}")]
    Unauthorized {
        /// The URL called.
        url: String,
        /// The control plane's reason, and what to do.
        message: String,
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

/// The client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The extra CA could not be read or used.
    #[error(transparent)]
    Tls(#[from] aether_http::tls::TlsError),
    /// reqwest refused the configuration.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Which bearer token calls carry.
#[derive(Debug, Clone)]
pub enum CallAuth {
    /// Not known yet: the edge has not joined; calls wait.
    Pending,
    /// None (the control plane runs without tokens).
    Open,
    /// This one: the edge's credential (or, with a control plane older than
    /// per-edge credentials, the shared node token).
    Bearer(aether_http::Secret),
}

/// A control-plane client (cheap to clone).
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    join_token: Option<aether_http::Secret>,
    auth: std::sync::Arc<tokio::sync::watch::Sender<CallAuth>>,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client of the control plane at `base` (no trailing slash),
    /// trusting the system's roots and `ca_cert` for `https://`.
    /// With a join token its calls wait for [`ControlClient::set_auth`];
    /// without one they carry no token.
    pub fn new(
        base: &str,
        join_token: Option<aether_http::Secret>,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Self, SetupError> {
        let auth = match &join_token {
            Some(_) => CallAuth::Pending,
            None => CallAuth::Open,
        };
        Ok(ControlClient {
            base: base.trim_end_matches('/').to_owned(),
            join_token,
            auth: std::sync::Arc::new(tokio::sync::watch::Sender::new(auth)),
            http: aether_http::tls::client_builder(ca_cert)?
                .connect_timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    /// The join token, if configured.
    pub fn join_token(&self) -> Option<&aether_http::Secret> {
        self.join_token.as_ref()
    }

    /// Whether calls go out now (false while the edge has not joined).
    pub fn is_ready(&self) -> bool {
        !matches!(*self.auth.borrow(), CallAuth::Pending)
    }

    /// Sets the token calls carry from now on (and releases waiting calls).
    pub fn set_auth(&self, auth: CallAuth) {
        self.auth.send_replace(auth);
    }

    /// `POST /api/nodes/join` with the join token.
    pub async fn join(&self, body: &JoinRequest) -> Result<JoinResponse, ControlError> {
        let path = "/api/nodes/join";
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(CALL_TIMEOUT)
            .json(body);
        if let Some(token) = &self.join_token {
            req = req.bearer_auth(token.expose_str());
        }
        let resp = self.answer(req, path).await?;
        resp.json().await.map_err(|e| ControlError::Decode {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
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
        self.http
            .request(method, format!("{}{path}", self.base))
            .timeout(timeout)
    }

    /// Sends `req` with the edge's token, once it is known.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<reqwest::Response, ControlError> {
        let mut auth = self.auth.subscribe();
        let ready = auth
            .wait_for(|a| !matches!(a, CallAuth::Pending))
            .await
            .map(|a| a.clone());
        let req = match ready {
            Ok(CallAuth::Bearer(token)) => req.bearer_auth(token.expose_str()),
            _ => req,
        };
        self.answer(req, path).await
    }

    /// Sends `req` as it is; an error for anything but 2xx.
    async fn answer(
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
            let body: Option<aether_proto::ApiErrorBody> = resp.json().await.ok();
            let message = body.map_or_else(|| "no reason given".to_owned(), |b| b.error.message);
            return Err(ControlError::Unauthorized { url, message });
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
