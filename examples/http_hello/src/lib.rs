//! http_hello: a `wasi:http/proxy` component, called through an edge's HTTP
//! trigger (`/fn/http_hello/...`). It answers every request with a JSON
//! echo of it:
//!
//! ```sh
//! curl -X POST 'localhost:9091/fn/http_hello/some/path?x=1' -H 'x-demo: hi' -d 'body'
//! {"method":"POST","path":"/some/path","query":"x=1","header":"hi","body":"body"}
//! ```
//!
//! `path` is what follows `/fn/http_hello` (`/` for nothing), `query` the
//! query string without `?` (empty for none), `header` the `x-demo` request
//! header (`null` when absent) and `body` the request body as UTF-8 (bytes
//! that are not UTF-8 become U+FFFD).
//!
//! Nothing here panics on what a client sends: a body that cannot be read
//! is answered 400, one over [`MAX_BODY`] 413.

use std::fmt::Write as _;
use std::io::Write as _;

use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasi::io::streams::StreamError;

wasi::http::proxy::export!(HttpHello);

/// The largest request body echoed; a longer one is answered 413.
const MAX_BODY: usize = 1 << 20;

/// How much of the body one read asks for.
const CHUNK: u64 = 64 * 1024;

struct HttpHello;

impl wasi::exports::http::incoming_handler::Guest for HttpHello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        match echo(&request) {
            Ok(json) => respond(response_out, 200, "application/json", &json),
            Err((status, message)) => respond(
                response_out,
                status,
                "text/plain; charset=utf-8",
                &format!("{message}\n"),
            ),
        }
    }
}

/// The JSON echo of `request`, or the status and message of a response
/// saying why there is none.
fn echo(request: &IncomingRequest) -> Result<String, (u16, String)> {
    let body = read_body(request)?;
    let target = request.path_with_query().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = if path.is_empty() { "/" } else { path };
    let header = request.headers().get("x-demo");

    let mut json = String::from("{\"method\":");
    push_json_string(&mut json, &method_name(&request.method()));
    json.push_str(",\"path\":");
    push_json_string(&mut json, path);
    json.push_str(",\"query\":");
    push_json_string(&mut json, query);
    json.push_str(",\"header\":");
    if header.is_empty() {
        json.push_str("null");
    } else {
        // A header sent several times: its values joined, as HTTP allows.
        let values: Vec<String> = header
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        push_json_string(&mut json, &values.join(", "));
    }
    json.push_str(",\"body\":");
    push_json_string(&mut json, &String::from_utf8_lossy(&body));
    json.push_str("}\n");
    Ok(json)
}

/// Reads the request body in chunks of [`CHUNK`], up to [`MAX_BODY`].
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, (u16, String)> {
    let unreadable = |why: &str| (400, format!("cannot read the request body: {why}"));
    let body = request
        .consume()
        .map_err(|()| unreadable("it was taken already"))?;
    let stream = body
        .stream()
        .map_err(|()| unreadable("its stream was taken already"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(CHUNK) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err((413, format!("the body is over {MAX_BODY} bytes")));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(unreadable(&e.to_debug_string()));
            }
        }
    }
    // The stream is a child of the body: it goes first. The trailers are
    // not used.
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Sends a response with `status`, a `content-type` and `body`. When the
/// response cannot be made, the host is told so (it answers 500 itself);
/// once it is sent, a failure to write the body (the client went away)
/// cannot be reported to anyone.
fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &str) {
    let made = (|| {
        let headers = Fields::new();
        headers
            .set("content-type", &[content_type.as_bytes().to_vec()])
            .map_err(|e| format!("cannot set content-type: {e:?}"))?;
        let response = OutgoingResponse::new(headers);
        response
            .set_status_code(status)
            .map_err(|()| format!("invalid status {status}"))?;
        let outgoing = response
            .body()
            .map_err(|()| "the response body was taken already".to_owned())?;
        Ok::<_, String>((response, outgoing))
    })();
    let (response, outgoing) = match made {
        Ok(made) => made,
        Err(why) => {
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(why))));
            return;
        }
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        // `Write` for an output stream writes as much as the host accepts
        // at a time (blocking-write-and-flush takes at most 4 KiB).
        let _ = stream.write_all(body.as_bytes());
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// `GET`, `POST`, ... as sent.
fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
    .to_owned()
}

/// Appends `text` as a JSON string literal.
fn push_json_string(json: &mut String, text: &str) {
    json.push('"');
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(json, "\\u{:04x}", u32::from(c));
            }
            c => json.push(c),
        }
    }
    json.push('"');
}
