//! HTTP client of the control plane: joining (with the join token), then
//! registration, the manifest, blob downloads and event batches with this
//! edge's own credential. Calls other than the join wait until the edge
//! knows which bearer token to present.
//!
//! The client knows one or several URLs of the control plane (replicas
//! sharing one database, so this edge's credential is valid on each). A
//! call goes to the URL in use; when it cannot connect, times out, or gets
//! 502, 503 or 504 (a load balancer or replica without a working backend),
//! it is tried on the next URL, round robin, and the URL that answered is
//! used from then on. Any other answer, 4xx included, is the control
//! plane's real answer and is not tried elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// With several control-plane URLs: none of them answered (each was
    /// unreachable, timed out, or answered 502, 503 or 504).
    #[error("no control plane answered ({tried})")]
    NoneAnswered {
        /// Each URL's failure, `; `-separated, in the order tried.
        tried: String,
    },
}

impl ControlError {
    /// True when no control plane could be reached: this error says
    /// nothing about the request itself (the heartbeat reports it).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ControlError::Unreachable { .. } | ControlError::NoneAnswered { .. }
        )
    }

    /// True when the next control-plane URL may answer: the call did not
    /// get through (connection, TLS, timeout), or a gateway or an
    /// overloaded replica answered 502, 503 or 504.
    fn fails_over(&self) -> bool {
        matches!(
            self,
            ControlError::Unreachable { .. }
                | ControlError::Status {
                    status: 502..=504,
                    ..
                }
        )
    }
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
    /// No control-plane URL was given.
    #[error("no control-plane URL given")]
    NoUrl,
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

