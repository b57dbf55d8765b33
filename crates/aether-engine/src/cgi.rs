//! CGI (RFC 3875) for command functions called over HTTP, as Spin's WAGI
//! executor does it: the request becomes environment variables and stdin,
//! the program's stdout is a header block, a blank line, then the body.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use bytes::Bytes;

/// Most bytes of a CGI header block. A program whose output has no blank
/// line within them is answered 502 (a program printing 10 MB of headers
/// costs one scan of this much, not 10 MB of parsing).
pub const MAX_HEADER_BLOCK: usize = 64 << 10;

/// The request as a CGI program sees it.
pub struct CgiRequest<'a> {
    /// The function's name (`SCRIPT_NAME` is `/fn/{name}`).
    pub name: &'a str,
    /// Method.
    pub method: &'a Method,
    /// Path after the function's name, from `/`.
    pub path_info: &'a str,
    /// Query string without `?` (empty when there is none).
    pub query: &'a str,
    /// HTTP version of the request.
    pub version: Version,
    /// Request headers (hop-by-hop ones already removed).
    pub headers: &'a HeaderMap,
    /// Body length.
    pub content_length: usize,
}

/// The environment of a CGI request: the meta-variables of RFC 3875 §4.1
/// and one `HTTP_*` variable per request header (§4.1.18; values of a
/// repeated header joined with ", "). `Content-Type` and `Content-Length`
/// appear only as `CONTENT_TYPE` and `CONTENT_LENGTH`.
pub fn environment(request: &CgiRequest<'_>) -> Vec<(String, String)> {
    let host = request
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let (server_name, server_port) = split_host(host);
    let mut env = vec![
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        (
            "SERVER_SOFTWARE".into(),
            format!("aether/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("SERVER_PROTOCOL".into(), format!("{:?}", request.version)),
        ("SERVER_NAME".into(), server_name),
        ("SERVER_PORT".into(), server_port),
        ("REQUEST_METHOD".into(), request.method.as_str().to_owned()),
        ("SCRIPT_NAME".into(), format!("/fn/{}", request.name)),
        ("PATH_INFO".into(), request.path_info.to_owned()),
        ("QUERY_STRING".into(), request.query.to_owned()),
        ("CONTENT_LENGTH".into(), request.content_length.to_string()),
    ];
    if let Some(ct) = request
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        env.push(("CONTENT_TYPE".into(), ct.to_owned()));
    }
    for name in request.headers.keys() {
        if name == axum::http::header::CONTENT_TYPE || name == axum::http::header::CONTENT_LENGTH {
            continue;
        }
        let values: Vec<&str> = request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            continue;
        }
        let var = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        env.push((var, values.join(", ")));
    }
    env
}

/// A parsed CGI response.
#[derive(Debug)]
pub struct CgiResponse {
    /// From `Status`, else 302 with `Location`, else 200.
    pub status: StatusCode,
    /// Every header but `Status` (hop-by-hop ones dropped).
    pub headers: HeaderMap,
    /// What follows the blank line.
    pub body: Bytes,
}

