//! Outbound HTTP for `wasi:http` components: denied unless the function's
//! allow-list names the destination (issue 16).
//!
//! [`EgressPolicy`] is the parsed allow-list (Spin-style
//! `scheme://host[:port]` entries) with per-invocation caps on the number of
//! requests and on the response bytes received. [`Egress`] is the
//! [`WasiHttpHooks`] implementation that enforces it on every
//! `wasi:http/outgoing-handler.handle` call:
//!
//! 1. the request's scheme, host and port must match an entry
//!    ([`Error::HttpRequestDenied`] otherwise);
//! 2. at most `max_requests` requests per invocation
//!    ([`Error::ConnectionLimitReached`]);
//! 3. the host is resolved here and every non-public address (loopback,
//!    private, link-local — the cloud metadata service at 169.254.169.254 —,
//!    CGNAT, unique-local, multicast, documentation, ...) is refused
//!    ([`Error::DestinationIpProhibited`]) unless the matching entry names the
//!    host literally: an IP literal or exactly `localhost`, never a wildcard;
//! 4. the connection goes to the address that was checked, not to the name
//!    again, so a second DNS answer cannot swap in a private address;
//! 5. response bodies end with [`Error::HttpResponseBodySize`] once the
//!    invocation's responses total more than `max_response_bytes`.
//!
//! The client itself (TCP, rustls with the webpki roots, hyper's HTTP/1
//! handshake, timeouts, driving the connection) follows
//! `wasmtime_wasi_http::default_send_request` from wasmtime-wasi-http 48.0.8,
//! by the Wasmtime Project Developers, Apache-2.0 WITH LLVM-exception
//! (<https://github.com/bytecodealliance/wasmtime>), changed to connect to a
//! checked address, with shorter default timeouts and a byte cap.

use std::fmt;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::{DnsErrorPayload, ErrorCode};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

/// Default cap on outbound requests per invocation.
pub const DEFAULT_MAX_OUTBOUND_REQUESTS: u32 = 16;

/// Default cap on the response body bytes received per invocation (all
/// responses together): 8 MiB.
pub const DEFAULT_MAX_OUTBOUND_BYTES: u64 = 8 << 20;

/// Connect timeout when the guest sets none (wasmtime's default is 600 s).
/// It bounds name resolution, TCP connect, TLS and HTTP handshakes together.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait for the response head when the guest sets no first-byte timeout.
const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait between body frames when the guest sets no between-bytes timeout.
const DEFAULT_BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

/// An allow-list entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The entry is not `scheme://host[:port]` as documented on
    /// [`EgressPolicy::new`].
    #[error("invalid outbound host {entry:?}: {reason}")]
    InvalidEntry {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which outbound HTTP requests a function may make, and how many.
///
/// An empty policy ([`EgressPolicy::deny_all`], also the default) denies
/// every request.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    entries: Vec<Entry>,
    max_requests: u32,
    max_response_bytes: u64,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::deny_all()
    }
}

