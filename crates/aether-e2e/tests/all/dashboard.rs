//! The control plane's dashboard (`/ui`) in a real browser: headless
//! Chromium driven through chromedriver (WebDriver, `fantoccini`) against
//! an in-process control plane with tokens and its edge.
//!
//! One scenario walks the pages as an operator would: sign in, watch a
//! deploy appear, watch invocations move, roll back from the page, see a
//! lagging edge, and read hostile event fields as plain text. Screenshots
//! of each page go to `target/dashboard-screenshots/`; with
//! `AETHER_UPDATE_SCREENSHOT=1` the overview's also replaces
//! `docs/dashboard-overview.png`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aether_e2e::{ADMIN_TOKEN, NODE_TOKEN, TestControl, TestStack, client, command, echo_wasm};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest wait for one thing to show on the page (pages refresh every
/// 5 s, edges report every 500 ms here; generous for a loaded CI machine).
const UI_WAIT: Duration = Duration::from_secs(30);
/// The policy the dashboard's files must carry.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// What a hostile edge (or a function's stderr) puts in an event.
const HOSTILE_MESSAGE: &str = "<img src=x onerror=alert(1)> message";
const HOSTILE_STDERR: &str =
    "<script>document.title='pwned';alert(2)</script><img src=x onerror=\"window.pwned=1\">";

/// chromedriver in its own process group, killed with the browsers it
/// started when dropped (a failed test leaves nothing running).
struct Driver {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)); Chromium
        // and its helpers are in it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session on a fresh profile; `None` (after
/// [`aether_fixtures::skip_or_fail`]) when Chromium or chromedriver is
/// missing.
async fn browser() -> Option<(Driver, Client)> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            aether_fixtures::skip_or_fail(&format!(
                "{tool} is missing (Debian: apt-get install chromium chromium-driver)"
            ));
            return None;
        }
    }
    let profile = TempDir::new().expect("temp dir");
    let port = aether_e2e::free_port();
    let child = {
        use std::os::unix::process::CommandExt as _;
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts")
    };
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let started = Instant::now();
    loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                // A hung page fails the test in seconds, not WebDriver's
                // default 300 s.
                client
                    .update_timeouts(TimeoutConfiguration::new(
                        Some(Duration::from_secs(10)),
                        Some(Duration::from_secs(30)),
                        None,
                    ))
                    .await
                    .expect("timeouts set");
                return Some((driver, client));
            }
            // chromedriver is not listening yet.
            Err(_) if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session from {CHROMEDRIVER}: {e}"),
        }
    }
}

