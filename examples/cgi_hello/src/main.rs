//! cgi_hello: a WASI preview-1 command written as a CGI program (RFC 3875),
//! for an edge's HTTP trigger (`/fn/cgi_hello/...`). Plain Rust std, no
//! dependencies: the request comes in environment variables and on stdin,
//! the response goes to stdout as a header block, a blank line and the body.
//!
//! ```sh
//! curl -X POST 'localhost:9091/fn/cgi_hello/some/path?x=1' -H 'x-demo: hi' -d 'body'
//! Hello from CGI: POST /some/path?x=1
//! x-demo: hi
//! body
//! ```
//!
//! `/fn/cgi_hello/missing` is answered `404 Not Found`, to show the
//! `Status` header.

use std::io::{Read as _, Write as _};

fn main() -> std::io::Result<()> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let method = var("REQUEST_METHOD");
    let path = var("PATH_INFO");
    let query = var("QUERY_STRING");
    // Request header `X-Demo`, as CGI names headers: HTTP_ and the name in
    // capitals with `-` as `_`.
    let demo = std::env::var("HTTP_X_DEMO").ok();
    // The request body (CONTENT_LENGTH bytes) is on stdin.
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;

    let mut out = std::io::stdout().lock();
    // The header block: `Status` (200 when absent), `Content-Type`, then a
    // blank line. CGI allows `\n` alone too.
    let missing = path == "/missing";
    if missing {
        out.write_all(b"Status: 404 Not Found\r\n")?;
    }
    out.write_all(b"Content-Type: text/plain; charset=utf-8\r\n\r\n")?;

    // The body.
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    writeln!(out, "Hello from CGI: {method} {target}")?;
    if missing {
        writeln!(out, "nothing here")?;
    }
    if let Some(demo) = demo {
        writeln!(out, "x-demo: {demo}")?;
    }
    out.write_all(&body)?;
    out.flush()
}