impl EgressPolicy {
    /// Parses an allow-list. Each entry is `scheme://host[:port]`:
    ///
    /// - scheme: `http`, `https` or `*` (both);
    /// - host: an exact DNS name (`api.example.com`), an IP literal
    ///   (`10.0.0.1`, `[fd00::1]`), `*.suffix` (any subdomain of `suffix`,
    ///   not `suffix` itself) or `*` (any host);
    /// - port: a number, `*` (any port) or absent, meaning the scheme's
    ///   default (80 for http, 443 for https; with scheme `*`, 80 for http
    ///   requests and 443 for https ones).
    ///
    /// Paths, queries, fragments, user info and empty entries are errors.
    /// Names are compared case-insensitively.
    ///
    /// Non-public addresses (loopback, private, link-local, ...) are only
    /// reachable through an entry naming the host literally: an IP literal
    /// or exactly `localhost`.
    pub fn new(entries: &[String]) -> Result<EgressPolicy, EgressError> {
        let entries = entries
            .iter()
            .map(|entry| {
                Entry::parse(entry).map_err(|reason| EgressError::InvalidEntry {
                    entry: entry.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy {
            entries,
            max_requests: DEFAULT_MAX_OUTBOUND_REQUESTS,
            max_response_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
        })
    }

    /// A policy that denies every request.
    pub fn deny_all() -> Self {
        EgressPolicy {
            entries: Vec::new(),
            max_requests: DEFAULT_MAX_OUTBOUND_REQUESTS,
            max_response_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
        }
    }

    /// One process-wide deny-all policy, shared (no allocation per call).
    pub fn shared_deny_all() -> Arc<EgressPolicy> {
        static DENY_ALL: OnceLock<Arc<EgressPolicy>> = OnceLock::new();
        DENY_ALL
            .get_or_init(|| Arc::new(EgressPolicy::deny_all()))
            .clone()
    }

    /// Whether the allow-list is empty (every request is denied).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets the per-invocation caps: at most `max_requests` requests, and at
    /// most `max_response_bytes` response body bytes over all of them.
    pub fn with_caps(mut self, max_requests: u32, max_response_bytes: u64) -> Self {
        self.max_requests = max_requests;
        self.max_response_bytes = max_response_bytes;
        self
    }

    /// The per-invocation cap on the number of requests.
    pub fn max_requests(&self) -> u32 {
        self.max_requests
    }

    /// The per-invocation cap on response body bytes.
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
    }

    /// Whether some entry allows `target`, and if so whether one of the
    /// matching entries names the host literally (which lets it reach a
    /// non-public address).
    fn permit(&self, target: &Target) -> Option<Permit> {
        let mut permit = None;
        for entry in self.entries.iter().filter(|e| e.matches(target)) {
            if entry.host.is_literal() {
                return Some(Permit {
                    non_public_ok: true,
                });
            }
            permit = Some(Permit {
                non_public_ok: false,
            });
        }
        permit
    }
}

/// What the allow-list granted a request.
#[derive(Debug, Clone, Copy)]
struct Permit {
    /// The host was named literally: its address need not be public.
    non_public_ok: bool,
}

/// One parsed allow-list entry.
#[derive(Debug, Clone)]
struct Entry {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemePattern {
    Http,
    Https,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`.
    Any,
    /// `*.example.com`, stored as `.example.com`.
    Subdomains(String),
    /// An exact DNS name, lower case, without a trailing dot.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl HostPattern {
    /// Names the host literally: may reach a non-public address.
    fn is_literal(&self) -> bool {
        match self {
            HostPattern::Ip(_) => true,
            HostPattern::Name(name) => name == "localhost",
            HostPattern::Any | HostPattern::Subdomains(_) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    /// Absent: the request's scheme's default port.
    Default,
    /// `*`.
    Any,
    Exact(u16),
}

impl Entry {
    fn parse(entry: &str) -> Result<Entry, String> {
        if entry.is_empty() {
            return Err("empty entry".into());
        }
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err("expected scheme://host[:port]".into());
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => SchemePattern::Http,
            "https" => SchemePattern::Https,
            "*" => SchemePattern::Any,
            "" => return Err("missing scheme (http, https or *)".into()),
            other => {
                return Err(format!(
                    "unsupported scheme {other:?} (expected http, https or *)"
                ));
            }
        };
        if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#')) {
            let what = match c {
                '/' => "a path",
                '?' => "a query",
                _ => "a fragment",
            };
            return Err(format!("{what} is not allowed (only scheme://host[:port])"));
        }
        if rest.contains('@') {
            return Err("user info is not allowed".into());
        }
        let (host, port) = split_host_port(rest)?;
        let host = parse_host_pattern(host)?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(port) => PortPattern::Exact(parse_port(port)?),
        };
        Ok(Entry { scheme, host, port })
    }

    fn matches(&self, target: &Target) -> bool {
        let scheme = match self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Http => !target.https,
            SchemePattern::Https => target.https,
        };
        let port = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => target.port == if target.https { 443 } else { 80 },
            PortPattern::Exact(port) => target.port == port,
        };
        let host = match (&self.host, &target.host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Subdomains(suffix), TargetHost::Name(name)) => name.ends_with(suffix),
            (HostPattern::Name(want), TargetHost::Name(name)) => want == name,
            (HostPattern::Ip(want), TargetHost::Ip(ip)) => want == ip,
            _ => false,
        };
        scheme && port && host
    }
}

/// Splits `host[:port]`, where an IPv6 host is in brackets.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if rest.is_empty() {
        return Err("missing host".into());
    }
    if rest.parse::<Ipv6Addr>().is_ok() {
        return Err("an IPv6 address must be in brackets, as in [::1]".into());
    }
    let (host, after) = if rest.starts_with('[') {
        let Some(end) = rest.find(']') else {
            return Err("unclosed '[' in IPv6 address".into());
        };
        (&rest[..=end], &rest[end + 1..])
    } else {
        match rest.find(':') {
            Some(colon) => (&rest[..colon], &rest[colon..]),
            None => (rest, ""),
        }
    };
    match after {
        "" => Ok((host, None)),
        _ => match after.strip_prefix(':') {
            Some("") => Err("empty port after ':'".into()),
            Some(port) => Ok((host, Some(port))),
            None => Err(format!("unexpected {after:?} after the host")),
        },
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    let bad = || format!("invalid port {port:?} (expected 1-65535 or *)");
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(port) => Ok(port),
    }
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| HostPattern::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("invalid IPv6 address {host:?}"));
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Ip(IpAddr::V4(ip)));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        let suffix =
            dns_name(suffix).map_err(|why| format!("invalid wildcard host {host:?}: {why}"))?;
        return Ok(HostPattern::Subdomains(format!(".{suffix}")));
    }
    if host.contains('*') {
        return Err(format!(
            "invalid host {host:?}: a wildcard is only allowed as `*` or a leading `*.`"
        ));
    }
    dns_name(host)
        .map(HostPattern::Name)
        .map_err(|why| format!("invalid host {host:?}: {why}"))
}

/// Checks a DNS name and returns it in lower case without a trailing dot.
fn dns_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("{c:?} is not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'".into());
        }
    }
    // `127.1` or `1.2.3.4.5` would be read as addresses by some resolvers:
    // neither a name nor an IP literal Aether accepts.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not an IP address, and a host name cannot end in a numeric label".into());
    }
    Ok(name.to_ascii_lowercase())
}

/// Per-invocation counters, shared with the invocation that owns them.
#[derive(Debug, Default)]
pub struct EgressUsage {
    requests: AtomicU64,
    denied: AtomicU64,
    bytes: AtomicU64,
}

/// What one invocation's outbound HTTP came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundCounts {
    /// Requests let through to the network.
    pub requests: u64,
    /// Requests refused (allow-list, cap or address).
    pub denied: u64,
    /// Response body bytes received.
    pub bytes: u64,
}

impl EgressUsage {
    /// The three counts at once.
    pub fn counts(&self) -> OutboundCounts {
        OutboundCounts {
            requests: self.requests(),
            denied: self.denied(),
            bytes: self.bytes(),
        }
    }

    /// Requests let through to the network (allowed by the allow-list, the
    /// cap and the address check), whether or not the destination answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests refused by the allow-list, the request cap or the address
    /// check.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Response body bytes received, over all responses.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Takes one of `max` request slots, or returns false if all are taken.
    fn reserve(&self, max: u32) -> bool {
        self.requests
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < u64::from(max)).then_some(n + 1)
            })
            .is_ok()
    }

    fn deny(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }
}

/// The destination of a request: what the allow-list is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    host: TargetHost,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TargetHost {
    /// Lower case, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl Target {
    fn of(uri: &http::Uri) -> Result<Target, Error> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return Err(Error::HttpRequestUriInvalid),
        };
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
        let host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            TargetHost::Ip(IpAddr::V6(
                v6.parse().map_err(|_| Error::HttpRequestUriInvalid)?,
            ))
        } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
            TargetHost::Ip(IpAddr::V4(v4))
        } else {
            let name = host.strip_suffix('.').unwrap_or(host);
            if name.is_empty() {
                return Err(Error::HttpRequestUriInvalid);
            }
            TargetHost::Name(name.to_ascii_lowercase())
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Target { https, host, port })
    }
}

impl fmt::Display for Target {
    /// `scheme://host:port`, for logs (never the path or query, which may
    /// carry secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        match &self.host {
            TargetHost::Name(name) => write!(f, "{scheme}://{name}:{}", self.port),
            TargetHost::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            TargetHost::Ip(IpAddr::V4(ip)) => write!(f, "{scheme}://{ip}:{}", self.port),
        }
    }
}

/// Whether `ip` is anything but a public unicast address: loopback,
/// private, link-local (incl. 169.254.169.254, the cloud metadata service),
/// CGNAT, unique-local, unspecified, multicast, broadcast, reserved,
/// documentation and benchmarking ranges, and IPv6 forms embedding such an
/// IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4).
fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_non_public_v4(ip),
        IpAddr::V6(ip) => is_non_public_v6(ip),
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", incl. 0.0.0.0
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_non_public_v4(v4);
    }
    // ::/96: unspecified, loopback and the deprecated IPv4-compatible form.
    if s[..6] == [0; 6] {
        return true;
    }
    // NAT64 64:ff9b::/96 reaches the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_non_public_v4(embedded_v4(s[6], s[7]));
    }
    // 6to4 2002::/16 embeds an IPv4 address in bits 16..48.
    if s[0] == 0x2002 && is_non_public_v4(embedded_v4(s[1], s[2])) {
        return true;
    }
    (s[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast ff00::/8
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
}

/// The `wasi:http` hooks of one invocation: the allow-list and its caps,
/// counted in the invocation's [`EgressUsage`].
pub(crate) struct Egress {
    policy: Arc<EgressPolicy>,
    usage: Arc<EgressUsage>,
}

impl Egress {
    /// Hooks enforcing `policy`, counting into `usage` (one per invocation:
    /// the caps are per invocation).
    pub(crate) fn new(policy: Arc<EgressPolicy>, usage: Arc<EgressUsage>) -> Self {
        Egress { policy, usage }
    }
}

/// The boxed future [`WasiHttpHooks::send_request`] returns.
type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Egress {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| DEFAULT_FORBIDDEN_HEADERS.contains(name))
    }

    fn default_scheme(&mut self) -> Option<Scheme> {
        Some(Scheme::HTTPS)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let policy = Arc::clone(&self.policy);
        let usage = Arc::clone(&self.usage);
        Box::new(async move {
            let (response, io) = send(&policy, &usage, request, options).await?;
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }

    // The defaults log these at `warn`: guests cause them at will, so
    // `debug` here, with the same error codes.

    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        tracing::debug!("outbound HTTP error: {err}");
        ErrorCode::HttpProtocolError
    }

    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::debug!("outbound connect error: {err}");
        ErrorCode::ConnectionRefused
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::debug!("outbound TLS error: {err}");
        ErrorCode::TlsProtocolError
    }

    fn p2_error_from_dns(&mut self, err: &rustls::pki_types::InvalidDnsNameError) -> ErrorCode {
        tracing::debug!("outbound request to an invalid DNS name: {err}");
        ErrorCode::DnsError(DnsErrorPayload {
            rcode: Some("invalid dns name".to_string()),
            info_code: None,
        })
    }
}

