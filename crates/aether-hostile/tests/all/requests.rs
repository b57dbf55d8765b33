//! Hostile HTTP clients against the real edge and control plane: bodies
//! that do not parse, lie about their size, never end; slow, garbage and
//! oversized requests; connection and request floods. (Plain malformed
//! JSON, wrong types, unknown fields and bad names are covered by the
//! servers' own tests; see docs/SECURITY.md.)

use std::time::{Duration, Instant};

use aether_hostile::{Control, Edge, TestEdge, code, fixtures, proc, raw_exchange, trickle};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_by_the_header_timeout() {
    let edge = Edge::start().await;
    let control = Control::start_with(|c| c).await;
    let head = b"POST /execute HTTP/1.1\r\nHost: x\r\n";
    let started = Instant::now();
    let (edge_held, control_held, ()) = tokio::join!(
        trickle(
            edge.addr,
            head,
            b"X-Slow: 1\r\n",
            Duration::from_millis(500),
            Duration::from_secs(45)
        ),
        trickle(
            control.addr,
            head,
            b"X-Slow: 1\r\n",
            Duration::from_millis(500),
            Duration::from_secs(45)
        ),
        async {
            // Both serve normal requests while the trickles go on.
            tokio::time::sleep(Duration::from_secs(1)).await;
            edge.assert_serves().await;
            control.assert_serves().await;
        }
    );
    for (who, held) in [("edge", edge_held), ("control", control_held)] {
        let held = held.unwrap_or_else(|| panic!("{who} kept a trickling client for 45 s"));
        let limit = aether_http::connection::HEADER_READ_TIMEOUT;
        assert!(
            held >= limit - Duration::from_secs(2),
            "{who} closed early: {held:?}"
        );
        assert!(
            held < limit + Duration::from_secs(5),
            "{who} closed late: {held:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(40));
    edge.assert_serves().await;
    control.assert_serves().await;
    edge.stop().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_by_the_body_timeout() {
    // The real routers behind the real accept loops, with a 1 s body
    // deadline instead of the default 30 s to keep the test fast.
    let edge = Edge::start().await;
    let control = Control::start_with(|c| c).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (ctx, crx) = tokio::sync::oneshot::channel::<()>();
    let edge_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (edge_addr, control_addr) = (
        edge_listener.local_addr().unwrap(),
        control_listener.local_addr().unwrap(),
    );
    let edge_server = tokio::spawn(aether_http::serve(
        edge_listener,
        aether_engine::app(edge.state.clone()),
        async {
            let _ = rx.await;
        },
        aether_http::ServeOptions::new(Duration::from_secs(1)),
    ));
    let control_server = tokio::spawn(aether_http::serve(
        control_listener,
        aether_control::app(control.state.clone()),
        async {
            let _ = crx.await;
        },
        aether_http::ServeOptions::new(Duration::from_secs(1)),
    ));
    let edge_head = b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"function\":\"echo\",\"stdin\":\"";
    let control_head = b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"event\":\"x\",\"data\":\"";
    let (edge_held, control_held) = tokio::join!(
        trickle(
            edge_addr,
            edge_head,
            b"a",
            Duration::from_millis(100),
            Duration::from_secs(15)
        ),
        trickle(
            control_addr,
            control_head,
            b"a",
            Duration::from_millis(100),
            Duration::from_secs(15)
        ),
    );
    for (who, held) in [("edge", edge_held), ("control", control_held)] {
        let held = held.unwrap_or_else(|| panic!("{who} kept a trickled body for 15 s"));
        assert!(held < Duration::from_secs(5), "{who} closed late: {held:?}");
    }
    // The timed-out request was answered with an error, not a success.
    let (answer, _) = raw_exchange(
        edge_addr,
        b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"function\":",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    tx.send(()).unwrap();
    ctx.send(()).unwrap();
    edge_server.await.unwrap().unwrap();
    control_server.await.unwrap().unwrap();
    edge.assert_serves().await;
    control.assert_serves().await;
    edge.stop().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_huge_body_is_refused_before_it_is_sent() {
    let edge = Edge::start().await;
    let control = Control::start_with(|c| c).await;
    for (addr, path) in [
        (edge.addr, "/execute"),
        (control.addr, "/api/functions"),
        (control.addr, "/callback"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
        );
        let started = Instant::now();
        let (answer, _) = raw_exchange(addr, head.as_bytes(), Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer:?}");
        assert!(answer.contains("payload_too_large"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(3), "{path}");
    }
    edge.assert_serves().await;
    control.assert_serves().await;
    edge.stop().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_refused_while_streaming() {
    let edge = Edge::start_with(|c| c.max_input = 1000).await;
    // 64 chunks of 4 KiB: far over the 66 KiB transport limit.
    let mut request = b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..64 {
        request.extend_from_slice(b"1000\r\n");
        request.extend_from_slice(&[b' '; 4096]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (answer, _) = raw_exchange(edge.addr, &request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_and_odd_json_is_refused_with_400() {
    let edge = Edge::start().await;
    let control = Control::start_with(|c| c).await;
    let deep = format!(
        r#"{{"function":"echo","input":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut odd: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        br#"{"function":"echo","input":1e999}"#.to_vec(),
        br#"{"function":"echo","function":"echo"}"#.to_vec(),
        b"{\"function\":\"ec\xff\xfeho\"}".to_vec(),
        br#"{"function":"echo","stdin":"\ud800"}"#.to_vec(),
        b"\xef\xbb\xbf{\"function\":\"echo\"}".to_vec(),
        br#"{"function":"echo"} trailing"#.to_vec(),
        b"".to_vec(),
        b"null".to_vec(),
        br#"{"function":null}"#.to_vec(),
        br#"{"function":["echo"]}"#.to_vec(),
        br#"{"function":"echo","stdin":5}"#.to_vec(),
    ];
    odd.push(format!(r#"{{"function":"{}"}}"#, "a".repeat(1 << 20)).into_bytes());
    for body in &odd {
        let (status, resp) = edge.post_raw(Some("application/json"), body.clone()).await;
        assert!(
            matches!(
                (status, code(&resp)),
                (400, "invalid_request") | (413, "payload_too_large")
            ),
            "{}: {status} {resp}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
    }
    let deep_deploy = format!(
        r#"{{"name":"f","wasm_b64":"AA==","env":{}}}"#,
        "{\"a\":".repeat(50_000)
    );
    let deep_callback = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for (path, body) in [
        ("/api/functions", deep_deploy),
        ("/callback", deep_callback),
        (
            "/register",
            "{\"node_id\":\"n\",\"url\":\"http://a:1\",\"functions\":{\"f\":1e999}}".into(),
        ),
    ] {
        let r = control
            .client
            .post(control.at(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("JSON error body");
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_request"),
            "{path}: {body}"
        );
    }
    edge.assert_serves().await;
    control.assert_serves().await;
    edge.stop().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_and_header_bombs_get_an_error_and_a_close() {
    let edge = Edge::start().await;
    let control = Control::start_with(|c| c).await;
    let many_headers: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("tls hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec()),
        ("http/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("bad method", b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("many headers", format!("GET /health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes()),
        ("huge header", format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20)).into_bytes()),
        ("huge uri", format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(1 << 20)).into_bytes()),
        ("both lengths", b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n".to_vec()),
    ];
    for (addr, who) in [(edge.addr, "edge"), (control.addr, "control")] {
        for (what, bytes) in &cases {
            let (answer, closed) = raw_exchange(addr, bytes, Duration::from_secs(12)).await;
            assert!(closed, "{who} kept the connection after {what}");
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
                "{who}, {what}: {}",
                &answer[..answer.len().min(200)]
            );
        }
    }
    edge.assert_serves().await;
    control.assert_serves().await;
    edge.stop().await;
    control.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_leave_service_and_descriptors_intact() {
    // Counts this process's descriptors: no other test may open any.
    if !proc::alone("requests::thousands_of_idle_connections_leave_service_and_descriptors_intact")
    {
        return;
    }
    let edge = Edge::start().await;
    edge.assert_serves().await;
    let before = proc::open_fds();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(
            tokio::net::TcpStream::connect(edge.addr)
                .await
                .expect("connect"),
        );
    }
    // Served while 2000 connections sit idle.
    let started = Instant::now();
    edge.assert_serves().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    // The server closes its side of every connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = proc::open_fds();
        if now <= before + 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "descriptors leaked: {before} before, {now} after"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    edge.assert_serves().await;
    edge.stop().await;
}

/// Sends `n` requests at once; returns (answered 200, shed 503, peak RSS).
async fn flood(edge: &TestEdge, n: usize) -> (usize, usize, u64) {
    let client = aether_e2e::client_with_timeout(Duration::from_secs(60));
    let payload = "x".repeat(16 << 10);
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, payload) = (client.clone(), edge.url.clone(), payload.clone());
            tokio::spawn(async move {
                let r = client
                    .post(format!("{url}/execute"))
                    .json(&json!({"function": "nap", "stdin": payload}))
                    .send()
                    .await
                    .expect("answered");
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.expect("JSON");
                (status, body)
            })
        })
        .collect();
    let (mut ok, mut shed, mut peak) = (0, 0, 0);
    for call in calls {
        let (status, body) = call.await.unwrap();
        match status {
            200 => ok += 1,
            503 => {
                assert_eq!(code(&body), "overloaded");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
        peak = peak.max(proc::rss_kb());
    }
    (ok, shed, peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_queue_is_shed_with_503_and_memory_stays_bounded() {
    // Reads this process's RSS: no other test may allocate meanwhile.
    if !proc::alone("requests::a_flood_beyond_the_queue_is_shed_with_503_and_memory_stays_bounded")
    {
        return;
    }
    let edge = Edge::start_with(|c| {
        c.max_concurrency = 2;
        c.max_queue = 32;
    })
    .await;
    edge.install_wat("nap", &fixtures::sleep(1, 100_000_000, 0, false));
    edge.call("nap").await;
    let rss_before = proc::rss_kb();
    let mut peaks = Vec::new();
    for round in 0..2 {
        let started = Instant::now();
        let (ok, shed, peak) = flood(&edge, 1500).await;
        eprintln!(
            "flood {round}: {ok} ok, {shed} shed in {:?}; rss {} -> peak {} MiB (client and server)",
            started.elapsed(),
            rss_before / 1024,
            peak / 1024
        );
        assert!(shed > 1000, "too few shed: {ok} ok, {shed} shed");
        assert!(ok >= 34, "the queue was not used: {ok} ok");
        peaks.push(peak);
    }
    // Memory follows the open connections, not the flood's history: the
    // second flood does not climb above the first, and neither comes near
    // what 1500 queued executions would take.
    assert!(
        peaks[1] < peaks[0] + 64 * 1024,
        "rss kept growing: {peaks:?} KiB"
    );
    assert!(
        peaks[0] < rss_before + 600 * 1024,
        "rss {rss_before} -> {peaks:?} KiB"
    );
    assert_eq!(edge.state.executor().waiting(), 0);
    edge.assert_serves().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_path_tricks_never_reach_the_filesystem() {
    let control = Control::start_with(|c| c).await;
    for path in [
        "/api/functions/..%2F..%2Fcontrol.db/wasm",
        "/api/functions/%2e%2e/wasm",
        "/api/functions/..%5c..%5cx",
        "/api/functions/a%00b/wasm",
        "/api/functions/%252e%252e/wasm",
        "/api/functions/a/wasm?version=-1",
        "/api/functions/a/wasm?version=99999999999999999999999",
    ] {
        let r = control.client.get(control.at(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("JSON error body");
        assert!(
            matches!(status, 400 | 404) && body["error"]["code"].is_string(),
            "{path}: {status} {body}"
        );
    }
    control.assert_serves().await;
    control.stop().await;
}
