//! HTTP to the control plane and the edge, turning every failure into one
//! readable sentence: which server, what went wrong, what to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aether_proto::{ApiErrorBody, ErrorCode};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;

/// How long to wait for a TCP connection before calling a server
/// unreachable. Requests themselves have no overall timeout: uploads of
/// large modules and slow functions (bounded by the edge) take their time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest server body quoted in an error when it is not the JSON error
/// body (e.g. a proxy's HTML page).
const MAX_QUOTED_BODY: usize = 200;

/// Which server a client talks to, for messages and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The control plane (deploys, listings, events).
    Control,
    /// An edge (`/execute`).
    Edge,
}

impl Server {
    fn describe(self) -> &'static str {
        match self {
            Server::Control => "the control plane",
            Server::Edge => "the edge",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::Control => "control plane",
            Server::Edge => "edge",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Server::Control => {
                "start a local stack with `aether up`, or point --control-url / AETHER_CONTROL_URL at a running control plane"
            }
            Server::Edge => {
                "start a local stack with `aether up`, or point --edge-url / AETHER_EDGE_URL at a running edge"
            }
        }
    }

    fn setting(self) -> &'static str {
        match self {
            Server::Control => "--control-url / AETHER_CONTROL_URL",
            Server::Edge => "--edge-url / AETHER_EDGE_URL",
        }
    }
}

/// The server answered with an error status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// The error code of the JSON body, when there was one.
    pub code: Option<ErrorCode>,
    /// The server's own message (or the start of a non-JSON body).
    pub detail: String,
    /// The full, readable sentence.
    pub message: String,
}

/// A client of one server, named by one base URL or by several (replicas
/// of one control plane).
///
/// With several, a request goes to the URL in use (the first, until
/// another had to answer); when it cannot connect, times out or gets 502,
/// 503 or 504, it is sent again to the next URL, and the one that answers
/// is used for the following requests. Any other answer, 4xx included, is
/// the server's real answer and is not tried elsewhere.
///
/// A deploy sent again after a timeout may have been applied by the
/// replica that timed out: that is safe, because the control plane answers
/// an identical deploy with 200 "unchanged" (the same version) instead of
/// creating another one.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Base URLs, without a trailing `/`, in the order given.
    bases: Arc<[String]>,
    /// Each base as reqwest writes it (normalised, no trailing `/`): the
    /// prefix of the URLs of requests to it.
    prefixes: Arc<[String]>,
    /// Index in `bases` of the one in use.
    current: Arc<AtomicUsize>,
    token: Option<String>,
    server: Server,
}

/// A base URL that did not answer a request.
struct Failure {
    base: String,
    /// Why, in a few words (for the error naming every URL tried).
    short: String,
    /// The error as if this were the only URL.
    error: anyhow::Error,
}

