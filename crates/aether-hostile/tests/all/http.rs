//! Hostile HTTP functions (issue 16) through a real edge: the misbehaving
//! `wasi:http` component of `crates/aether-fixtures/guests/http_hostile`
//! (its request path picks the misbehaviour), hostile CGI output and
//! slow clients. After each hostile request the edge must answer a normal
//! one: the component's own `/alive` path over HTTP and `echo` through
//! `/execute`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aether_hostile::{Edge, TestEdge, code};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The time limit of the functions here.
const TIME_LIMIT: Duration = Duration::from_secs(1);

/// How late past [`TIME_LIMIT`] an answer may come: epoch ticks are 2 ms,
/// the rest is scheduling on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// The output limit (the response body) of the functions here.
const OUTPUT_LIMIT: usize = 256 << 10;

/// The memory limit of the functions here.
const MEMORY_LIMIT: u64 = 16 << 20;

/// One write of the guest's `/endless`.
const ENDLESS_CHUNK: usize = 64 << 10;

/// An edge with the short limits above and the hostile component
/// installed as `hostile`, compiled and answering (so timings below do not
/// include compilation).
async fn hostile_edge() -> TestEdge {
    let edge = Edge::start_with(|c| {
        c.limits.timeout = TIME_LIMIT;
        c.limits.memory_bytes = MEMORY_LIMIT;
        c.limits.max_stdout_bytes = OUTPUT_LIMIT;
    })
    .await;
    edge.install("hostile", &aether_fixtures::http_hostile_wasm());
    assert_alive(&edge).await;
    edge
}

/// A normal request to the component and one to `echo` are answered.
async fn assert_alive(edge: &TestEdge) {
    let resp = edge
        .client
        .get(format!("{}/fn/hostile/alive", edge.url))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(resp.status(), 200, "a normal HTTP request failed");
    assert_eq!(resp.text().await.unwrap(), "alive\n");
    edge.assert_serves().await;
}

/// `GET /fn/hostile{path}`: status, JSON body (`Null` when it is not JSON)
/// and how long the answer took.
async fn get(edge: &TestEdge, path: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let resp = edge
        .client
        .get(format!("{}/fn/hostile{path}", edge.url))
        .send()
        .await
        .expect("the edge answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a whole body");
    let took = started.elapsed();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        took,
    )
}

/// Reads a streamed response body until it ends or fails; the bytes read
/// and whether it failed (a broken transfer) rather than ended.
async fn drain(mut resp: reqwest::Response) -> (usize, Result<(), reqwest::Error>) {
    let mut read = 0;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) => return (read, Ok(())),
            Err(e) => return (read, Err(e)),
        }
    }
}

/// The `/metrics` sample `aether_edge_errors_total` of `function` and
/// `code`; 0 while there is none.
async fn errors_counted(edge: &TestEdge, function: &str, code: &str) -> u64 {
    sample(
        edge,
        "aether_edge_errors_total",
        &[("function", function), ("code", code)],
    )
    .await
}

