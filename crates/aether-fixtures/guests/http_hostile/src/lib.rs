//! http_hostile: a `wasi:http/proxy` component that misbehaves on purpose,
//! for aether-hostile's HTTP tests (`aether_fixtures::http_hostile_wasm`).
//! The request path picks the misbehaviour:
//!
//! - `/never`: returns without setting a response;
//! - `/spin`: loops forever before setting one;
//! - `/sleep`: sleeps for an hour (one `wasi:clocks` pollable) before
//!   setting one;
//! - `/endless`: answers 200 and writes 64 KiB chunks until a write fails;
//! - `/bad-headers`: tries to set `connection: close`,
//!   `transfer-encoding: chunked`, `x-bad: a\nb` and a header name with a
//!   space, with `Fields::set` and with `Fields::append`, and answers 200
//!   with a JSON report of what each call returned (`"ok"` or the error);
//! - `/slow-read`: reads the request body one byte at a time, sleeping
//!   50 ms between reads, then answers the byte count;
//! - `/outbound?url=URL`: sends `GET URL` through
//!   `wasi:http/outgoing-handler`, answers 200 with `{"ok":STATUS}` or
//!   `{"error":"ERRORCODE"}` (the error code's debug string);
//! - `/grow`: answers 200, then allocates and touches 1 MiB blocks (kept)
//!   while writing a line per block, until the memory limit stops it;
//! - `/grow-first`: the same before setting a response;
//! - anything else: 200 `alive`.

use std::io::Write as _;

use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasi::io::streams::{OutputStream, StreamError};

wasi::http::proxy::export!(Hostile);

/// The size of one `/endless` chunk.
const CHUNK: usize = 64 * 1024;

/// The size of one `/grow` block.
const BLOCK: usize = 1024 * 1024;

/// The pause between two one-byte reads of `/slow-read`, in nanoseconds.
const SLOW_READ_PAUSE_NS: u64 = 50_000_000;

/// An hour, in nanoseconds.
const HOUR_NS: u64 = 3_600_000_000_000;

struct Hostile;

impl wasi::exports::http::incoming_handler::Guest for Hostile {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        match path {
            // `out` is dropped unset.
            "/never" => {}
            "/spin" => spin(),
            "/sleep" => {
                monotonic_clock::subscribe_duration(HOUR_NS).block();
                respond(out, 200, "slept\n");
            }
            "/endless" => endless(out),
            "/bad-headers" => bad_headers(out),
            "/slow-read" => slow_read(&request, out),
            "/outbound" => outbound(query, out),
            "/grow" => grow(out),
            "/grow-first" => {
                let mut kept = Vec::new();
                loop {
                    kept.push(touched_block());
                }
            }
            _ => respond(out, 200, "alive\n"),
        }
    }
}

/// Loops forever.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Sets a 200 response with `content-type: text/plain` and returns its
/// body and the body's stream.
fn start_200(out: ResponseOutparam) -> (OutgoingBody, OutputStream) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let body = response.body().expect("a new response's body");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("a new body's stream");
    (body, stream)
}

/// Answers `status` with `text`.
fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let body = response.body().expect("a new response's body");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = body.write().expect("a new body's stream");
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

/// 200, then 64 KiB chunks until a write fails (the host closed the body).
fn endless(out: ResponseOutparam) {
    let (body, mut stream) = start_200(out);
    let chunk = vec![b'x'; CHUNK];
    while stream.write_all(&chunk).is_ok() {}
    drop(stream);
    drop(body);
}

/// Tries every forbidden or malformed header both ways and reports.
fn bad_headers(out: ResponseOutparam) {
    let attempts: [(&str, &[u8]); 4] = [
        ("connection", b"close"),
        ("transfer-encoding", b"chunked"),
        ("x-bad", b"a\nb"),
        ("x spaced", b"1"),
    ];
    let headers = Fields::new();
    let mut report = String::from("{");
    for (i, (name, value)) in attempts.iter().enumerate() {
        let set = headers.set(name, &[value.to_vec()]);
        let append = headers.append(name, value);
        let show = |r: Result<(), _>| match r {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("{e:?}"),
        };
        if i > 0 {
            report.push(',');
        }
        report.push_str(&format!(
            "\"{name}\":{{\"set\":\"{}\",\"append\":\"{}\"}}",
            show(set),
            show(append)
        ));
    }
    report.push_str("}\n");
    let _ = headers.set("content-type", &[b"application/json".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let body = response.body().expect("a new response's body");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = body.write().expect("a new body's stream");
    let _ = stream.write_all(report.as_bytes());
    let _ = stream.flush();
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

/// Reads the body a byte at a time with a pause after each byte.
fn slow_read(request: &IncomingRequest, out: ResponseOutparam) {
    let Ok(body) = request.consume() else {
        return respond(out, 400, "no body\n");
    };
    let Ok(stream) = body.stream() else {
        return respond(out, 400, "no body stream\n");
    };
    let mut count = 0u64;
    loop {
        match stream.blocking_read(1) {
            Ok(bytes) => count += bytes.len() as u64,
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                drop(stream);
                return respond(out, 400, &format!("{}\n", e.to_debug_string()));
            }
        }
        monotonic_clock::subscribe_duration(SLOW_READ_PAUSE_NS).block();
    }
    drop(stream);
    drop(IncomingBody::finish(body));
    respond(out, 200, &format!("{count}\n"));
}

/// `GET url` through the outgoing handler; its status or its error code.
fn outbound(query: &str, out: ResponseOutparam) {
    let url = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("url="))
        .unwrap_or("");
    let answer = match get(url) {
        Ok(status) => format!("{{\"ok\":{status}}}\n"),
        Err(error) => format!("{{\"error\":\"{}\"}}\n", error.replace('"', "'")),
    };
    respond(out, 200, &answer);
}

/// The status of `GET url`, or why there is none.
fn get(url: &str) -> Result<u16, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not a URL: {url}"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported scheme {other}")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Get)
        .map_err(|()| "set-method".to_owned())?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "set-scheme".to_owned())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("invalid authority {authority}"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| format!("invalid path {path}"))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        Some(Err(())) => Err("the response was taken already".to_owned()),
        None => Err("no response after the pollable was ready".to_owned()),
    }
}

/// 200, then a 1 MiB block kept and a line written per iteration.
fn grow(out: ResponseOutparam) {
    let (body, mut stream) = start_200(out);
    let mut kept = Vec::new();
    loop {
        kept.push(touched_block());
        let line = format!("{} MiB\n", kept.len());
        if stream.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    drop(stream);
    drop(body);
}

/// A new 1 MiB block with every page written.
fn touched_block() -> Vec<u8> {
    let mut block = vec![0u8; BLOCK];
    for i in (0..BLOCK).step_by(4096) {
        block[i] = 1;
    }
    std::hint::black_box(block)
}