trait TokioStream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> TokioStream for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

/// Checks `req` against the policy and sends it. Follows
/// `wasmtime_wasi_http::default_send_request` (see the module docs).
async fn send(
    policy: &EgressPolicy,
    usage: &Arc<EgressUsage>,
    mut req: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<WasiBody>,
        impl Future<Output = Result<(), Error>> + Send + use<>,
    ),
    Error,
> {
    let target = Target::of(req.uri())?;
    let Some(permit) = policy.permit(&target) else {
        usage.deny();
        tracing::debug!(%target, "outbound request denied: not in the allow-list");
        return Err(Error::HttpRequestDenied);
    };
    if !usage.reserve(policy.max_requests) {
        usage.deny();
        tracing::debug!(
            %target,
            max = policy.max_requests,
            "outbound request denied: request cap reached"
        );
        return Err(Error::ConnectionLimitReached);
    }

    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT);
    let between_bytes_timeout = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(DEFAULT_BETWEEN_BYTES_TIMEOUT);
    let deadline = Instant::now() + connect_timeout;

    let addrs = match resolve(&target, deadline).await {
        Ok(addrs) => addrs,
        Err(err) => {
            tracing::debug!(%target, "outbound request: cannot resolve: {err}");
            return Err(err);
        }
    };
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|addr| permit.non_public_ok || !is_non_public(addr.ip()))
        .collect();
    if allowed.is_empty() {
        usage.requests.fetch_sub(1, Ordering::Relaxed);
        usage.deny();
        tracing::debug!(
            %target,
            ?addrs,
            "outbound request denied: non-public address through a wildcard or DNS name"
        );
        return Err(Error::DestinationIpProhibited);
    }

    let tcp = connect(&allowed, deadline).await?;
    let stream: Box<dyn TokioStream> = if target.https {
        let server_name = match &target.host {
            TargetHost::Ip(ip) => rustls::pki_types::ServerName::from(*ip),
            TargetHost::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())?,
        };
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        match tokio::time::timeout_at(deadline, connector.connect(server_name, tcp)).await {
            Ok(stream) => Box::new(stream.map_err(Error::Tls)?),
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout_at(
        deadline,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The URI still has the scheme and authority, which belong on the
    // request line only when talking to a proxy: keep the path and query.
    *req.uri_mut() = http::Uri::builder()
        .path_and_query(
            req.uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let send = async move {
        tokio::time::timeout(first_byte_timeout, sender.send_request(req))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    // Wait for the response head while driving the connection's I/O.
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(fut) = conn.as_mut() else {
                return Poll::Pending;
            };
            let result = ready!(Pin::new(fut).poll(cx));
            conn = None;
            match result {
                Ok(()) => send.as_mut().poll(cx),
                Err(err) => Poll::Ready(Err(Error::from(err))),
            }
        }
    })
    .await?;

    // Tokio panics on an interval of zero: 1 ns is as good as zero.
    let between_bytes_timeout = between_bytes_timeout.max(Duration::from_nanos(1));
    let mut timeout = tokio::time::interval(between_bytes_timeout);
    timeout.reset();
    let usage = Arc::clone(usage);
    let limit = policy.max_response_bytes;
    let response = response.map(|incoming| {
        ResponseBody {
            incoming,
            timeout,
            usage,
            limit,
            done: false,
        }
        .boxed_unsync()
    });
    Ok((response, async move {
        let Some(conn) = conn else {
            return Ok(());
        };
        conn.await.map_err(|err| {
            if err.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(err)
            }
        })
    }))
}