/// The `/metrics` sample `name` with `labels` (0 while there is none),
/// read with the fixtures' Prometheus parser.
async fn sample(edge: &TestEdge, name: &str, labels: &[(&str, &str)]) -> u64 {
    let text = edge.get("/metrics").await.text().await.unwrap();
    let scrape = aether_fixtures::prometheus::parse(&text);
    aether_fixtures::prometheus::value_or_zero(&scrape, name, labels) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_never_answers_is_a_502_and_one_that_spins_or_sleeps_a_504_at_its_limit() {
    let edge = hostile_edge().await;

    let (status, body, took) = get(&edge, "/never").await;
    assert_eq!((status, code(&body)), (502, "bad_response"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("without setting a response"), "{message}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    eprintln!("/never: 502 bad_response in {took:?}");
    assert_alive(&edge).await;

    // Spinning in wasm, and sleeping for an hour in one host call
    // (`wasi:clocks` subscribe-duration + block), where no wasm runs for
    // the epoch check to stop.
    for path in ["/spin", "/sleep"] {
        let (status, body, took) = get(&edge, path).await;
        assert_eq!((status, code(&body)), (504, "timeout"), "{path}: {body}");
        assert!(
            took >= TIME_LIMIT - Duration::from_millis(50),
            "{path}: early, {took:?}"
        );
        assert!(took < TIME_LIMIT + MARGIN, "{path}: late, {took:?}");
        eprintln!("{path}: 504 timeout in {took:?} (limit {TIME_LIMIT:?})");
        assert_alive(&edge).await;
    }
    assert_eq!(edge.state.executor().running(), 0);
    edge.stop().await;
}

/// Waits (5 s at most) until the hostile guest's errors with `code` in
/// `/metrics` are `n`: a failure after the response head is counted when
/// the guest's task ends, a moment after the client saw the broken body.
async fn counted_soon(edge: &TestEdge, code: &str, n: u64) {
    aether_e2e::eventually(Duration::from_secs(5), code, || async move {
        errors_counted(edge, "hostile", code).await == n
    })
    .await
    .unwrap();
}

/// GETs `path` of the hostile guest, whose head must be a 200 and whose
/// body must break (never end as if complete); returns the bytes read, the
/// body's error and the time it all took.
async fn broken_stream(edge: &TestEdge, path: &str) -> (usize, reqwest::Error, Duration) {
    let started = Instant::now();
    let resp = edge
        .client
        .get(format!("{}/fn/hostile{path}", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let (read, ended) = drain(resp).await;
    let took = started.elapsed();
    let error = ended.expect_err("a cut body must not end as if complete");
    assert!(error.is_body() || error.is_decode(), "{path}: {error:?}");
    (read, error, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_response_body_is_cut_at_the_output_limit_and_counted() {
    let edge = hostile_edge().await;
    let (read, error, took) = broken_stream(&edge, "/endless").await;
    assert!(
        read <= OUTPUT_LIMIT + ENDLESS_CHUNK,
        "{read} bytes passed a limit of {OUTPUT_LIMIT}"
    );
    assert!(read >= OUTPUT_LIMIT / 2, "cut early: {read} bytes");
    assert!(took < Duration::from_secs(5), "{took:?}");
    eprintln!("/endless: {read} bytes (limit {OUTPUT_LIMIT}), then {error}, in {took:?}");
    counted_soon(&edge, "output_limit_exceeded", 1).await;
    assert_alive(&edge).await;
    edge.stop().await;
}

/// One HTTP/1.1 response read from `stream`: its head (status line and
/// headers) and its body, chunked or with a `content-length`.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte, so nothing after this response is consumed.
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read the head");
        assert_eq!(
            n,
            1,
            "closed in the head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("an ASCII head");
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length") {
        body.resize(len.parse().unwrap(), 0);
        stream.read_exact(&mut body).await.expect("the body");
    } else {
        assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).await.expect("a chunk size");
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16)
                .expect("a hex chunk size");
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.expect("a chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    (head, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_a_component_may_not_set_never_reach_the_client() {
    let edge = hostile_edge().await;
    // A raw connection, to see the response's header lines as sent.
    let mut stream = TcpStream::connect(edge.addr).await.unwrap();
    stream
        .write_all(b"GET /fn/hostile/bad-headers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("an answer within 10 s");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let names: Vec<String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    assert!(!names.iter().any(|n| n == "connection"), "{head}");
    assert!(!names.iter().any(|n| n.starts_with("x-bad")), "{head}");
    assert!(!names.iter().any(|n| n.starts_with("x spaced")), "{head}");
    // The edge's own framing: one transfer-encoding, none from the guest.
    assert_eq!(
        names.iter().filter(|n| *n == "transfer-encoding").count(),
        1,
        "{head}"
    );
    assert!(names.iter().any(|n| n == "content-type"), "{head}");
    let report: Value = serde_json::from_slice(&body).expect("a JSON report");
    for name in ["connection", "transfer-encoding", "x-bad", "x spaced"] {
        for call in ["set", "append"] {
            let result = report[name][call].as_str().unwrap_or("missing");
            assert!(
                result != "ok" && result != "missing",
                "{name} {call}: {result} ({report})"
            );
        }
    }
    // Both ways, the error says why.
    for (name, why) in [
        ("connection", "Forbidden"),
        ("transfer-encoding", "Forbidden"),
        ("x-bad", "InvalidSyntax"),
        ("x spaced", "InvalidSyntax"),
    ] {
        for call in ["set", "append"] {
            assert_eq!(
                report[name][call],
                format!("HeaderError::{why}"),
                "{name} {call}: {report}"
            );
        }
    }
    // The guest's `connection: close` did not close the connection: it
    // serves a second request.
    stream
        .write_all(b"GET /fn/hostile/alive HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("a second answer on the same connection");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"alive\n");
    assert_alive(&edge).await;
    edge.stop().await;
}

/// Sends `head`, then `piece` every `every` on the same connection until
/// the edge answers; the status line and when it came (`None`: no answer
/// within `limit`).
async fn answer_to_a_trickle(
    edge: &TestEdge,
    head: &[u8],
    piece: &'static [u8],
    every: Duration,
    limit: Duration,
) -> Option<(String, Duration)> {
    let started = Instant::now();
    let stream = TcpStream::connect(edge.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write.write_all(head).await.unwrap();
    let feeder = tokio::spawn(async move {
        if piece.is_empty() {
            // Nothing more, ever: keep the connection open.
            std::future::pending::<()>().await;
        }
        loop {
            tokio::time::sleep(every).await;
            if write.write_all(piece).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let answered = tokio::time::timeout(limit, async {
        while !got.windows(2).any(|w| w == b"\r\n") {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    feeder.abort();
    let status = String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    answered.then(|| (status, started.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_and_slow_senders_are_stopped_at_the_time_limit() {
    let edge = hostile_edge().await;
    edge.install("http_hello", &aether_fixtures::http_hello_wasm());

    // The guest reads 1 byte per 50 ms: 1000 bytes would take 50 s.
    let started = Instant::now();
    let resp = edge
        .client
        .post(format!("{}/fn/hostile/slow-read", edge.url))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    let took = started.elapsed();
    assert_eq!((status, code(&body)), (504, "timeout"), "{body}");
    assert!(
        took < TIME_LIMIT + MARGIN,
        "slow reader answered after {took:?}"
    );
    eprintln!("/slow-read of 1000 bytes: 504 timeout in {took:?}");
    assert_alive(&edge).await;

    // Clients sending their body slowly: a chunk of one byte every 250 ms
    // (chunked), and a declared length of 100 after which 1 byte comes and
    // then nothing. Both functions, the slow reader and http_hello, which
    // reads its body as it comes: all stopped at the time limit, long
    // before the edge's 30 s body read timeout.
    for function in ["hostile/slow-read", "http_hello"] {
        let cases: [(&str, String, &'static [u8]); 2] = [
            (
                "trickled chunks",
                format!(
                    "POST /fn/{function} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                ),
                b"1\r\nx\r\n",
            ),
            (
                "a stalled body",
                format!("POST /fn/{function} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx"),
                b"",
            ),
        ];
        for (what, head, piece) in cases {
            let answer = answer_to_a_trickle(
                &edge,
                head.as_bytes(),
                piece,
                Duration::from_millis(250),
                Duration::from_secs(40),
            )
            .await;
            let (status, took) =
                answer.unwrap_or_else(|| panic!("{function}, {what}: no answer in 40 s"));
            assert!(
                status.starts_with("HTTP/1.1 504"),
                "{function}, {what}: {status}"
            );
            assert!(
                took < TIME_LIMIT + MARGIN,
                "{function}, {what}: answered after {took:?}"
            );
            eprintln!("{function}, {what}: {status} in {took:?}");
            assert_alive(&edge).await;
        }
    }
    assert_eq!(edge.state.executor().running(), 0);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_while_streaming_breaks_the_body_and_before_the_response_is_a_507() {
    let edge = hostile_edge().await;
    let (read, error, took) = broken_stream(&edge, "/grow").await;
    // A line per MiB: a few lines before 16 MiB.
    assert!(read > 0 && read < 1024, "{read} bytes");
    assert!(took < TIME_LIMIT + MARGIN, "{took:?}");
    eprintln!("/grow: {read} bytes, then {error}, in {took:?}");
    // Counted although the client got a 200 head: the failure after it
    // is in aether_edge_errors_total (the guest task reports it when it
    // ends, so wait for it).
    counted_soon(&edge, "memory_limit_exceeded", 1).await;
    assert_alive(&edge).await;

    let (status, body, took) = get(&edge, "/grow-first").await;
    assert_eq!(
        (status, code(&body)),
        (507, "memory_limit_exceeded"),
        "{body}"
    );
    assert!(took < TIME_LIMIT + MARGIN, "{took:?}");
    assert_eq!(
        errors_counted(&edge, "hostile", "memory_limit_exceeded").await,
        2
    );
    eprintln!("/grow-first: 507 memory_limit_exceeded in {took:?}");
    assert_alive(&edge).await;
    edge.stop().await;
}

/// A CGI program printing `lines` header lines of 1 000 bytes
/// (`X-Filler: aaa…`) and never a blank line.
fn header_flood(lines: u32) -> String {
    let line = format!("X-Filler: {}\n", "a".repeat(1000 - 11));
    assert_eq!(line.len(), 1000);
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "{line}")
          (func (export "_start")
            (local $i i32)
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 1000))
            (loop $again
              (br_if 1 (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $again (i32.lt_u (local.get $i) (i32.const {lines}))))))"#,
        line = line.replace('\n', "\\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cgi_program_printing_megabytes_of_headers_is_a_quick_clean_502() {
    // An output limit above 10 MB: the header rule, not the output limit,
    // must catch the first; the second (20 MB) hits the output limit.
    let edge = Edge::start_with(|c| c.limits.max_stdout_bytes = 16 << 20).await;
    edge.install_wat("headers10mb", &header_flood(10_000));
    edge.install_wat("headers20mb", &header_flood(20_000));
    for (function, want) in [
        ("headers10mb", "bad_response"),
        ("headers20mb", "output_limit_exceeded"),
    ] {
        let started = Instant::now();
        let resp = edge
            .client
            .get(format!("{}/fn/{function}", edge.url))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.expect("a JSON error");
        let took = started.elapsed();
        assert_eq!((status, code(&body)), (502, want), "{function}: {body}");
        assert!(took < Duration::from_secs(3), "{function}: {took:?}");
        eprintln!("{function}: 502 {want} in {took:?}");
        if want == "bad_response" {
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("no blank line"), "{message}");
        }
        edge.assert_serves().await;
    }
    edge.stop().await;
}

/// A loopback HTTP server answering every request `200 ok` and counting
/// the connections it accepts.
async fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, accepted)
}

/// The `/metrics` sample `aether_edge_outbound_requests_total` with
/// `result`; 0 while there is none.
async fn outbound_counted(edge: &TestEdge, result: &str) -> u64 {
    sample(
        edge,
        "aether_edge_outbound_requests_total",
        &[("result", result)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_requests_reach_loopback_only_through_a_literal_allow_list_entry() {
    let (port, accepted) = counting_server().await;
    let stack = aether_e2e::TestStack::start_with(|c| c.limits.timeout = TIME_LIMIT * 5).await;
    let wasm = aether_fixtures::http_hostile_wasm();
    let deploys = [
        ("out-none", vec![]),
        ("out-wild", vec![format!("http://*:{port}")]),
        ("out-literal", vec![format!("http://127.0.0.1:{port}")]),
        ("out-any", vec!["http://*".to_owned()]),
    ];
    for (name, hosts) in &deploys {
        let resp = stack
            .control
            .deploy_json(
                json!({
                    "name": name,
                    "wasm_b64": aether_e2e::b64(&wasm),
                    "allowed_outbound_hosts": hosts,
                }),
                stack.control.admin.as_deref(),
            )
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["kind"], "http", "{name}: {body}");
    }
    for (name, _) in &deploys {
        stack.wait_on_edge(name).await;
    }
    let edge = &stack.edge;
    let call = |name: &str, url: String| {
        let request = edge
            .client
            .get(format!("{}/fn/{name}/outbound?url={url}", edge.url));
        async move {
            let started = Instant::now();
            let resp = request.send().await.expect("the edge answers");
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.expect("the guest's JSON");
            (body, started.elapsed())
        }
    };
    let loopback = format!("http://127.0.0.1:{port}/");

    let (body, _) = call("out-none", loopback.clone()).await;
    assert_eq!(body, json!({"error": "ErrorCode::HttpRequestDenied"}));
    let (body, _) = call("out-wild", loopback.clone()).await;
    assert_eq!(body, json!({"error": "ErrorCode::DestinationIpProhibited"}));
    let (body, _) = call("out-wild", format!("http://localhost:{port}/")).await;
    assert_eq!(body, json!({"error": "ErrorCode::DestinationIpProhibited"}));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused request got through"
    );
    let sent_before = outbound_counted(edge, "sent").await;

    // The cloud metadata address through `http://*`: refused before any
    // connection (nothing answers there from this machine, so a connection
    // attempt would take the 10 s connect timeout).
    let (body, took) = call("out-any", "http://169.254.169.254/latest/meta-data/".into()).await;
    assert_eq!(body, json!({"error": "ErrorCode::DestinationIpProhibited"}));
    assert!(took < Duration::from_secs(1), "{took:?}");
    eprintln!("169.254.169.254 through http://*: refused in {took:?}");
    // A guest's counts reach /metrics when it ends, which may be just
    // after its response: wait for them rather than read them once.
    aether_e2e::eventually(
        Duration::from_secs(5),
        "4 denied requests counted",
        || async { outbound_counted(edge, "denied").await >= 4 },
    )
    .await
    .unwrap();
    assert_eq!(outbound_counted(edge, "sent").await, sent_before);

    let (body, _) = call("out-literal", loopback).await;
    assert_eq!(body, json!({"ok": 200}));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    aether_e2e::eventually(
        Duration::from_secs(5),
        "the sent request counted",
        || async { outbound_counted(edge, "sent").await > sent_before },
    )
    .await
    .unwrap();
    assert_eq!(outbound_counted(edge, "sent").await, sent_before + 1);

    // The edge still serves.
    let resp = edge
        .client
        .get(format!("{}/fn/out-none/alive", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    stack.stop().await;
}