impl Client {
    /// A client of `server` at `bases` (at least one; no trailing `/`),
    /// sending `token` as a bearer token when given, trusting the system's
    /// roots and `ca_cert` for `https://`.
    pub fn new(
        server: Server,
        bases: &[String],
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        anyhow::ensure!(!bases.is_empty(), "no URL for {}", server.describe());
        let http = aether_http::tls::client_builder(ca_cert)?
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("aether-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot create the HTTP client: {e}"))?;
        let prefixes = bases
            .iter()
            .map(|base| match Url::parse(base) {
                Ok(url) => url.as_str().trim_end_matches('/').to_owned(),
                Err(_) => base.clone(),
            })
            .collect();
        Ok(Client {
            http,
            bases: bases.into(),
            prefixes,
            current: Arc::new(AtomicUsize::new(0)),
            token,
            server,
        })
    }

    /// The base URL in use.
    pub fn base(&self) -> &str {
        &self.bases[self.current()]
    }

    fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.bases.len()
    }

    /// A request to `path` (starting with `/`) on the URL in use, with the
    /// token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_at(self.current(), method, path)
    }

    fn request_at(&self, index: usize, method: Method, path: &str) -> RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{path}", self.bases[index]));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req` (made by [`Client::request`]), on the next URLs too
    /// when the one in use does not answer; a transport failure or an
    /// error status becomes an error. A request whose body can be sent
    /// only once (a stream) goes to one URL: see [`Client::send_with`].
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let request = req
            .build()
            .map_err(|e| self.transport_error(self.base(), &e))?;
        let from = self.index_of(request.url());
        let mut original = Some(request);
        self.send_each(|to| {
            let copy = original.as_ref()?.try_clone();
            match (from, copy) {
                (Some(from), Some(copy)) if from == to => Some(Ok(copy)),
                (Some(from), Some(copy)) => self.retarget(copy, from, to).map(Ok),
                // A streamed body, or a URL made elsewhere: sent once, as
                // it is.
                _ => original.take().map(Ok),
            }
        })
        .await
    }

    /// Sends the request `build` makes of a request to `path`, made anew
    /// for every URL tried (for bodies that can be sent only once, like a
    /// streamed upload).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        self.send_each(|index| Some(build(self.request_at(index, method.clone(), path)).build()))
            .await
    }

    /// Sends `request_at(index)` to the URL in use, then to the next ones
    /// while they do not answer (until `request_at` has no more).
    async fn send_each(
        &self,
        mut request_at: impl FnMut(usize) -> Option<reqwest::Result<reqwest::Request>>,
    ) -> anyhow::Result<Response> {
        let count = self.bases.len();
        let first = self.current();
        let mut failures: Vec<Failure> = Vec::new();
        for step in 0..count {
            let index = (first + step) % count;
            let base = &self.bases[index];
            let Some(request) = request_at(index) else {
                break;
            };
            let request = request.map_err(|e| self.transport_error(base, &e))?;
            let failure = match self.http.execute(request).await {
                Err(e) => Failure {
                    base: base.clone(),
                    short: root_cause(&e),
                    error: self.transport_error(base, &e),
                },
                Ok(response)
                    if matches!(
                        response.status(),
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) =>
                {
                    let short = format!("answered {}", response.status());
                    Failure {
                        base: base.clone(),
                        short,
                        error: self.status_error(base, response).await.into(),
                    }
                }
                Ok(response) => {
                    if let Some(why) = failures.first() {
                        self.switch(first, index, why);
                    }
                    return if response.status().is_success() {
                        Ok(response)
                    } else {
                        Err(self.status_error(base, response).await.into())
                    };
                }
            };
            failures.push(failure);
        }
        match failures.len() {
            0 => anyhow::bail!("the request to {} was not sent", self.server.describe()),
            1 => return Err(failures.remove(0).error),
            _ => {}
        }
        let tried: Vec<&str> = failures.iter().map(|f| f.base.as_str()).collect();
        let why: Vec<String> = failures
            .iter()
            .map(|f| format!("{}: {}", f.base, f.short))
            .collect();
        Err(anyhow::anyhow!(
            "cannot reach {} at any of {} ({}); {}",
            self.server.describe(),
            tried.join(", "),
            why.join("; "),
            self.server.hint()
        ))
    }

    /// Uses `to` from now on instead of `from`, which did not answer; says
    /// so on stderr.
    fn switch(&self, from: usize, to: usize, why: &Failure) {
        if self
            .current
            .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            eprintln!(
                "warning: {} {} unreachable ({}); using {}",
                self.server.name(),
                self.bases[from],
                why.short,
                self.bases[to]
            );
        }
    }

    /// Which base `url` was made for.
    fn index_of(&self, url: &Url) -> Option<usize> {
        let url = url.as_str();
        self.prefixes.iter().position(|prefix| {
            url.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        })
    }

    /// `request` (made for base `from`) for base `to`.
    fn retarget(
        &self,
        mut request: reqwest::Request,
        from: usize,
        to: usize,
    ) -> Option<reqwest::Request> {
        let rest = &request.url().as_str()[self.prefixes[from].len()..];
        *request.url_mut() = Url::parse(&format!("{}{rest}", self.prefixes[to])).ok()?;
        Some(request)
    }

    /// Sends `req` (made by [`Client::request`]) to the URL in use, once,
    /// and returns the answer whatever its status: for `aether call`,
    /// where a function's own error answers are output too. Only a
    /// transport failure is an error.
    pub async fn send_once(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let base = self.base();
        let request = req.build().map_err(|e| self.transport_error(base, &e))?;
        self.http
            .execute(request)
            .await
            .map_err(|e| self.transport_error(base, &e))
    }

    /// Sends `req` and parses a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(req).await?;
        self.parse(response).await
    }

    /// `GET path`, parsed.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    /// Parses a successful answer.
    pub async fn parse<T: DeserializeOwned>(&self, response: Response) -> anyhow::Result<T> {
        let url = response.url().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(self.base(), &e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "unexpected answer from {} at {url}: {e} (is {} really an Aether server?)",
                self.server.describe(),
                self.base()
            )
        })
    }

    fn transport_error(&self, base: &str, e: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(e);
        if cause.contains("certificate") {
            return anyhow::anyhow!(
                "cannot reach {} at {base}: TLS failed ({cause}); if it uses a private CA, pass --ca-cert FILE or set AETHER_CA_CERT",
                self.server.describe(),
            );
        }
        if e.is_connect() || e.is_timeout() {
            anyhow::anyhow!(
                "cannot reach {} at {base} ({cause}); {}",
                self.server.describe(),
                self.server.hint()
            )
        } else {
            anyhow::anyhow!(
                "request to {} at {base} failed: {cause}",
                self.server.describe(),
            )
        }
    }

    async fn status_error(&self, base: &str, response: Response) -> ApiFailure {
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => format!("(body unreadable: {})", root_cause(&e)),
        };
        let body = serde_json::from_str::<ApiErrorBody>(&text).ok();
        let (code, server_message) = match &body {
            Some(b) => (Some(b.error.code), b.error.message.clone()),
            None => (None, quote(&text)),
        };
        let who = format!("{} at {base}", self.server.describe());
        let message = match (status, code) {
            (StatusCode::UNAUTHORIZED, _) => match self.token {
                None => format!(
                    "{who} requires a token: pass --token or set AETHER_TOKEN (the control plane's admin token)"
                ),
                Some(_) => format!(
                    "{who} refused the token: it is wrong; check --token / AETHER_TOKEN against the control plane's admin token"
                ),
            },
            (_, Some(ErrorCode::InvalidWasm)) if server_message.starts_with("invalid wasm") => {
                server_message.clone()
            }
            (_, Some(ErrorCode::InvalidWasm)) => format!("invalid wasm: {server_message}"),
            (_, Some(ErrorCode::FunctionNotFound)) => {
                format!("{server_message} on {who} (see `aether functions`)")
            }
            (_, Some(code)) => format!(
                "{who} answered {} {code}: {server_message}",
                status.as_u16()
            ),
            (_, None) => format!(
                "{who} answered {status}: {server_message} (is {} set to an Aether server?)",
                self.server.setting()
            ),
        };
        ApiFailure {
            status,
            code,
            detail: server_message,
            message,
        }
    }
}

/// The innermost cause of an error: the OS or protocol reason, without
/// reqwest's and hyper's wrappers.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// At most [`MAX_QUOTED_BODY`] characters of a body, on one line.
fn quote(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.is_empty() {
        return "(empty body)".into();
    }
    match flat.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_bodies_are_short_single_lines() {
        assert_eq!(
            quote("<html>\n<b>oops</b>\n</html>"),
            "<html> <b>oops</b> </html>"
        );
        assert_eq!(quote("   "), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(quote(&long).chars().count(), MAX_QUOTED_BODY + 1);
    }
}
