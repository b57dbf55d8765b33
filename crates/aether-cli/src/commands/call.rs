//! `aether call NAME [PATH]`: sends an HTTP request to a function through
//! an edge's HTTP trigger (any method on `/fn/NAME/PATH`) and prints the
//! response body, as `curl` would.
//!
//! A `wasi:http` component answers the request itself; a preview-1 command
//! is run CGI style by the edge. Either way the answer is printed as it
//! came: the body on stdout (with `-i`, the status line and headers first;
//! with `--json`, one object with status, headers and body). A status
//! other than 2xx exits non-zero after that: 3 when the function answered
//! it or failed (trap, timeout, limit, a response the edge could not use),
//! 1 when the edge refused the request (no such function, body too large,
//! overloaded, ...).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _, Write as _};

use anyhow::Context as _;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::check_name;
use crate::cli::CallArgs;
use crate::client::Client;
use crate::error::{FunctionFailed, Usage};
use crate::output;

/// How much of an error answer's body is kept to read the edge's error
/// from (all of it is printed).
const KEPT_FOR_ERRORS: usize = 64 << 10;

/// What `aether call --json` prints.
#[derive(Debug, serde::Serialize)]
struct Called {
    /// The HTTP status code.
    status: u16,
    /// Response headers by name (lowercase); the values of a repeated
    /// header joined with `, `.
    headers: BTreeMap<String, String>,
    /// The body as UTF-8 (bytes that are not become U+FFFD).
    body: String,
}

/// An error body of the edge: `{"error":{"code","message"}}`. The code is
/// kept as text, so that codes this CLI does not know still read.
#[derive(Debug, serde::Deserialize)]
struct EdgeError {
    error: EdgeErrorBody,
}

#[derive(Debug, serde::Deserialize)]
struct EdgeErrorBody {
    code: String,
    message: String,
}

