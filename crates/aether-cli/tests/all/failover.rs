//! Several control-plane URLs (`--control-url a,b`): a request the URL in
//! use does not answer (no connection, a timeout, 502/503/504) goes to the
//! next one; any other answer is the answer.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;

use aether_fixtures::free_port;

use crate::{Aether, Stack, wat_file};

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A plain HTTP server on loopback answering every request with `status`
/// and an empty body, as a load balancer does with no healthy replica
/// behind it (503) or a gateway whose backend failed (502, 504).
fn answering(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut reader = BufReader::new(conn);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            // The whole request is read before the answer, as a proxy does.
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader.get_mut().write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    url
}

/// `aether deploy FILE --json` through `urls`.
fn deploy(stack: &Stack, urls: &str, file: &std::path::Path) -> crate::Run {
    stack.aether().run([
        OsStr::new("--control-url"),
        urls.as_ref(),
        "deploy".as_ref(),
        file.as_os_str(),
        "--json".as_ref(),
    ])
}

#[test]
fn a_deploy_goes_to_the_next_control_plane_when_the_first_is_unreachable() {
    let stack = Stack::start();
    let dead = dead_url();
    let urls = format!("{dead},{}", stack.control_url);
    let hello = wat_file(
        stack.dir.path(),
        "hello",
        &aether_fixtures::print_wat("hello"),
    );
    let run = deploy(&stack, &urls, &hello);
    let body = run.json();
    assert_eq!(
        (body["function_id"].as_str(), body["created"].as_bool()),
        (Some("hello"), Some(true)),
        "{body}"
    );
    // One line says which control plane did not answer and which did.
    let stderr = run.stderr();
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with("warning: control plane")
            && warnings[0].contains(&format!("{dead} unreachable"))
            && warnings[0].contains(&format!("using {}", stack.control_url)),
        "{stderr}"
    );
    stack.wait_on_edge("hello");

    // A large module is streamed; the request is made anew for the next
    // URL, and the variable takes a list like the flag.
    let data = "a".repeat(1_500_000);
    let big = wat_file(
        stack.dir.path(),
        "big",
        &format!(
            r#"(module (memory (export "memory") 24) (data (i32.const 0) "{data}") (func (export "_start")))"#
        ),
    );
    let body = stack
        .aether()
        .env("AETHER_CONTROL_URL", &urls)
        .run(["deploy".as_ref(), big.as_os_str(), "--json".as_ref()])
        .json();
    assert_eq!(body["function_id"], "big", "{body}");

    let listed = stack
        .aether()
        .env("AETHER_CONTROL_URL", &urls)
        .run(["functions", "--json"])
        .json();
    let names: Vec<&str> = listed["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["big", "hello"], "{listed}");
}

#[test]
fn gateway_errors_fail_over_but_a_4xx_is_the_answer() {
    let stack = Stack::start();
    let hello = wat_file(stack.dir.path(), "gw", &aether_fixtures::print_wat("gw"));
    let urls = format!(
        "{},{},{},{}",
        answering("502 Bad Gateway"),
        answering("503 Service Unavailable"),
        answering("504 Gateway Timeout"),
        stack.control_url
    );
    let body = deploy(&stack, &urls, &hello).json();
    assert_eq!(body["function_id"], "gw", "{body}");

    // A 404 is the server's answer: not tried on the live control plane.
    let not_found = answering("404 Not Found");
    let line = Aether::new(stack.dir.path())
        .run([
            "--control-url",
            &format!("{not_found},{}", stack.control_url),
            "functions",
        ])
        .fails(1);
    assert!(
        line.contains(&not_found) && line.contains("404") && !line.contains(&stack.control_url),
        "{line}"
    );
}

#[test]
fn with_every_control_plane_down_the_error_names_each_url_tried() {
    let home = tempfile::tempdir().unwrap();
    let (first, second) = (dead_url(), dead_url());
    let unavailable = answering("503 Service Unavailable");
    let run = Aether::new(home.path()).run([
        "--control-url",
        &format!("{first},{unavailable},{second}"),
        "functions",
    ]);
    let line = run.fails(1);
    assert!(
        line.contains(&format!(
            "cannot reach the control plane at any of {first}, {unavailable}, {second}"
        )),
        "{line}"
    );
    assert!(
        line.contains(&format!("{unavailable}: answered 503")),
        "{line}"
    );
    assert!(line.contains("aether up"), "{line}");
    assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
}