/// Runs `script` (a function body; `arguments` are `args`) in the page.
async fn js(browser: &Client, script: &str, args: Vec<Value>) -> Value {
    browser
        .execute(script, args)
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Text of the first element matching `css` (`None`: no such element).
async fn text_of(browser: &Client, css: &str) -> Option<String> {
    js(
        browser,
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        vec![json!(css)],
    )
    .await
    .as_str()
    .map(str::to_owned)
}

/// Polls the page until `script` returns `expected` ([`until`]).
async fn until_js(browser: &Client, what: &str, script: &str, expected: Value) -> Duration {
    until(browser, what, || async {
        js(browser, script, vec![]).await == expected
    })
    .await
}

/// Polls the page until `check` holds; panics after [`UI_WAIT`] with
/// what was awaited and the page's text.
async fn until<F, Fut>(browser: &Client, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < UI_WAIT {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = text_of(browser, "body").await.unwrap_or_default();
    panic!("timed out after {UI_WAIT:?} waiting for {what}; the page reads:\n{page}");
}

/// The number in the element `css` (thousands separators dropped).
async fn number_in(browser: &Client, css: &str) -> Option<u64> {
    text_of(browser, css)
        .await?
        .replace(',', "")
        .trim()
        .parse()
        .ok()
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

async fn go(browser: &Client, control: &str, hash: &str) {
    browser
        .goto(&format!("{control}/ui{hash}"))
        .await
        .unwrap_or_else(|e| panic!("cannot open /ui{hash}: {e}"));
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Saves the page as `target/dashboard-screenshots/<page>.png`.
async fn screenshot(browser: &Client, page: &str) -> PathBuf {
    let dir = target_dir().join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = browser.screenshot().await.expect("screenshot");
    let path = dir.join(format!("{page}.png"));
    std::fs::write(&path, png).expect("screenshot written");
    path
}

/// Joins a node that is no real edge: its registrations say what it
/// holds (here, a version other than the current one).
async fn fake_edge(control: &str, node_id: &str) -> String {
    let resp = client()
        .post(format!("{control}/api/nodes/join"))
        .bearer_auth(NODE_TOKEN)
        .json(&json!({"node_id": node_id, "url": "http://127.0.0.1:9"}))
        .send()
        .await
        .expect("join answers");
    assert!(resp.status().is_success(), "join: {}", resp.status());
    let body: Value = resp.json().await.expect("join answer is JSON");
    body["credential"]
        .as_str()
        .expect("a credential")
        .to_owned()
}

async fn register(control: &str, credential: &str, node_id: &str, functions: Value) {
    let resp = client()
        .post(format!("{control}/register"))
        .bearer_auth(credential)
        .json(&json!({"node_id": node_id, "url": "http://127.0.0.1:9", "functions": functions}))
        .send()
        .await
        .expect("register answers");
    assert!(resp.status().is_success(), "register: {}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_follows_the_fleet_rolls_back_and_shows_hostile_text_as_text() {
    let Some((driver, b)) = browser().await else {
        return;
    };
    let started = Instant::now();
    let stack = TestStack::start_with(|c| c.stats_interval = Duration::from_millis(500)).await;
    let control = stack.control.url.clone();

    // 1. Sign-in: the API wants the admin token; a wrong one is refused.
    go(&b, &control, "").await;
    until_js(
        &b,
        "the sign-in form",
        "return !document.getElementById('signin').hidden;",
        json!(true),
    )
    .await;
    b.find(Locator::Css("#signin-token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    click(&b, "#signin-submit").await;
    until(&b, "the refusal", || async {
        text_of(&b, "#signin-error")
            .await
            .is_some_and(|t| t.contains("refused"))
    })
    .await;
    b.find(Locator::Css("#signin-token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    click(&b, "#signin-submit").await;
    until(&b, "one edge online on the overview", || async {
        number_in(&b, "#edges-online").await == Some(1)
    })
    .await;
    let kept = js(
        &b,
        "return [sessionStorage.getItem('aether.adminToken'), localStorage.length, document.cookie, location.href];",
        vec![],
    )
    .await;
    assert_eq!(kept[0], ADMIN_TOKEN, "the token is kept in sessionStorage");
    assert_eq!(kept[1], 0, "nothing in localStorage");
    assert_eq!(kept[2], "", "no cookie");
    assert!(
        !kept[3].as_str().unwrap().contains(ADMIN_TOKEN),
        "token in the URL"
    );
    assert_eq!(number_in(&b, "#function-count").await, Some(0));
    eprintln!("signed in at {:?}", started.elapsed());

    // 2. A deploy through the API shows on the functions page, which
    // refreshes by itself.
    click(&b, "[data-testid=nav-functions]").await;
    until(&b, "the empty functions page", || async {
        text_of(&b, "[data-testid=functions-empty]").await.is_some()
    })
    .await;
    let (status, body) = stack.control.deploy("greet", &command("greet v1")).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = stack.control.deploy("greet", &echo_wasm()).await;
    assert_eq!(status, 201, "{body}");
    let sha2 = body["sha256"].as_str().unwrap().to_owned();
    let took = until(&b, "greet v2 on the functions page", || async {
        text_of(&b, "tr[data-name=greet] [data-testid=function-version]").await == Some("v2".into())
    })
    .await;
    eprintln!("the deploy showed after {took:?}");
    let row = text_of(&b, "tr[data-name=greet]").await.unwrap();
    assert!(row.contains(&sha2[..12]), "sha256 prefix in {row:?}");
    assert!(!row.contains(&sha2[..13]), "only 12 characters of sha256");
    assert!(row.contains("command"), "kind in {row:?}");
    screenshot(&b, "functions").await;

    // 3. Invocations on the edge move the function's figures.
    stack.wait_on_edge("greet").await;
    for i in 0..12 {
        let (status, body) = stack
            .edge
            .execute(json!({"function": "greet", "stdin": format!("hello {i}")}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    click(&b, "tr[data-name=greet] a").await;
    until(&b, "the function page", || async {
        text_of(&b, "[data-testid=function-name]").await == Some("greet".into())
    })
    .await;
    let took = until(&b, "12 invocations of greet", || async {
        number_in(&b, "#fn-invocations").await == Some(12)
    })
    .await;
    eprintln!("the invocations showed after {took:?}");

    // 4. Roll back to v1 from the page, through the page's confirmation.
    until_js(&b, "v2 marked current", "const r = document.querySelector('tr[data-version=\"2\"]'); return r && r.dataset.current;", json!("true"))
    .await;
    click(&b, "#rollback-1").await;
    until_js(
        &b,
        "the confirmation",
        "return document.getElementById('confirm-dialog').open;",
        json!(true),
    )
    .await;
    let question = text_of(&b, "#confirm-text").await.unwrap();
    assert!(question.contains("version 1"), "{question}");
    click(&b, "#confirm-ok").await;
    until_js(&b, "v1 marked current", "const r = document.querySelector('tr[data-version=\"1\"]'); return r && r.dataset.current;", json!("true"))
    .await;
    let info = stack.control.get_json("/api/functions/greet").await;
    assert_eq!(info["current_version"], 1, "{info}");
    let manifest = stack.control.get_json("/api/functions/manifest").await;
    assert_eq!(manifest["functions"][0]["version"], 1, "{manifest}");
    // An edge still on v2 stands out; the real edge follows the rollback.
    let lagging = fake_edge(&control, "edge-lagging").await;
    register(&control, &lagging, "edge-lagging", json!({"greet": 2})).await;
    let edge_id = stack.edge.state.node_id().to_owned();
    until_js(
        &b,
        "edge-lagging marked lagging",
        "const r = document.querySelector('tr[data-node=\"edge-lagging\"]');
             return r && r.classList.contains('lagging') && r.textContent.includes('lagging');",
        json!(true),
    )
    .await;
    until(&b, "the real edge on v1", || async {
        text_of(
            &b,
            &format!("tr[data-node=\"{edge_id}\"] [data-testid=fn-edge-state]"),
        )
        .await
            == Some("current".into())
    })
    .await;

    // 5. A hostile event: the events page shows its fields as text, live.
    click(&b, "[data-testid=nav-events]").await;
    until(&b, "events listed", || async {
        js(
            &b,
            "return document.querySelectorAll('#events-list tr[data-testid=event-row]').length;",
            vec![],
        )
        .await
        .as_u64()
        .is_some_and(|n| n > 0)
    })
    .await;
    let credential: Value = serde_json::from_slice(
        &std::fs::read(stack.edge.data_dir.join("node_credential.json"))
            .expect("the edge saved its credential"),
    )
    .expect("credential is JSON");
    let resp = client()
        .post(format!("{control}/callback"))
        .bearer_auth(credential["credential"].as_str().unwrap())
        .json(&json!([{
            "event": "execution_failed",
            "data": {
                "function": "greet", "version": 1, "code": "trap",
                "message": HOSTILE_MESSAGE, "stderr": HOSTILE_STDERR,
                "execution_time_ms": 1.5,
                "<img src=x onerror=alert(3)>": "<b>bold</b>",
            },
        }]))
        .send()
        .await
        .expect("callback answers");
    assert_eq!(resp.status().as_u16(), 202);
    let accepted: Value = resp.json().await.unwrap();
    let id = accepted["last_id"].as_u64().expect("an event id");
    let row = format!("tr[data-id=\"{id}\"]");
    let took = until(&b, "the hostile event, without a reload", || async {
        text_of(&b, &row).await.is_some()
    })
    .await;
    eprintln!("the event showed after {took:?}");
    let data = text_of(&b, &format!("{row} [data-testid=event-data]"))
        .await
        .unwrap();
    let shown: Value = serde_json::from_str(&data).expect("the data shows as its JSON");
    assert_eq!(shown["message"], HOSTILE_MESSAGE);
    assert_eq!(shown["stderr"], HOSTILE_STDERR);
    assert_eq!(shown["<img src=x onerror=alert(3)>"], "<b>bold</b>");
    assert_no_injection(&b, "#events-list").await;
    // Filters change the query.
    b.find(Locator::Css("#filter-kind"))
        .await
        .unwrap()
        .send_keys("execution_failed")
        .await
        .unwrap();
    until_js(
        &b,
        "only execution_failed events",
        "const rows = [...document.querySelectorAll('#events-list tr[data-testid=event-row]')];
             return rows.length > 0 && rows.every(r => r.dataset.kind === 'execution_failed')
                 && location.hash.includes('kind=execution_failed');",
        json!(true),
    )
    .await;
    screenshot(&b, "events").await;

    // The function's last failures show the stderr as text in a <pre>.
    // A hash change in the page (WebDriver's navigation to the same
    // document with another fragment is the one step seen to hang).
    js(
        &b,
        "location.hash = arguments[0];",
        vec![json!("#/functions/greet")],
    )
    .await;
    until(&b, "the failure's stderr", || async {
        text_of(&b, "#fn-failures [data-testid=failure-stderr]").await
            == Some(HOSTILE_STDERR.into())
    })
    .await;
    assert_no_injection(&b, "#fn-failures").await;
    screenshot(&b, "function").await;

    // A function that fails: errors in the figures.
    let crash = wat::parse_str(r#"(module (func (export "_start") unreachable))"#).unwrap();
    let (status, body) = stack.control.deploy("crash", &crash).await;
    assert_eq!(status, 201, "{body}");
    stack.wait_on_edge("crash").await;
    for _ in 0..3 {
        let (status, body) = stack.edge.call("crash").await;
        assert_eq!(status, 500, "{body}");
    }

    // Nodes: status, versions held, invocations.
    click(&b, "[data-testid=nav-nodes]").await;
    until(&b, "the edge's invocations on the nodes page", || async {
        number_in(
            &b,
            &format!("tr[data-node=\"{edge_id}\"] [data-testid=node-invocations]"),
        )
        .await
            == Some(15)
    })
    .await;
    assert_eq!(
        text_of(
            &b,
            &format!("tr[data-node=\"{edge_id}\"] [data-testid=node-status]")
        )
        .await,
        Some("online".into())
    );
    let lagging_row = text_of(&b, "tr[data-node=\"edge-lagging\"]").await.unwrap();
    assert!(lagging_row.contains("greet v2"), "{lagging_row}");
    screenshot(&b, "nodes").await;

    // Overview, with the figures of the last hour. The fake edge
    // heartbeats once more: on a loaded machine the scenario can outlast
    // the node timeout (30 s) since its registration.
    register(&control, &lagging, "edge-lagging", json!({"greet": 2})).await;
    click(&b, "[data-testid=nav-overview]").await;
    until(&b, "the last hour's invocations and errors", || async {
        number_in(&b, "#invocations-hour").await == Some(15)
            && number_in(&b, "#errors-hour").await == Some(3)
            && number_in(&b, "#edges-online").await == Some(2)
    })
    .await;
    assert_eq!(number_in(&b, "#function-count").await, Some(2));
    let bars = js(
        &b,
        "return document.querySelectorAll('#chart-overview-counts [data-series=invocations] rect').length;",
        vec![],
    )
    .await;
    assert!(
        bars.as_u64().is_some_and(|n| n >= 1),
        "no bar drawn: {bars}"
    );
    // The overview fits in a 1280×720 window: no empty space in the picture.
    b.set_window_size(1280, 720).await.expect("window resized");
    let overview = screenshot(&b, "overview").await;
    if std::env::var("AETHER_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard-overview.png");
        std::fs::copy(&overview, &docs).expect("docs screenshot updated");
        eprintln!("updated {}", docs.display());
    }

    // Delete from a function's page, through the confirmation.
    b.set_window_size(1280, 1000).await.expect("window resized");
    js(
        &b,
        "location.hash = arguments[0];",
        vec![json!("#/functions/crash")],
    )
    .await;
    until(&b, "crash's page", || async {
        text_of(&b, "[data-testid=function-name]").await == Some("crash".into())
            && text_of(&b, "#fn-current")
                .await
                .is_some_and(|t| t.contains("v1"))
    })
    .await;
    click(&b, "#delete-function").await;
    until(&b, "the delete confirmation", || async {
        text_of(&b, "#confirm-text")
            .await
            .is_some_and(|t| t.contains("Delete crash"))
            && js(
                &b,
                "return document.getElementById('confirm-dialog').open;",
                vec![],
            )
            .await
                == json!(true)
    })
    .await;
    click(&b, "#confirm-ok").await;
    until_js(
        &b,
        "the functions page without crash",
        "return location.hash === '#/functions'
                 && document.querySelector('tr[data-name=greet]') !== null
                 && document.querySelector('tr[data-name=crash]') === null;",
        json!(true),
    )
    .await;
    let (status, _) =
        aether_e2e::admin(Method::GET, stack.control.at("/api/functions/crash"), None)
            .await
            .unwrap();
    assert_eq!(status, 404, "crash was deleted");

    // The policy is in force in the browser: an inline script added to
    // the page does not run.
    let ran = js(
        &b,
        "const s = document.createElement('script');
         s.textContent = 'window.inlineRan = true;';
         document.body.append(s);
         return window.inlineRan === true;",
        vec![],
    )
    .await;
    assert_eq!(ran, json!(false), "an inline script ran despite the CSP");

    // Sign out: the token goes, the form comes back.
    click(&b, "#signout").await;
    until_js(
        &b,
        "the sign-in form after signing out",
        "return !document.getElementById('signin').hidden && sessionStorage.length === 0;",
        json!(true),
    )
    .await;

    stack.stop().await;

    // A control plane without tokens (a loopback stack): no sign-in.
    let open = TestControl::start().await;
    go(&b, &open.url, "").await;
    until_js(
        &b,
        "the overview without signing in",
        "return document.getElementById('signin').hidden
                 && document.getElementById('signout').hidden
                 && document.getElementById('edges-online') !== null;",
        json!(true),
    )
    .await;
    assert_eq!(number_in(&b, "#function-count").await, Some(0));

    b.close().await.expect("session closes");
    drop(driver);
    open.stop().await;
    eprintln!("dashboard scenario took {:?}", started.elapsed());
}

/// Hostile text stayed text inside `scope`: no element was made of it, no
/// script ran, no alert is open.
async fn assert_no_injection(b: &Client, scope: &str) {
    let found = js(
        b,
        "return [document.querySelectorAll(arguments[0] + ' img, ' + arguments[0] + ' script, '
                 + arguments[0] + ' b').length,
                 document.title, window.pwned === undefined];",
        vec![json!(scope)],
    )
    .await;
    assert_eq!(found[0], 0, "elements injected in {scope}");
    assert_eq!(found[1], "Aether dashboard", "document.title changed");
    assert_eq!(found[2], true, "an injected handler ran");
    assert!(
        b.get_alert_text().await.is_err(),
        "an alert is open: injected script ran"
    );
}

#[tokio::test]
async fn the_dashboard_files_carry_a_strict_content_security_policy() {
    let stack = TestStack::start().await;
    for path in ["/ui", "/ui/", "/ui/app.js", "/ui/app.css"] {
        let resp = stack
            .control
            .client
            .request(Method::GET, stack.control.at(path))
            .send()
            .await
            .expect("control answers");
        assert_eq!(resp.status(), 200, "{path}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some(CSP),
            "{path}"
        );
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        let body = resp.text().await.unwrap();
        if path == "/ui/app.js" {
            // Values reach the page as text only.
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!body.contains(sink), "app.js uses {sink}");
            }
        }
        if path.starts_with("/ui/app") {
            continue;
        }
        // Nothing inline for the policy to block: the page would break.
        for inline in ["<script>", "style=", "onclick", "onload", "javascript:"] {
            assert!(!body.contains(inline), "{path} has inline {inline:?}");
        }
    }
    stack.stop().await;
}