/// A control-plane client (cheap to clone; clones share the URL in use).
#[derive(Debug, Clone)]
pub struct ControlClient {
    /// Base URLs (no trailing slash), in the configured order.
    urls: Arc<[String]>,
    /// Index in `urls` of the one in use: the last that answered.
    current: Arc<AtomicUsize>,
    join_token: Option<aether_http::Secret>,
    auth: Arc<tokio::sync::watch::Sender<CallAuth>>,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client of the control plane at `urls` (replicas of one control
    /// plane, the first one used first), trusting the system's roots and
    /// `ca_cert` for `https://`. With a join token its calls wait for
    /// [`ControlClient::set_auth`]; without one they carry no token.
    pub fn new<U: AsRef<str>>(
        urls: &[U],
        join_token: Option<aether_http::Secret>,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Self, SetupError> {
        if urls.is_empty() {
            return Err(SetupError::NoUrl);
        }
        let auth = match &join_token {
            Some(_) => CallAuth::Pending,
            None => CallAuth::Open,
        };
        Ok(ControlClient {
            urls: urls
                .iter()
                .map(|u| u.as_ref().trim_end_matches('/').to_owned())
                .collect(),
            current: Arc::new(AtomicUsize::new(0)),
            join_token,
            auth: Arc::new(tokio::sync::watch::Sender::new(auth)),
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

    /// The base URL in use: the first configured until another one had to
    /// answer for it.
    pub fn base(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()]
    }

    /// Every configured base URL, in order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// `POST /api/nodes/join` with the join token.
    pub async fn join(&self, body: &JoinRequest) -> Result<JoinResponse, ControlError> {
        let token = self
            .join_token
            .as_ref()
            .map(aether_http::Secret::expose_str);
        let call = Call::new(reqwest::Method::POST, "/api/nodes/join", CALL_TIMEOUT);
        self.call(call, token, |req| req.json(body), read_json)
            .await
    }

    /// `POST /register` (also the heartbeat).
    pub async fn register(&self, body: &RegisterRequest) -> Result<(), ControlError> {
        let call = Call::new(reqwest::Method::POST, "/register", CALL_TIMEOUT);
        self.send(call, |req| req.json(body), async |_, _| Ok(()))
            .await
    }

    /// `GET /api/functions/manifest`.
    pub async fn manifest(&self) -> Result<Manifest, ControlError> {
        let call = Call::new(
            reqwest::Method::GET,
            "/api/functions/manifest",
            CALL_TIMEOUT,
        );
        self.send(call, |req| req, read_json).await
    }

    /// `GET /api/functions/{name}/wasm?version=n`: the module bytes. A
    /// download cut short is tried on the next URL like a refused
    /// connection.
    pub async fn blob(&self, name: &str, version: u64) -> Result<bytes::Bytes, ControlError> {
        let path = format!("/api/functions/{name}/wasm?version={version}");
        let call = Call::new(reqwest::Method::GET, &path, DOWNLOAD_TIMEOUT);
        self.send(
            call,
            |req| req,
            async |resp, url| {
                resp.bytes().await.map_err(|e| ControlError::Unreachable {
                    url,
                    reason: aether_http::tls::error_chain(&e),
                })
            },
        )
        .await
    }

    /// `POST /callback` with a batch of events.
    pub async fn post_events(&self, events: &[EventIn]) -> Result<(), ControlError> {
        let call = Call::new(reqwest::Method::POST, "/callback", CALL_TIMEOUT);
        self.send(call, |req| req.json(events), async |_, _| Ok(()))
            .await
    }

    /// [`ControlClient::call`] with the edge's token, once it is known.
    async fn send<T>(
        &self,
        call: Call<'_>,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        read: impl AsyncFn(reqwest::Response, String) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut auth = self.auth.subscribe();
        let ready = auth
            .wait_for(|a| !matches!(a, CallAuth::Pending))
            .await
            .map(|a| a.clone());
        let token = match &ready {
            Ok(CallAuth::Bearer(token)) => Some(token.expose_str()),
            _ => None,
        };
        self.call(call, token, build, read).await
    }

    /// Makes `call` (its request finished by `build`, its answer read by
    /// `read`) on the URL in use; when that fails over
    /// ([`ControlError::fails_over`]), on the next URLs in turn. The URL
    /// that answers becomes the one in use, which is logged once.
    async fn call<T>(
        &self,
        call: Call<'_>,
        token: Option<&str>,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        read: impl AsyncFn(reqwest::Response, String) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let count = self.urls.len();
        let first = self.current.load(Ordering::Relaxed) % count;
        let mut failures: Vec<ControlError> = Vec::new();
        for step in 0..count {
            let index = (first + step) % count;
            let url = format!("{}{}", self.urls[index], call.path);
            let mut req = build(
                self.http
                    .request(call.method.clone(), &url)
                    .timeout(call.timeout),
            );
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let result = match answer(req, &url).await {
                Ok(resp) => read(resp, url).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if count > 1 && e.fails_over() => failures.push(e),
                answered => {
                    if step > 0 {
                        self.switch(first, index, &failures[0]);
                    }
                    return answered;
                }
            }
        }
        Err(ControlError::NoneAnswered {
            tried: failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// Uses `to` from now on instead of `from`, which failed with `why`;
    /// says so once (concurrent calls that failed over alike do not
    /// repeat it).
    fn switch(&self, from: usize, to: usize, why: &ControlError) {
        if self
            .current
            .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                error = %why,
                "control plane {} unreachable; using {}",
                self.urls[from],
                self.urls[to]
            );
        }
    }
}

/// One call's method, path (with its query) and time limit.
struct Call<'a> {
    method: reqwest::Method,
    path: &'a str,
    timeout: Duration,
}

impl<'a> Call<'a> {
    fn new(method: reqwest::Method, path: &'a str, timeout: Duration) -> Self {
        Call {
            method,
            path,
            timeout,
        }
    }
}

/// Sends `req` (to `url`); an error for anything but 2xx.
async fn answer(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, ControlError> {
    let resp = req.send().await.map_err(|e| ControlError::Unreachable {
        url: url.to_owned(),
        reason: aether_http::tls::error_chain(&e),
    })?;
    let status = resp.status().as_u16();
    if status == 401 {
        let body: Option<aether_proto::ApiErrorBody> = resp.json().await.ok();
        let message = body.map_or_else(|| "no reason given".to_owned(), |b| b.error.message);
        return Err(ControlError::Unauthorized {
            url: url.to_owned(),
            message,
        });
    }
    if !resp.status().is_success() {
        let mut body = resp.text().await.unwrap_or_default();
        let mut cut = body.len().min(500);
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        return Err(ControlError::Status {
            url: url.to_owned(),
            status,
            body,
        });
    }
    Ok(resp)
}

/// A JSON answer.
async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    url: String,
) -> Result<T, ControlError> {
    resp.json().await.map_err(|e| ControlError::Decode {
        url,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::routing::{get, post};

    use super::*;

    /// A server on loopback answering every request with `router`.
    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    /// A control plane that answers the manifest and heartbeats.
    async fn working() -> String {
        serve(
            axum::Router::new()
                .route(
                    "/api/functions/manifest",
                    get(|| async { axum::Json(serde_json::json!({"functions": []})) }),
                )
                .route("/register", post(|| async { StatusCode::OK })),
        )
        .await
    }

    /// A server answering every request with `status`.
    async fn answering(status: StatusCode) -> String {
        serve(axum::Router::new().fallback(move || async move { status })).await
    }

    fn dead() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn a_call_moves_on_past_unreachable_and_gateway_errors_and_stays_where_it_got_an_answer()
    {
        let good = working().await;
        let urls = [
            dead(),
            answering(StatusCode::BAD_GATEWAY).await,
            answering(StatusCode::SERVICE_UNAVAILABLE).await,
            answering(StatusCode::GATEWAY_TIMEOUT).await,
            good.clone(),
        ];
        let client = ControlClient::new(&urls, None, None).unwrap();
        assert_eq!(client.base(), urls[0]);
        client.manifest().await.unwrap();
        assert_eq!(client.base(), good, "the URL that answered is kept");
        let body = RegisterRequest {
            node_id: "edge-1".into(),
            url: "http://127.0.0.1:1".into(),
            functions: Default::default(),
        };
        client.register(&body).await.unwrap();
        assert_eq!(client.base(), good);
    }

    #[tokio::test]
    async fn a_4xx_is_an_answer_and_is_not_tried_elsewhere() {
        let refusing = answering(StatusCode::NOT_FOUND).await;
        let client = ControlClient::new(&[refusing.clone(), working().await], None, None).unwrap();
        let err = client.manifest().await.unwrap_err();
        assert!(
            matches!(err, ControlError::Status { status: 404, .. }),
            "{err}"
        );
        assert_eq!(client.base(), refusing);
    }

    #[tokio::test]
    async fn when_none_answers_the_error_names_each_url_and_the_first_stays_in_use() {
        let urls = [dead(), answering(StatusCode::SERVICE_UNAVAILABLE).await];
        let client = ControlClient::new(&urls, None, None).unwrap();
        let err = client.manifest().await.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&urls[0]) && text.contains(&urls[1]) && text.contains("503"),
            "{text}"
        );
        assert_eq!(client.base(), urls[0]);

        // One URL: its own error, as before.
        let client = ControlClient::new(&urls[1..], None, None).unwrap();
        let err = client.manifest().await.unwrap_err();
        assert!(
            matches!(err, ControlError::Status { status: 503, .. }),
            "{err}"
        );
        assert!(matches!(
            ControlClient::new::<String>(&[], None, None),
            Err(SetupError::NoUrl)
        ));
    }
}