/// Parses a CGI program's stdout. Output that does not start with a header
/// block is an error, not a guess: the message says what was wrong.
pub fn parse(stdout: Bytes) -> Result<CgiResponse, String> {
    let window = &stdout[..stdout.len().min(MAX_HEADER_BLOCK)];
    let Some((head_len, sep_len)) = header_end(window) else {
        return Err(if stdout.len() > MAX_HEADER_BLOCK {
            format!(
                "its output has no blank line ending a CGI header block within the first {MAX_HEADER_BLOCK} bytes"
            )
        } else {
            "its output is not a CGI response: it must start with headers (e.g. `Content-Type: text/plain`), then a blank line, then the body".into()
        });
    };
    let head = std::str::from_utf8(&stdout[..head_len])
        .map_err(|_| "its CGI header block is not valid UTF-8".to_owned())?;
    if head.trim().is_empty() {
        return Err("its output starts with a blank line: the CGI header block (e.g. `Content-Type: text/plain`) is missing".into());
    }
    let mut headers = HeaderMap::new();
    let mut status = None;
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("its CGI header line {line:?} is not `Name: value`"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = Some(parse_status(value)?);
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("its CGI header name {name:?} is not a valid header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("its CGI header {name} has an invalid value"))?;
        if crate::hop::is_hop_by_hop(&name) {
            continue;
        }
        headers.append(name, value);
    }
    let status = status.unwrap_or(if headers.contains_key(axum::http::header::LOCATION) {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    Ok(CgiResponse {
        status,
        headers,
        body: stdout.slice(head_len + sep_len..),
    })
}

/// `SERVER_NAME` and `SERVER_PORT` from a Host header (`name`, `name:port`,
/// `[v6]:port`).
fn split_host(host: &str) -> (String, String) {
    let default = || (host.to_owned(), "80".to_owned());
    if host.starts_with('[') {
        return match host.split_once("]:") {
            Some((addr, port)) if port.parse::<u16>().is_ok() => {
                (format!("{addr}]"), port.to_owned())
            }
            _ => default(),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => (name.to_owned(), port.to_owned()),
        _ => default(),
    }
}

/// Where the header block ends: its length (without the line end of its
/// last line) and the length of what separates it from the body.
fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    if bytes.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if bytes.starts_with(b"\n") {
        return Some((0, 1));
    }
    (0..bytes.len()).find_map(|i| {
        if bytes[i] != b'\n' {
            return None;
        }
        let rest = &bytes[i + 1..];
        if rest.starts_with(b"\n") {
            Some((i, 2))
        } else if rest.starts_with(b"\r\n") {
            Some((i, 3))
        } else {
            None
        }
    })
}

fn parse_status(value: &str) -> Result<StatusCode, String> {
    let code = value.split_whitespace().next().unwrap_or("");
    code.parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| format!("its CGI `Status: {value}` is not a status code from 200 to 599"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(out: &str) -> CgiResponse {
        parse(Bytes::from(out.to_owned())).unwrap()
    }

    #[test]
    fn headers_then_a_blank_line_then_the_body() {
        let r = ok("Content-Type: text/plain\r\nX-A: 1\r\n\r\nhello\r\n\r\nworld");
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "text/plain");
        assert_eq!(r.headers["x-a"], "1");
        assert_eq!(&r.body[..], b"hello\r\n\r\nworld");
        let r = ok("Content-Type: text/plain\n\nbody\n");
        assert_eq!(&r.body[..], b"body\n");
    }

    #[test]
    fn status_and_location() {
        let r = ok("Status: 404 Not Found\nContent-Type: text/plain\n\nnope");
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(!r.headers.contains_key("status"));
        let r = ok("Location: /elsewhere\n\n");
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(r.headers["location"], "/elsewhere");
    }

    #[test]
    fn output_without_a_header_block_is_refused_with_a_reason() {
        for out in [
            "Hello world\n",
            "Hello world\n\nmore",
            "\nbody",
            "",
            "Content-Type: text/plain",
        ] {
            let e = parse(Bytes::from(out)).unwrap_err();
            assert!(e.contains("CGI"), "{out:?}: {e}");
        }
        assert!(parse(Bytes::from("Status: 99 x\n\n")).is_err());
        assert!(parse(Bytes::from("Status: abc\n\n")).is_err());
        assert!(parse(Bytes::from("Bad Name: x\n\n")).is_err());
    }

    #[test]
    fn a_header_block_past_the_limit_is_refused_without_scanning_all_output() {
        let mut out = String::from("Content-Type: text/plain\n");
        while out.len() < 10 << 20 {
            out.push_str("X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
        }
        out.push_str("\nbody");
        let e = parse(Bytes::from(out)).unwrap_err();
        assert!(e.contains("first 65536 bytes"), "{e}");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let r = ok("Content-Type: text/plain\nConnection: close\nTransfer-Encoding: chunked\n\nx");
        assert!(!r.headers.contains_key("connection"));
        assert!(!r.headers.contains_key("transfer-encoding"));
    }

    #[test]
    fn the_environment_follows_rfc_3875() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "edge.example:9091".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("x-demo", "hi".parse().unwrap());
        headers.append("accept", "a".parse().unwrap());
        headers.append("accept", "b".parse().unwrap());
        let env = environment(&CgiRequest {
            name: "f",
            method: &Method::POST,
            path_info: "/a/b",
            query: "x=1",
            version: Version::HTTP_11,
            headers: &headers,
            content_length: 5,
        });
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("REQUEST_METHOD"), Some("POST"));
        assert_eq!(get("PATH_INFO"), Some("/a/b"));
        assert_eq!(get("QUERY_STRING"), Some("x=1"));
        assert_eq!(get("SCRIPT_NAME"), Some("/fn/f"));
        assert_eq!(get("CONTENT_TYPE"), Some("application/json"));
        assert_eq!(get("CONTENT_LENGTH"), Some("5"));
        assert_eq!(get("SERVER_NAME"), Some("edge.example"));
        assert_eq!(get("SERVER_PORT"), Some("9091"));
        assert_eq!(get("SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(get("HTTP_X_DEMO"), Some("hi"));
        assert_eq!(get("HTTP_ACCEPT"), Some("a, b"));
        assert_eq!(get("HTTP_CONTENT_TYPE"), None);
        assert_eq!(split_host("[::1]:8080"), ("[::1]".into(), "8080".into()));
        assert_eq!(
            split_host("example.com"),
            ("example.com".into(), "80".into())
        );
    }
}
