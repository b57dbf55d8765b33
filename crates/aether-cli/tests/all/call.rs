//! `aether call`: the request it sends to an edge's `/fn/NAME/PATH` and
//! what it prints of the answer. Against a small loopback HTTP/1.1 server
//! of the test's own that plays the edge (records each request, answers by
//! function name), so the CLI is tested apart from the edge's trigger.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::{ADMIN, Aether};

/// A request as the fake edge received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    /// Lowercase names; values of a repeated header joined with `, `.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// The fake edge: a thread accepting connections on 127.0.0.1, one request
/// per connection (`Connection: close`).
struct FakeEdge {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    home: tempfile::TempDir,
}

impl FakeEdge {
    fn start() -> FakeEdge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        FakeEdge {
            url,
            seen,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// `aether` pointed at this edge, with an admin token configured (which
    /// must not be sent).
    fn aether(&self) -> Aether {
        Aether::new(self.home.path())
            .env("AETHER_EDGE_URL", &self.url)
            .env("AETHER_TOKEN", ADMIN)
    }

    /// The one request received since the last call.
    fn request(&self) -> Seen {
        let mut seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen.remove(0)
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .map_or(0, |l| l.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let request = Seen {
        method,
        target,
        headers,
        body,
    };
    log.lock().unwrap().push(request.clone());

    // Answers by function: /fn/NAME...
    let name = request.target["/fn/".len()..]
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let json = "application/json";
    let (status, content_type, body): (&str, &str, Vec<u8>) = match name {
        "echo" => {
            let mut body = format!(
                "{} {}\nx-demo: {}\n",
                request.method,
                request.target,
                request.headers.get("x-demo").map_or("-", String::as_str)
            )
            .into_bytes();
            body.extend_from_slice(&request.body);
            ("200 OK", "text/plain", body)
        }
        "quiet" => ("204 No Content", "text/plain", Vec::new()),
        "missing" => ("404 Not Found", "text/plain", b"no page here\n".to_vec()),
        "nope" => (
            "404 Not Found",
            json,
            br#"{"error":{"code":"function_not_found","message":"function nope not found"}}"#
                .to_vec(),
        ),
        "trap" => (
            "500 Internal Server Error",
            json,
            br#"{"error":{"code":"trap","message":"wasm trap: unreachable","stderr":""}}"#
                .to_vec(),
        ),
        "cgi" => (
            "502 Bad Gateway",
            json,
            br#"{"error":{"code":"bad_response","message":"function cgi: its output is not a CGI response"}}"#
                .to_vec(),
        ),
        _ => ("500 Internal Server Error", "text/plain", b"?".to_vec()),
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nx-fake-edge: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
}

#[test]
fn the_request_goes_to_the_function_route_with_method_headers_and_body() {
    let edge = FakeEdge::start();
    let out = edge
        .aether()
        .run([
            "call",
            "echo",
            "/some/path?x=1",
            "-X",
            "PUT",
            "-H",
            "x-demo: hi",
            "-H",
            "Content-Type: text/plain",
            "-d",
            "body",
        ])
        .ok();
    assert_eq!(out, "PUT /fn/echo/some/path?x=1\nx-demo: hi\nbody");
    let seen = edge.request();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.target, "/fn/echo/some/path?x=1");
    assert_eq!(seen.headers["x-demo"], "hi");
    assert_eq!(seen.headers["content-type"], "text/plain");
    assert_eq!(seen.body, b"body");
    assert!(
        !seen.headers.contains_key("authorization"),
        "the admin token never goes to an edge: {:?}",
        seen.headers
    );
}

#[test]
fn get_by_default_post_with_a_body_and_the_root_path_is_the_function_itself() {
    let edge = FakeEdge::start();
    edge.aether().run(["call", "echo"]).ok();
    let seen = edge.request();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("GET", "/fn/echo")
    );
    assert!(seen.body.is_empty());

    edge.aether()
        .run(["call", "echo", "?q=a%20b", "-d", "x"])
        .ok();
    let seen = edge.request();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", "/fn/echo?q=a%20b")
    );

    edge.aether()
        .run(["call", "echo", "a/b", "-X", "delete"])
        .ok();
    let seen = edge.request();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("DELETE", "/fn/echo/a/b")
    );