/// The addresses to try for `target`: the literal itself, or what the name
/// resolves to, within the connect deadline.
async fn resolve(target: &Target, deadline: Instant) -> Result<Vec<SocketAddr>, Error> {
    match &target.host {
        TargetHost::Ip(ip) => Ok(vec![SocketAddr::new(*ip, target.port)]),
        TargetHost::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            let addrs: Vec<SocketAddr> = match tokio::time::timeout_at(deadline, lookup).await {
                Err(_) => return Err(Error::DnsTimeout),
                Ok(Err(err)) => {
                    return Err(Error::DnsError {
                        rcode: Some(err.to_string()),
                        info_code: None,
                    });
                }
                Ok(Ok(addrs)) => addrs.collect(),
            };
            if addrs.is_empty() {
                return Err(Error::DnsError {
                    rcode: Some("address not available".into()),
                    info_code: None,
                });
            }
            Ok(addrs)
        }
    }
}

/// Connects to the first of `addrs` that accepts before `deadline`.
async fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            Error::ConnectionRefused
        }
        Some(err) => Error::Connect(err),
        None => Error::ConnectionRefused,
    })
}

/// rustls with ring and the webpki roots, HTTP/1.1 only; built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }))
}

/// A response body with the between-bytes timeout and the invocation's
/// byte cap.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
    usage: Arc<EgressUsage>,
    limit: u64,
    /// Ended by an error of ours: yields nothing more.
    done: bool,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(if err.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(err)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                this.timeout.reset();
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    let total = this
                        .usage
                        .bytes
                        .fetch_add(len, Ordering::Relaxed)
                        .saturating_add(len);
                    if total > this.limit {
                        this.done = true;
                        tracing::debug!(
                            limit = this.limit,
                            "outbound response body cut: byte cap reached"
                        );
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                            this.limit,
                        )))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(this.timeout.poll_tick(cx));
                this.done = true;
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use http_body_util::{Empty, Full};
    use tokio::net::TcpListener;

    fn policy(entries: &[&str]) -> EgressPolicy {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        EgressPolicy::new(&entries).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_error(entry: &str) -> String {
        match EgressPolicy::new(&[entry.to_string()]) {
            Ok(p) => panic!("{entry:?} parsed: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn target(url: &str) -> Target {
        Target::of(&url.parse().unwrap()).unwrap()
    }

    fn allows(policy: &EgressPolicy, url: &str) -> bool {
        policy.permit(&target(url)).is_some()
    }

    #[test]
    fn egress_parses_good_entries() {
        let cases: &[(&str, SchemePattern, HostPattern, PortPattern)] = &[
            (
                "https://api.example.com",
                SchemePattern::Https,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Default,
            ),
            (
                "HTTP://API.Example.COM.:8080",
                SchemePattern::Http,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Exact(8080),
            ),
            (
                "*://*.example.com:*",
                SchemePattern::Any,
                HostPattern::Subdomains(".example.com".into()),
                PortPattern::Any,
            ),
            (
                "http://*:*",
                SchemePattern::Http,
                HostPattern::Any,
                PortPattern::Any,
            ),
            (
                "http://127.0.0.1:3000",
                SchemePattern::Http,
                HostPattern::Ip("127.0.0.1".parse().unwrap()),
                PortPattern::Exact(3000),
            ),
            (
                "https://[fd00::1]",
                SchemePattern::Https,
                HostPattern::Ip("fd00::1".parse().unwrap()),
                PortPattern::Default,
            ),
            (
                "https://[::1]:65535",
                SchemePattern::Https,
                HostPattern::Ip("::1".parse().unwrap()),
                PortPattern::Exact(65535),
            ),
            (
                "http://localhost",
                SchemePattern::Http,
                HostPattern::Name("localhost".into()),
                PortPattern::Default,
            ),
        ];
        for (raw, scheme, host, port) in cases {
            let entry = Entry::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(entry.scheme, *scheme, "{raw}");
            assert_eq!(entry.host, *host, "{raw}");
            assert_eq!(entry.port, *port, "{raw}");
        }
        let all: Vec<&str> = cases.iter().map(|c| c.0).collect();
        let p = policy(&all);
        assert!(!p.is_empty());
        assert_eq!(p.max_requests(), DEFAULT_MAX_OUTBOUND_REQUESTS);
        assert_eq!(p.max_response_bytes(), DEFAULT_MAX_OUTBOUND_BYTES);
        let p = p.with_caps(3, 100);
        assert_eq!((p.max_requests(), p.max_response_bytes()), (3, 100));
        assert!(EgressPolicy::deny_all().is_empty());
        assert!(EgressPolicy::default().is_empty());
        assert!(policy(&[]).is_empty());
    }

    #[test]
    fn egress_rejects_bad_entries_naming_them() {
        let cases = [
            ("", "empty entry"),
            ("example.com", "expected scheme://host[:port]"),
            ("://example.com", "missing scheme"),
            ("ftp://example.com", "unsupported scheme \"ftp\""),
            ("https://", "missing host"),
            ("https://:443", "missing host"),
            ("https://example.com/", "a path is not allowed"),
            ("https://example.com/api", "a path is not allowed"),
            ("https://example.com?x=1", "a query is not allowed"),
            ("https://example.com#top", "a fragment is not allowed"),
            ("https://user:pw@example.com", "user info is not allowed"),
            ("https://example.com:", "empty port"),
            ("https://example.com:0", "invalid port \"0\""),
            ("https://example.com:65536", "invalid port \"65536\""),
            ("https://example.com:+80", "invalid port \"+80\""),
            ("https://example.com:http", "invalid port \"http\""),
            ("https://example.com:80:81", "invalid port \"80:81\""),
            ("https://::1", "must be in brackets"),
            ("https://fd00::1:443", "must be in brackets"),
            ("https://[::1", "unclosed '['"),
            ("https://[not-v6]", "invalid IPv6 address"),
            ("https://[::1]x", "unexpected \"x\" after the host"),
            ("https://*.", "invalid wildcard host"),
            ("https://**.example.com", "a wildcard is only allowed"),
            ("https://api.*.com", "a wildcard is only allowed"),
            ("https://exa mple.com", "' ' is not allowed"),
            ("https://a..b", "empty label"),
            ("https://-a.com", "starts or ends with '-'"),
            ("https://127.1", "numeric label"),
            ("https://256.1.1.1", "numeric label"),
        ];
        for (entry, why) in cases {
            let message = parse_error(entry);
            assert!(
                message.starts_with(&format!("invalid outbound host {entry:?}: ")),
                "{entry:?}: {message}"
            );
            assert!(message.contains(why), "{entry:?}: {message}");
        }
        // One bad entry spoils the list, and is the one named.
        let entries = ["https://ok.example.com".to_string(), "nope".to_string()];
        let err = EgressPolicy::new(&entries).unwrap_err();
        assert_eq!(
            err,
            EgressError::InvalidEntry {
                entry: "nope".into(),
                reason: "expected scheme://host[:port]".into()
            }
        );
    }

    #[test]
    fn egress_matches_schemes_hosts_and_ports() {
        let p = policy(&["https://api.example.com"]);
        assert!(allows(&p, "https://api.example.com/v1?x=1"));
        assert!(allows(&p, "https://API.example.com./"));
        assert!(allows(&p, "https://api.example.com:443/"));
        assert!(!allows(&p, "https://api.example.com:8443/"));
        assert!(!allows(&p, "http://api.example.com/"));
        assert!(!allows(&p, "https://example.com/"));
        assert!(!allows(&p, "https://x.api.example.com/"));
        assert!(!allows(&p, "https://api.example.com.evil.net/"));

        let p = policy(&["*://*.example.com"]);
        assert!(allows(&p, "https://a.example.com/"));
        assert!(allows(&p, "http://a.b.example.com/"));
        assert!(
            !allows(&p, "http://a.example.com:443/"),
            "default is per scheme"
        );
        assert!(
            !allows(&p, "https://a.example.com:80/"),
            "default is per scheme"
        );
        assert!(!allows(&p, "https://example.com/"), "not the apex");
        assert!(!allows(&p, "https://badexample.com/"));

        let p = policy(&["http://*:8080"]);
        assert!(allows(&p, "http://anything.test:8080/"));
        assert!(allows(&p, "http://10.1.2.3:8080/"));
        assert!(allows(&p, "http://[2001:db8::1]:8080/"));
        assert!(!allows(&p, "http://anything.test/"));
        assert!(!allows(&p, "https://anything.test:8080/"));

        let p = policy(&["https://example.com:*", "http://[::1]:81"]);
        assert!(allows(&p, "https://example.com:1/"));
        assert!(allows(&p, "https://example.com/"));
        assert!(allows(&p, "http://[::1]:81/"));
        assert!(!allows(&p, "http://[::2]:81/"));
        assert!(!allows(&p, "http://localhost:81/"));

        assert!(!allows(&EgressPolicy::deny_all(), "https://example.com/"));

        // Only an IP literal or `localhost` may reach non-public addresses.
        let non_public_ok = |entries: &[&str], url: &str| {
            policy(entries)
                .permit(&target(url))
                .map(|permit| permit.non_public_ok)
        };
        assert_eq!(
            non_public_ok(&["http://*:*"], "http://127.0.0.1/"),
            Some(false)
        );
        assert_eq!(
            non_public_ok(&["http://*:*", "http://127.0.0.1"], "http://127.0.0.1/"),
            Some(true)
        );
        assert_eq!(
            non_public_ok(&["http://localhost:*"], "http://localhost:9/"),
            Some(true)
        );
        assert_eq!(
            non_public_ok(&["http://*.localhost:*"], "http://a.localhost:9/"),
            Some(false)
        );
        assert_eq!(
            non_public_ok(&["https://db.internal"], "https://db.internal/"),
            Some(false)
        );
    }

    #[test]
    fn egress_refuses_non_public_addresses() {
        let non_public = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
        ];
        for ip in non_public {
            assert!(is_non_public(ip.parse().unwrap()), "{ip} passed");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.0.1.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
        ];
        for ip in public {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip} refused");
        }
    }

    /// A loopback HTTP/1 server answering `GET /bytes/N` with N bytes and
    /// `GET /hang` never; counts the requests it answers.
    struct Server {
        port: u16,
        hits: Arc<AtomicUsize>,
    }

    async fn server() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = Arc::clone(&counter);
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let counter = Arc::clone(&counter);
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let path = req.uri().path().to_string();
                        if path == "/hang" {
                            std::future::pending::<()>().await;
                        }
                        let n: usize = path
                            .strip_prefix("/bytes/")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(vec![
                            b'x';
                            n
                        ]))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Server { port, hits }
    }

    fn request(url: &str) -> http::Request<WasiBody> {
        let uri: http::Uri = url.parse().unwrap();
        http::Request::builder()
            .header(http::header::HOST, uri.authority().unwrap().as_str())
            .uri(uri)
            .body(
                Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    /// Sends `url` through `egress` as `wasi:http` would, and reads the
    /// whole response body.
    async fn fetch(
        egress: &mut Egress,
        url: &str,
        options: Option<RequestOptions>,
    ) -> Result<(http::StatusCode, Bytes), Error> {
        let future = egress.send_request(request(url), options, Box::new(async { Ok(()) }));
        let (response, io) = Pin::from(future).await?;
        tokio::spawn(Pin::from(io));
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    fn hooks(policy: EgressPolicy) -> (Egress, Arc<EgressUsage>) {
        let usage = Arc::new(EgressUsage::default());
        (Egress::new(Arc::new(policy), Arc::clone(&usage)), usage)
    }

    #[tokio::test]
    async fn egress_allowed_literal_succeeds_and_counts_bytes() {
        let server = server().await;
        let port = server.port;
        let (mut egress, usage) = hooks(policy(&[&format!("http://127.0.0.1:{port}")]));
        let (status, body) = fetch(
            &mut egress,
            &format!("http://127.0.0.1:{port}/bytes/1234"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(body.len(), 1234);
        assert_eq!(
            (usage.requests(), usage.denied(), usage.bytes()),
            (1, 0, 1234)
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);

        // `localhost` named exactly is literal too.
        let (mut egress, usage) = hooks(policy(&[&format!("http://localhost:{port}")]));
        let (_, body) = fetch(
            &mut egress,
            &format!("http://localhost:{port}/bytes/7"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(body.len(), 7);
        assert_eq!((usage.requests(), usage.bytes()), (1, 7));

        assert_eq!(egress.default_scheme(), Some(Scheme::HTTPS));
        assert!(egress.is_forbidden_header(&http::header::HOST));
        assert!(egress.is_forbidden_header(&http::header::CONNECTION));
        assert!(!egress.is_forbidden_header(&http::header::AUTHORIZATION));
    }

    #[tokio::test]
    async fn egress_denies_unlisted_requests() {
        let server = server().await;
        let port = server.port;
        let (mut egress, usage) = hooks(policy(&[&format!("http://127.0.0.1:{port}")]));
        for url in [
            format!("https://127.0.0.1:{port}/"),
            format!("http://127.0.0.1:{}/", port ^ 1),
            format!("http://127.0.0.2:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            let err = fetch(&mut egress, &url, None).await.unwrap_err();
            assert!(matches!(err, Error::HttpRequestDenied), "{url}: {err}");
        }
        let (mut deny_all, deny_all_usage) = hooks(EgressPolicy::deny_all());
        let err = fetch(&mut deny_all, &format!("http://127.0.0.1:{port}/"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::HttpRequestDenied), "{err}");
        assert_eq!((usage.requests(), usage.denied()), (0, 4));
        assert_eq!((deny_all_usage.requests(), deny_all_usage.denied()), (0, 1));
        assert_eq!(server.hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn egress_refuses_loopback_through_a_wildcard() {
        let server = server().await;
        let port = server.port;
        for entries in [
            vec![format!("http://*:{port}")],
            vec![format!("*://*:*")],
            vec![format!("http://example.com:{port}")],
        ] {
            let (mut egress, usage) = hooks(EgressPolicy::new(&entries).unwrap());
            for url in [
                format!("http://localhost:{port}/bytes/1"),
                format!("http://127.0.0.1:{port}/bytes/1"),
                format!("http://[::ffff:127.0.0.1]:{port}/bytes/1"),
            ] {
                if !allows(egress.policy.as_ref(), &url) {
                    continue;
                }
                let err = fetch(&mut egress, &url, None).await.unwrap_err();
                assert!(
                    matches!(err, Error::DestinationIpProhibited),
                    "{entries:?} {url}: {err}"
                );
            }
            assert_eq!(usage.requests(), 0, "{entries:?}");
        }
        // Spelled out for the case the issue names.
        let (mut egress, usage) = hooks(policy(&[&format!("http://*:{port}")]));
        let err = fetch(&mut egress, &format!("http://localhost:{port}/"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DestinationIpProhibited), "{err}");
        assert_eq!((usage.requests(), usage.denied()), (0, 1));
        assert_eq!(server.hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn egress_caps_requests_per_invocation() {
        let server = server().await;
        let port = server.port;
        let (mut egress, usage) =
            hooks(policy(&[&format!("http://127.0.0.1:{port}")]).with_caps(2, 1 << 20));
        let url = format!("http://127.0.0.1:{port}/bytes/10");
        fetch(&mut egress, &url, None).await.unwrap();
        fetch(&mut egress, &url, None).await.unwrap();
        let err = fetch(&mut egress, &url, None).await.unwrap_err();
        assert!(matches!(err, Error::ConnectionLimitReached), "{err}");
        assert_eq!(
            (usage.requests(), usage.denied(), usage.bytes()),
            (2, 1, 20)
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn egress_caps_response_bytes_per_invocation() {
        let server = server().await;
        let port = server.port;
        let (mut egress, usage) =
            hooks(policy(&[&format!("http://127.0.0.1:{port}")]).with_caps(16, 1000));
        let (_, body) = fetch(
            &mut egress,
            &format!("http://127.0.0.1:{port}/bytes/600"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(body.len(), 600);
        // 600 + 600 is over 1000: the second body ends with the cap.
        let err = fetch(
            &mut egress,
            &format!("http://127.0.0.1:{port}/bytes/600"),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::HttpResponseBodySize(Some(1000))),
            "{err}"
        );
        assert_eq!(usage.requests(), 2);
        assert!(usage.bytes() > 1000, "{}", usage.bytes());

        // One response alone over the cap.
        let (mut egress, _) =
            hooks(policy(&[&format!("http://127.0.0.1:{port}")]).with_caps(16, 100));
        let err = fetch(
            &mut egress,
            &format!("http://127.0.0.1:{port}/bytes/101"),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::HttpResponseBodySize(Some(100))),
            "{err}"
        );
        // Exactly at the cap is fine.
        let (mut egress, usage) =
            hooks(policy(&[&format!("http://127.0.0.1:{port}")]).with_caps(16, 100));
        let (_, body) = fetch(
            &mut egress,
            &format!("http://127.0.0.1:{port}/bytes/100"),
            None,
        )
        .await
        .unwrap();
        assert_eq!((body.len(), usage.bytes()), (100, 100));
    }

    #[tokio::test]
    async fn egress_first_byte_timeout_from_request_options() {
        let server = server().await;
        let port = server.port;
        let (mut egress, _) = hooks(policy(&[&format!("http://127.0.0.1:{port}")]));
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(100)),
            ..RequestOptions::default()
        };
        let started = std::time::Instant::now();
        let err = fetch(
            &mut egress,
            &format!("http://127.0.0.1:{port}/hang"),
            Some(options),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::ConnectionReadTimeout), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn egress_connection_refused_is_reported() {
        // Bind, note the port, close: nothing listens there any more.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let (mut egress, usage) = hooks(policy(&[&format!("http://127.0.0.1:{port}")]));
        let err = fetch(&mut egress, &format!("http://127.0.0.1:{port}/"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectionRefused), "{err}");
        assert_eq!(usage.requests(), 1);
    }
}
