//! HTTP to the control plane and the edge, turning every failure into one
//! readable sentence: which server, what went wrong, what to do.

use std::time::Duration;

use aether_proto::{ApiErrorBody, ErrorCode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
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

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    server: Server,
}

impl Client {
    /// A client of `server` at `base` (no trailing `/`), sending `token` as
    /// a bearer token when given, trusting the system's roots and
    /// `ca_cert` for `https://`.
    pub fn new(
        server: Server,
        base: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let http = aether_http::tls::client_builder(ca_cert)?
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("aether-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot create the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: base.to_owned(),
            token,
            server,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (starting with `/`), with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req`; a transport failure or an error status becomes an error.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let response = req.send().await.map_err(|e| self.transport_error(&e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.status_error(response).await.into())
        }
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
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "unexpected answer from {} at {url}: {e} (is {} really an Aether server?)",
                self.server.describe(),
                self.base
            )
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(e);
        if cause.contains("certificate") {
            return anyhow::anyhow!(
                "cannot reach {} at {}: TLS failed ({cause}); if it uses a private CA, pass --ca-cert FILE or set AETHER_CA_CERT",
                self.server.describe(),
                self.base
            );
        }
        if e.is_connect() || e.is_timeout() {
            let hint = match self.server {
                Server::Control => {
                    "start a local stack with `aether up`, or point --control-url / AETHER_CONTROL_URL at a running control plane"
                }
                Server::Edge => {
                    "start a local stack with `aether up`, or point --edge-url / AETHER_EDGE_URL at a running edge"
                }
            };
            anyhow::anyhow!(
                "cannot reach {} at {} ({cause}); {hint}",
                self.server.describe(),
                self.base
            )
        } else {
            anyhow::anyhow!(
                "request to {} at {} failed: {cause}",
                self.server.describe(),
                self.base
            )
        }
    }

    async fn status_error(&self, response: Response) -> ApiFailure {
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
        let who = format!("{} at {}", self.server.describe(), self.base);
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