    // An empty answer prints nothing.
    assert_eq!(edge.aether().run(["call", "quiet"]).ok(), "");
}

#[test]
fn bodies_come_from_files_and_stdin_as_bytes() {
    let edge = FakeEdge::start();
    let file = edge.home.path().join("body.bin");
    let bytes = b"line one\r\n\0\xff line two\n";
    std::fs::write(&file, bytes).unwrap();
    let arg = format!("@{}", file.display());
    edge.aether().run(["call", "echo", "-d", &arg]).ok();
    assert_eq!(edge.request().body, bytes);

    edge.aether()
        .stdin(&bytes[..])
        .run(["call", "echo", "/up", "-d", "@-"])
        .ok();
    let seen = edge.request();
    assert_eq!(seen.body, bytes);
    assert_eq!(seen.method, "POST");

    let line = edge
        .aether()
        .run(["call", "echo", "-d", "@/no/such/file"])
        .fails(1);
    assert!(line.contains("cannot read /no/such/file"), "{line}");
}

#[test]
fn include_prints_the_status_line_and_headers_first() {
    let edge = FakeEdge::start();
    let out = edge.aether().run(["call", "echo", "/x", "-i"]).ok();
    let (head, body) = out.split_once("\n\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
    let headers: Vec<&str> = lines.collect();
    assert!(headers.contains(&"content-type: text/plain"), "{headers:?}");
    assert!(headers.contains(&"x-fake-edge: yes"), "{headers:?}");
    assert_eq!(body, "GET /fn/echo/x\nx-demo: -\n");
}

#[test]
fn json_prints_status_headers_and_body() {
    let edge = FakeEdge::start();
    let body = edge
        .aether()
        .run(["call", "echo", "/j", "-d", "hi", "--json"])
        .json();
    assert_eq!(body["status"], 200);
    assert_eq!(body["headers"]["x-fake-edge"], "yes");
    assert_eq!(body["body"], "POST /fn/echo/j\nx-demo: -\nhi");
}

#[test]
fn a_function_answering_an_error_status_exits_3_after_its_body() {
    let edge = FakeEdge::start();
    let run = edge.aether().run(["call", "missing", "/x"]);
    assert_eq!(
        run.fails(3),
        "error: function missing answered 404 Not Found"
    );
    assert_eq!(run.stdout(), "no page here\n", "the body is printed first");

    let run = edge.aether().run(["call", "missing", "-i"]);
    run.fails(3);
    assert!(
        run.stdout().starts_with("HTTP/1.1 404 Not Found\n"),
        "{}",
        run.stdout()
    );

    let run = edge.aether().run(["call", "trap"]);
    assert_eq!(
        run.fails(3),
        "error: function trap trapped: wasm trap: unreachable"
    );
    let run = edge.aether().run(["call", "cgi"]);
    let line = run.fails(3);
    assert!(
        line.contains("answered 502 bad_response: function cgi: its output is not a CGI response"),
        "{line}"
    );
}

#[test]
fn errors_of_the_edge_exit_1_and_bad_arguments_2() {
    let edge = FakeEdge::start();
    let run = edge.aether().run(["call", "nope"]);
    let line = run.fails(1);
    assert!(
        line.contains("function nope not found on the edge at")
            && line.contains(&edge.url)
            && line.contains("aether functions"),
        "{line}"
    );

    for (args, why) in [
        (&["call", "echo", "-H", "x-demo"][..], "'NAME: VALUE'"),
        (&["call", "echo", "-X", "GE T"], "not an HTTP method"),
        (&["call", "Bad_Name"], "function name"),
        (&["call", "echo", "/a#b"], "fragment"),
    ] {
        let line = edge.aether().run(args).fails(2);
        assert!(line.contains(why), "{args:?}: {line}");
    }
    assert!(
        edge.seen.lock().unwrap().len() == 1,
        "nothing sent for usage errors"
    );

    // Nothing listening.
    let closed = format!("http://127.0.0.1:{}", aether_fixtures::free_port());
    let line = Aether::new(edge.home.path())
        .env("AETHER_EDGE_URL", &closed)
        .run(["call", "echo"])
        .fails(1);
    assert!(
        line.contains("cannot reach the edge") && line.contains("AETHER_EDGE_URL"),
        "{line}"
    );
}