/// Runs `aether call`.
pub async fn run(args: CallArgs, edge: &Client, json: bool) -> anyhow::Result<()> {
    // Everything that can be checked locally is, before reading a body.
    check_name(&args.name)?;
    let target = route(&args.name, &args.path)?;
    Url::parse(&format!("{}{target}", edge.base()))
        .map_err(|e| Usage(format!("cannot make a URL of path {:?}: {e}", args.path)))?;
    let method = method(args.method.as_deref(), args.data.is_some())?;
    let headers = args
        .headers
        .iter()
        .map(|h| header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = args.data.as_deref().map(read_data).transpose()?;

    let mut request = edge.request(method, &target);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let mut response = edge.send_once(request).await?;
    let status = response.status();
    let cut_short = |e: reqwest::Error| {
        anyhow::anyhow!(
            "the answer from the edge at {} was cut short: {e}",
            edge.base()
        )
    };

    let mut kept = Vec::new();
    if json {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let body = response.bytes().await.map_err(cut_short)?;
        kept.extend_from_slice(&body[..body.len().min(KEPT_FOR_ERRORS)]);
        output::json(&Called {
            status: status.as_u16(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })?;
    } else {
        if args.include {
            let mut head = format!("{:?} {status}\n", response.version());
            for (name, value) in response.headers() {
                head.push_str(&format!(
                    "{name}: {}\n",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            head.push('\n');
            write_out(head.as_bytes())?;
        }
        // Streamed as it comes: a function may answer slowly, or a lot.
        let mut last = None;
        while let Some(chunk) = response.chunk().await.map_err(cut_short)? {
            write_out(&chunk)?;
            if !status.is_success() && kept.len() < KEPT_FOR_ERRORS {
                let room = KEPT_FOR_ERRORS - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            last = chunk.last().copied().or(last);
        }
        // Exact bytes for pipes; a final newline only for a terminal.
        if std::io::stdout().is_terminal() && last.is_some_and(|b| b != b'\n') {
            write_out(b"\n")?;
        }
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(failure(&args.name, edge.base(), status, &kept))
    }
}

/// The edge's path for `path` (and its query string) of function `name`:
/// `/fn/NAME` for `/`, else `/fn/NAME/PATH`. A path without a leading `/`
/// gets one.
fn route(name: &str, path: &str) -> Result<String, Usage> {
    if path.contains('#') {
        return Err(Usage(format!(
            "path {path:?} has a `#`: a fragment is never sent; write it %23"
        )));
    }
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut route = format!("/fn/{name}");
    match path.trim_start_matches('/') {
        "" => {}
        rest => {
            route.push('/');
            route.push_str(rest);
        }
    }
    if let Some(query) = query {
        route.push('?');
        route.push_str(query);
    }
    Ok(route)
}

/// `-X METHOD` (upper-cased), else GET, or POST when there is a body.
fn method(given: Option<&str>, has_body: bool) -> Result<Method, Usage> {
    match given {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| Usage(format!("-X {m:?} is not an HTTP method"))),
        None if has_body => Ok(Method::POST),
        None => Ok(Method::GET),
    }
}

/// `-H 'NAME: VALUE'`.
fn header(text: &str) -> Result<(HeaderName, HeaderValue), Usage> {
    let bad = |why: &str| {
        Usage(format!(
            "-H {text:?} {why}; write it as 'NAME: VALUE', e.g. -H 'x-demo: hi'"
        ))
    };
    let (name, value) = text.split_once(':').ok_or_else(|| bad("has no `:`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("has an invalid header name"))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|_| bad("has an invalid header value"))?;
    Ok((name, value))
}

/// The body of `-d`: the text itself, `@FILE`'s bytes, or with `@-`
/// standard input.
fn read_data(data: &str) -> anyhow::Result<Vec<u8>> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input (-d @-)")?;
            Ok(bytes)
        }
        Some(file) => std::fs::read(file).with_context(|| format!("cannot read {file} (-d @FILE)")),
        None => Ok(data.as_bytes().to_vec()),
    }
}

/// Writes to stdout and flushes, without holding its lock across awaits.
fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// The error for a status other than 2xx: an error of the edge when the
/// body is one (`{"error":{"code","message"}}`), else the function's own
/// answer.
fn failure(name: &str, base: &str, status: StatusCode, body: &[u8]) -> anyhow::Error {
    let Ok(EdgeError { error }) = serde_json::from_slice::<EdgeError>(body) else {
        return FunctionFailed(format!("function {name} answered {status}")).into();
    };
    let how = match error.code.as_str() {
        "trap" => "trapped",
        "timeout" => "timed out",
        "memory_limit_exceeded" => "exceeded its memory limit",
        "output_limit_exceeded" => "exceeded its output limit",
        "bad_response" => {
            return FunctionFailed(format!(
                "the edge at {base} answered {} bad_response: {}",
                status.as_u16(),
                error.message
            ))
            .into();
        }
        "function_not_found" => {
            return anyhow::anyhow!(
                "{} on the edge at {base} (see `aether functions`)",
                error.message
            );
        }
        code => {
            return anyhow::anyhow!(
                "the edge at {base} answered {} {code}: {}",
                status.as_u16(),
                error.message
            );
        }
    };
    FunctionFailed(format!("function {name} {how}: {}", error.message)).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;

    #[test]
    fn paths_go_after_the_function_name() {
        let r = |p: &str| route("f", p).unwrap();
        assert_eq!(r("/"), "/fn/f");
        assert_eq!(r(""), "/fn/f");
        assert_eq!(r("/a/b"), "/fn/f/a/b");
        assert_eq!(r("a/b"), "/fn/f/a/b");
        assert_eq!(r("/a/?x=1&y"), "/fn/f/a/?x=1&y");
        assert_eq!(r("?x=1"), "/fn/f?x=1");
        assert_eq!(r("/?x=1"), "/fn/f?x=1");
        assert!(route("f", "/a#b").is_err());
    }

    #[test]
    fn methods_headers_and_bodies() {
        assert_eq!(method(None, false).unwrap(), Method::GET);
        assert_eq!(method(None, true).unwrap(), Method::POST);
        assert_eq!(method(Some("put"), true).unwrap(), Method::PUT);
        assert_eq!(method(Some("PURGE"), false).unwrap().as_str(), "PURGE");
        assert!(method(Some("GE T"), false).is_err());

        let (name, value) = header("X-Demo:  hi there ").unwrap();
        assert_eq!(name, "x-demo");
        assert_eq!(value, "hi there");
        let (_, value) = header("x-empty:").unwrap();
        assert_eq!(value, "");
        for bad in ["x-demo", "bad name: x", ": x", "x: a\nb"] {
            assert!(header(bad).is_err(), "{bad:?}");
        }

        assert_eq!(read_data("-x y").unwrap(), b"-x y");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("body.bin");
        std::fs::write(&file, b"\0\xffbytes\n").unwrap();
        let arg = format!("@{}", file.display());
        assert_eq!(read_data(&arg).unwrap(), b"\0\xffbytes\n");
        assert!(read_data("@/no/such/file").is_err());
    }

    #[test]
    fn failures_say_who_failed() {
        let base = "http://e:9091";
        let edge = |code: &str, status: u16| {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            failure(
                "f",
                base,
                StatusCode::from_u16(status).unwrap(),
                body.as_bytes(),
            )
        };
        let e = failure("f", base, StatusCode::NOT_FOUND, b"no page here");
        assert_eq!(e.to_string(), "function f answered 404 Not Found");
        assert_eq!(exit_code(&e), 3);
        let e = edge("trap", 500);
        assert_eq!(e.to_string(), "function f trapped: m");
        assert_eq!(exit_code(&e), 3);
        let e = edge("bad_response", 502);
        assert_eq!(
            e.to_string(),
            "the edge at http://e:9091 answered 502 bad_response: m"
        );
        assert_eq!(exit_code(&e), 3);
        let e = edge("function_not_found", 404);
        assert!(e.to_string().contains("see `aether functions`"), "{e}");
        assert_eq!(exit_code(&e), 1);
        let e = edge("payload_too_large", 413);
        assert_eq!(
            e.to_string(),
            "the edge at http://e:9091 answered 413 payload_too_large: m"
        );
        assert_eq!(exit_code(&e), 1);
    }
}
