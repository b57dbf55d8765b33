//! `aether-bench load`: the side-by-side load benchmark behind
//! `bench/run.sh`. It starts every server it measures on free loopback
//! ports (the binaries beside this one through the `aether-e2e` harness:
//! release, or debug for `bench/run.sh --smoke`; the static
//! ceiling and `wasmtime serve` as child processes), drives them with `wrk`
//! at each concurrency, prints a table with ratios to the baselines, and
//! writes it into BENCHMARKS.md between `<!-- load:begin -->` and
//! `<!-- load:end -->` (nothing else in that file is touched). Every child
//! is killed when its guard drops, also on error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aether_e2e::{
    EdgeOptions, Process, deploy, execute, free_port, start_control, start_edge,
    start_standalone_edge_with,
};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Marker opening the section this benchmark owns in BENCHMARKS.md.
const BEGIN: &str = "<!-- load:begin -->";
/// Marker closing it.
const END: &str = "<!-- load:end -->";
/// Distinct functions of the cache-churn scenario (ten times the cache).
const CHURN_FUNCTIONS: usize = 1000;
/// The edge's in-memory module cache in the churn scenario.
const CHURN_CACHE_SIZE: usize = 100;
/// Target size of the json_transform input.
const JSON_INPUT_BYTES: usize = 10_000;
/// The input every hello world gets, and the output it must answer.
const HELLO_MSG: &str = "Hello from Aether!";

/// Command-line options of `aether-bench load`. Each option may be given
/// more than once (the last one counts), as with the hand-written parser
/// this replaced.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Options {
    /// The wrk binary that drives the load.
    #[arg(long, value_name = "PATH", default_value = "wrk")]
    wrk: String,
    /// Seconds per measured point (each server gets a 1 s warm-up first).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    duration: u64,
    /// Connection counts to measure each scenario at, comma-separated.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        default_value = "1,16,64"
    )]
    concurrency: Vec<u32>,
    /// `wasmtime` binary for the `wasmtime serve` baseline (the baseline
    /// runs only with --component too).
    #[arg(long, value_name = "PATH")]
    wasmtime: Option<PathBuf>,
    /// The wasi-http component `wasmtime serve` runs
    /// (bench/wasi-http-hello; the baseline runs only with --wasmtime too).
    #[arg(long, value_name = "WASM")]
    component: Option<PathBuf>,
    /// Also write the table into this file, between `<!-- load:begin -->`
    /// and `<!-- load:end -->` (bench/run.sh: BENCHMARKS.md).
    #[arg(long, value_name = "BENCHMARKS.md")]
    out: Option<PathBuf>,
    /// Run only these scenarios, comma-separated: static, wasmtime, hello,
    /// json, loop, control, telemetry, http, churn [default: all].
    #[arg(
        long,
        value_name = "SCENARIO,...",
        value_delimiter = ',',
        action = clap::ArgAction::Set
    )]
    only: Option<Vec<String>>,
    /// Rounds of the telemetry on/off comparison [default: 6; 2 when
    /// --duration is 1 or less (smoke)].
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// The telemetry comparison as an A/A run: both edges without
    /// telemetry, so the paired differences show the noise floor.
    #[arg(long)]
    aa: bool,
}

impl Options {
    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s == scenario))
    }
}

/// One wrk measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) errors: u64,
}

/// One line of the table.
struct Row {
    scenario: &'static str,
    concurrency: u32,
    point: Point,
}

/// A child process killed (and reaped) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a wrk connection sends.
enum Load<'a> {
    /// The same POST body every time.
    Fixed { path: &'a str, body: &'a Path },
    /// `/execute` of one of `f0000..f{n-1}`, picked uniformly.
    Churn { n: usize },
}

/// Writes the wrk Lua script for `load` and returns its path.
fn script(dir: &Path, name: &str, load: Load<'_>) -> anyhow::Result<PathBuf> {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    );
    match load {
        Load::Fixed { path, body } => {
            writeln!(lua, "wrk.path = \"{path}\"")?;
            writeln!(
                lua,
                "local f = assert(io.open([==[{}]==], \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()",
                body.display()
            )?;
        }
        Load::Churn { n } => {
            writeln!(
                lua,
                r#"wrk.path = "/execute"
local bodies = {{}}
for i = 0, {last} do bodies[i] = string.format('{{"function":"f%04d","input":{{}}}}', i) end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + id)
end
function request()
  return wrk.format(nil, nil, nil, bodies[math.random(0, {last})])
end"#,
                last = n - 1
            )?;
        }
    }
    lua.push_str(
        r#"function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("AETHER_RESULT %d %d %.1f %.1f %d\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#,
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// Runs wrk for `secs` at `concurrency` connections.
async fn wrk(
    o: &Options,
    base: &str,
    script: &Path,
    concurrency: u32,
    secs: u64,
) -> anyhow::Result<Point> {
    run_wrk(&o.wrk, base, script, concurrency, secs).await
}

/// Runs the wrk binary `wrk` for `secs` at `concurrency` connections with a
/// Lua script whose `done` prints an `AETHER_RESULT` line.
pub(crate) async fn run_wrk(
    wrk: &str,
    base: &str,
    script: &Path,
    concurrency: u32,
    secs: u64,
) -> anyhow::Result<Point> {
    let threads = concurrency.clamp(1, 2);
    let out = tokio::process::Command::new(wrk)
        .args(["-t", &threads.to_string(), "-c", &concurrency.to_string()])
        .args([
            "-d",
            &format!("{secs}s"),
            "--timeout",
            "10s",
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(base)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {wrk}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("AETHER_RESULT "))
        .with_context(|| {
            format!(
                "wrk printed no result; stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad wrk result line {line:?}"))?;
    let [requests, duration_us, p50_us, p99_us, errors] = f[..] else {
        bail!("bad wrk result line {line:?}");
    };
    Ok(Point {
        requests: requests as u64,
        rps: requests / (duration_us / 1e6),
        p50_us,
        p99_us,
        errors: errors as u64,
    })
}

/// Measures every concurrency level against one server (after a 1 s
/// warm-up) and appends the rows.
async fn measure(
    o: &Options,
    rows: &mut Vec<Row>,
    scenario: &'static str,
    base: &str,
    script: &Path,
) -> anyhow::Result<()> {
    wrk(o, base, script, 16, 1).await?;
    for &c in &o.concurrency {
        let point = wrk(o, base, script, c, o.duration).await?;
        print_row(scenario, c, &point);
        rows.push(Row {
            scenario,
            concurrency: c,
            point,
        });
    }
    Ok(())
}

fn print_row(scenario: &str, c: u32, p: &Point) {
    println!(
        "{scenario:<44} c={c:<3} {:>9.0} req/s  p50 {:>8}  p99 {:>8}  errors {}",
        p.rps,
        fmt_us(p.p50_us),
        fmt_us(p.p99_us),
        p.errors
    );
}

pub(crate) fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// Waits until something accepts TCP connections on `port`.
async fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not start listening on port {port}")
}

/// Checks one `/execute` answers 200 with `output` (when given).
async fn check_execute(edge: &str, body: Value, output: Option<&str>) -> anyhow::Result<Value> {
    let (status, answer) = execute(edge, body.clone()).await;
    if status != 200 || output.is_some_and(|o| answer["output"] != o) {
        bail!("{edge}/execute {body}: {status} {answer}");
    }
    Ok(answer)
}

fn wasm(root: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let path = root.join(format!("examples/target/wasm32-wasip1/release/{name}.wasm"));
    std::fs::read(&path).with_context(|| {
        format!(
            "{} missing: build it with `cd examples && cargo build --release`",
            path.display()
        )
    })
}

/// A distinct tiny command module printing its own name.
fn churn_module(i: usize) -> anyhow::Result<Vec<u8>> {
    Ok(wat::parse_str(aether_fixtures::print_wat(&format!(
        "f{i:04}"
    )))?)
}

/// A function that never returns: only the edge's timeout ends it.
const SPIN_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"#;

/// `{"items": [...]}` of about `JSON_INPUT_BYTES` serialised.
fn json_input() -> Value {
    let categories = ["books", "games", "music", "tools", "garden"];
    let mut items = Vec::new();
    let mut size = 12;
    let mut i = 0usize;
    while size < JSON_INPUT_BYTES {
        let item = json!({
            "id": i,
            "category": categories[i % categories.len()],
            "price": (i % 97) as f64 + 0.5,
            "qty": i % 7 + 1,
        });
        size += item.to_string().len() + 1;
        items.push(item);
        i += 1;
    }
    json!({ "items": items })
}

/// The first line a command prints (stdout, else stderr), or "unknown".
pub(crate) fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine for a table's header: CPU model, CPU count, kernel.
pub(crate) fn machine() -> String {
    format!(
        "{}, {} CPUs, Linux {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    )
}

/// wrk's version, as `wrk -v` prints it (without its build details).
pub(crate) fn wrk_version(wrk: &str) -> String {
    command_line(wrk, &["-v"])
        .split(" [")
        .next()
        .unwrap_or("wrk")
        .to_owned()
}

/// The CPU model from /proc/cpuinfo.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Runs the benchmark with the options given after `load`.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let root = crate::root();
    let hello = wasm(&root, "hello_world")?;
    let transform = wasm(&root, "json_transform")?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let mut rows = Vec::new();

    let hello_body = dir.join("hello.json");
    std::fs::write(
        &hello_body,
        json!({"function": "hello_world", "input": {"msg": HELLO_MSG}}).to_string(),
    )?;
    let msg_body = dir.join("msg.json");
    std::fs::write(&msg_body, json!({ "msg": HELLO_MSG }).to_string())?;
    let transform_request = json!({"function": "json_transform", "input": json_input()});
    let transform_body = dir.join("transform.json");
    std::fs::write(&transform_body, transform_request.to_string())?;
    let spin_body = dir.join("spin.json");
    std::fs::write(&spin_body, json!({"function": "spin"}).to_string())?;

    let hello_lua = script(
        dir,
        "hello",
        Load::Fixed {
            path: "/execute",
            body: &hello_body,
        },
    )?;
    let msg_lua = script(
        dir,
        "msg",
        Load::Fixed {
            path: "/",
            body: &msg_body,
        },
    )?;
    let transform_lua = script(
        dir,
        "transform",
        Load::Fixed {
            path: "/execute",
            body: &transform_body,
        },
    )?;
    let spin_lua = script(
        dir,
        "spin",
        Load::Fixed {
            path: "/execute",
            body: &spin_body,
        },
    )?;
    let churn_lua = script(dir, "churn", Load::Churn { n: CHURN_FUNCTIONS })?;

    // Ceiling: a static hyper server.
    if o.wants("static") {
        let port = free_port();
        // Beside this binary: target/release, or target/debug for the smoke run.
        let bin = aether_e2e::bin_dir().join("aether-static-server");
        let _server = Guard(
            Command::new(&bin)
                .arg(format!("127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?,
        );
        wait_port(port, "the static server").await?;
        let base = format!("http://127.0.0.1:{port}");
        measure(
            &o,
            &mut rows,
            "static hyper server (ceiling)",
            &base,
            &hello_lua,
        )
        .await?;
    }

    // Baseline: wasmtime serve with the wasi-http hello world.
    let mut wasmtime_version = None;
    let mut wasmtime_answer = None;
    if let (Some(wasmtime), Some(component)) = (&o.wasmtime, &o.component)
        && o.wants("wasmtime")
    {
        wasmtime_version = Some(command_line(
            &wasmtime.display().to_string(),
            &["--version"],
        ));
        let port = free_port();
        let _server = Guard(
            Command::new(wasmtime)
                .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
                .args(["-O", "pooling-allocator=y"])
                // Rust's std in the component imports wasi:cli (environment).
                .args(["-S", "cli=y"])
                .arg(component)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", wasmtime.display()))?,
        );
        wait_port(port, "wasmtime serve").await?;
        let base = format!("http://127.0.0.1:{port}");
        let answer = http_answer(&format!("{base}/"), &msg_body).await?;
        if answer.body != HELLO_MSG.as_bytes() {
            bail!("wasmtime serve answered {answer:?}");
        }
        wasmtime_answer = Some(answer);
        measure(
            &o,
            &mut rows,
            "wasmtime serve hello (baseline)",
            &base,
            &msg_lua,
        )
        .await?;
    }

    // One standalone edge: hello_world, json_transform, and the loop mix.
    if o.wants("hello") || o.wants("json") || o.wants("loop") {
        let edge_dir = dir.join("edge");
        let funcs = edge_dir.join("functions");
        std::fs::create_dir_all(&funcs)?;
        std::fs::write(funcs.join("hello_world.wasm"), &hello)?;
        std::fs::write(funcs.join("json_transform.wasm"), &transform)?;
        std::fs::write(funcs.join("spin.wasm"), wat::parse_str(SPIN_WAT)?)?;
        let edge = start_standalone_edge_with(&edge_dir, free_port(), &[]).await?;
        check_execute(
            &edge.url,
            json!({"function": "hello_world", "input": {"msg": HELLO_MSG}}),
            Some(HELLO_MSG),
        )
        .await?;
        check_execute(&edge.url, transform_request.clone(), None).await?;
        if o.wants("hello") {
            measure(
                &o,
                &mut rows,
                "aether /execute hello_world",
                &edge.url,
                &hello_lua,
            )
            .await?;
        }
        if o.wants("json") {
            measure(
                &o,
                &mut rows,
                "aether /execute json_transform, 10 KB input",
                &edge.url,
                &transform_lua,
            )
            .await?;
        }
        if o.wants("loop") {
            loop_mix(&o, &mut rows, &edge, &hello_lua, &spin_lua).await?;
        }
    }

    // The same edge attached to a control plane (registration, heartbeats,
    // stats and events flowing), hello_world deployed through it.
    if o.wants("control") {
        let control = start_control(&dir.join("control"), free_port(), "30s").await?;
        let edge = start_edge(
            &dir.join("managed-edge"),
            free_port(),
            &control.url,
            &EdgeOptions::quiet(),
        )
        .await?;
        deploy(&control.url, "hello_world", &hello).await?;
        aether_e2e::eventually(
            Duration::from_secs(20),
            "hello_world on the edge",
            || async {
                check_execute(
                    &edge.url,
                    json!({"function": "hello_world", "input": {"msg": HELLO_MSG}}),
                    Some(HELLO_MSG),
                )
                .await
                .is_ok()
            },
        )
        .await?;
        measure(
            &o,
            &mut rows,
            "aether hello_world, control plane attached",
            &edge.url,
            &hello_lua,
        )
        .await?;
    }

    // Telemetry on vs off, side by side in alternating rounds.
    let mut telemetry_note = None;
    if o.wants("telemetry") {
        telemetry_note = Some(telemetry_overhead(&o, &mut rows, dir, &hello, &hello_lua).await?);
    }

    // HTTP functions (issue 16): the wasi-http hello component that
    // `wasmtime serve` runs, on the edge's /fn route; the CGI hello on
    // /fn; hello_world built as a preview-2 command on /execute.
    if o.wants("http") {
        http_functions(
            &o,
            &mut rows,
            dir,
            &root,
            &msg_body,
            wasmtime_answer.as_ref(),
        )
        .await?;
    }

    // Cache churn: 1000 functions, a cache of 100, artifacts on disk.
    if o.wants("churn") {
        let edge_dir = dir.join("churn-edge");
        let funcs = edge_dir.join("functions");
        std::fs::create_dir_all(&funcs)?;
        for i in 0..CHURN_FUNCTIONS {
            std::fs::write(funcs.join(format!("f{i:04}.wasm")), churn_module(i)?)?;
        }
        let cache = CHURN_CACHE_SIZE.to_string();
        let edge =
            start_standalone_edge_with(&edge_dir, free_port(), &["--cache-size", &cache]).await?;
        // One request each: every artifact is on disk before measuring.
        for i in 0..CHURN_FUNCTIONS {
            let name = format!("f{i:04}");
            check_execute(
                &edge.url,
                json!({"function": name, "input": {}}),
                Some(&name),
            )
            .await?;
        }
        measure(
            &o,
            &mut rows,
            "aether 1000 functions, cache_size 100",
            &edge.url,
            &churn_lua,
        )
        .await?;
    }

    let mut section = render(&o, &rows, wasmtime_version.as_deref());
    if let Some(note) = telemetry_note {
        section.push('\n');
        section.push_str(&note);
    }
    println!("\n{section}");
    if let Some(out) = &o.out {
        write_section(out, &section)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// What an HTTP server answered: status, content type and body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// POSTs the file `body` to `url`.
async fn http_answer(url: &str, body: &Path) -> anyhow::Result<Answer> {
    let resp = aether_e2e::client()
        .post(url)
        .body(std::fs::read(body)?)
        .send()
        .await?;
    Ok(Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: resp.bytes().await?.to_vec(),
    })
}

/// The three rows of HTTP functions on one standalone edge: the wasi-http
/// hello component on `/fn` (checked to answer exactly what `wasmtime
/// serve` answered, when it ran), the CGI hello on `/fn`, and hello_world
/// as a preview-2 command component on `/execute`.
async fn http_functions(
    o: &Options,
    rows: &mut Vec<Row>,
    dir: &Path,
    root: &Path,
    msg_body: &Path,
    wasmtime_answer: Option<&Answer>,
) -> anyhow::Result<()> {
    let component = match &o.component {
        Some(path) => path.clone(),
        None => root.join(COMPONENT),
    };
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| {
            format!(
                "{} missing: bench/run.sh builds it (see its build step)",
                path.display()
            )
        })
    };
    let edge_dir = dir.join("http-edge");
    let funcs = edge_dir.join("functions");
    std::fs::create_dir_all(&funcs)?;
    std::fs::write(funcs.join("wasi_http_hello.wasm"), read(&component)?)?;
    std::fs::write(funcs.join("cgi_hello.wasm"), wasm(root, "cgi_hello")?)?;
    std::fs::write(funcs.join("hello_p2.wasm"), read(&root.join(HELLO_P2))?)?;
    let edge = start_standalone_edge_with(&edge_dir, free_port(), &[]).await?;

    let fn_url = format!("{}/fn/wasi_http_hello/", edge.url);
    let answer = http_answer(&fn_url, msg_body).await?;
    if answer.status != 200 || answer.body != HELLO_MSG.as_bytes() {
        bail!("{fn_url} answered {answer:?}");
    }
    if let Some(expected) = wasmtime_answer
        && &answer != expected
    {
        bail!(
            "the component answers differently on aether /fn ({answer:?}) and on wasmtime serve ({expected:?})"
        );
    }
    let cgi = http_answer(&format!("{}/fn/cgi_hello/", edge.url), msg_body).await?;
    if cgi.status != 200 || !cgi.body.ends_with(&std::fs::read(msg_body)?) {
        bail!("cgi_hello answered {cgi:?}");
    }
    check_execute(
        &edge.url,
        json!({"function": "hello_p2", "input": {"msg": HELLO_MSG}}),
        Some(HELLO_MSG),
    )
    .await?;

    let fn_lua = script(
        dir,
        "fn",
        Load::Fixed {
            path: "/fn/wasi_http_hello/",
            body: msg_body,
        },
    )?;
    let cgi_lua = script(
        dir,
        "cgi",
        Load::Fixed {
            path: "/fn/cgi_hello/",
            body: msg_body,
        },
    )?;
    let p2_body = dir.join("hello_p2.json");
    std::fs::write(
        &p2_body,
        json!({"function": "hello_p2", "input": {"msg": HELLO_MSG}}).to_string(),
    )?;
    let p2_lua = script(
        dir,
        "hello_p2",
        Load::Fixed {
            path: "/execute",
            body: &p2_body,
        },
    )?;
    measure(
        o,
        rows,
        "aether /fn wasi-http hello (component)",
        &edge.url,
        &fn_lua,
    )
    .await?;
    measure(
        o,
        rows,
        "aether /fn cgi_hello (CGI, preview 1)",
        &edge.url,
        &cgi_lua,
    )
    .await?;
    measure(
        o,
        rows,
        "aether /execute hello_world (preview-2 command)",
        &edge.url,
        &p2_lua,
    )
    .await?;
    Ok(())
}

/// bench/wasi-http-hello's component, as bench/run.sh builds it.
const COMPONENT: &str = "bench/wasi-http-hello/target/wasm32-wasip2/release/wasi_http_hello.wasm";
/// examples/hello_world built for wasm32-wasip2 (a command component), as
/// bench/run.sh and aether_fixtures build it.
const HELLO_P2: &str = "examples/target/wasip2/wasm32-wasip2/release/hello_world.wasm";

/// hello_world while a tenth of the connections (at least one) send the
/// endless loop: each of those holds an execution slot for the whole
/// timeout. The good requests' figures are reported.
async fn loop_mix(
    o: &Options,
    rows: &mut Vec<Row>,
    edge: &Process,
    hello_lua: &Path,
    spin_lua: &Path,
) -> anyhow::Result<()> {
    const SCENARIO: &str = "aether hello_world, 10 % endless-loop conns";
    for &c in &o.concurrency {
        let loops = (c as f64 * 0.1).round().max(1.0) as u32;
        let (good, bad) = tokio::join!(
            wrk(o, &edge.url, hello_lua, c, o.duration),
            wrk(o, &edge.url, spin_lua, loops, o.duration),
        );
        let (point, bad) = (good?, bad?);
        print_row(SCENARIO, c, &point);
        println!(
            "{:<44} ({loops} loop connection(s): {} loops answered, {} as errors)",
            "", bad.requests, bad.errors
        );
        rows.push(Row {
            scenario: SCENARIO,
            concurrency: c,
            point,
        });
        // Loops still running end within the timeout; let them go.
        tokio::time::sleep(Duration::from_millis(3500)).await;
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// hello_world on two edges that differ only in telemetry: one as shipped
/// (metrics, request ids, logging at `info`), one with `--no-telemetry`
/// and `RUST_LOG=off`. Alternating rounds at c=16 (the order flips every
/// round so drift on a shared machine hits both sides alike); adds the
/// median rows and returns a paragraph with the paired differences in
/// throughput and in the edge's own CPU time per request.
async fn telemetry_overhead(
    o: &Options,
    rows: &mut Vec<Row>,
    dir: &Path,
    hello: &[u8],
    hello_lua: &Path,
) -> anyhow::Result<String> {
    // Per side: table row, directory, edge arguments and RUST_LOG. The
    // first side is telemetry on (or, for `--aa`, a second "off").
    type Side = (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static str,
    );
    const OFF: &[&str] = &["--no-telemetry"];
    let sides: [Side; 2] = if o.aa {
        [
            (
                "aether hello_world, telemetry off (A/A: A)",
                "on",
                OFF,
                "off",
            ),
            (
                "aether hello_world, telemetry off (A/A: B)",
                "off",
                OFF,
                "off",
            ),
        ]
    } else {
        [
            ("aether hello_world, telemetry on", "on", &[], "info"),
            ("aether hello_world, telemetry off", "off", OFF, "off"),
        ]
    };
    const C: u32 = 16;
    let rounds = o
        .rounds
        .unwrap_or(if o.duration <= 1 { 2 } else { 6 })
        .max(1);
    let mut edges = Vec::new();
    for (_, name, args, log) in sides {
        let edge_dir = dir.join(format!("telemetry-{name}"));
        let funcs = edge_dir.join("functions");
        std::fs::create_dir_all(&funcs)?;
        std::fs::write(funcs.join("hello_world.wasm"), hello)?;
        let edge = aether_e2e::start_standalone_edge_env(
            &edge_dir,
            free_port(),
            args,
            &[("RUST_LOG", log.to_owned())],
        )
        .await?;
        check_execute(
            &edge.url,
            json!({"function": "hello_world", "input": {"msg": HELLO_MSG}}),
            Some(HELLO_MSG),
        )
        .await?;
        wrk(o, &edge.url, hello_lua, C, 1).await?;
        edges.push(edge);
    }
    // Per side: points, and CPU microseconds per request.
    let mut points: [Vec<Point>; 2] = [Vec::new(), Vec::new()];
    let mut cpu_us: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let edge = &edges[side];
            let pid = edge.pid().context("edge exited")?;
            let before = aether_fixtures::cpu_time(pid)?;
            let point = wrk(o, &edge.url, hello_lua, C, o.duration).await?;
            let used = aether_fixtures::cpu_time(pid)? - before;
            cpu_us[side].push(used.as_secs_f64() * 1e6 / point.requests.max(1) as f64);
            points[side].push(point);
        }
    }
    let mut paired: Vec<f64> = points[0]
        .iter()
        .zip(&points[1])
        .map(|(on, off)| (on.rps / off.rps - 1.0) * 100.0)
        .collect();
    let mut paired_cpu: Vec<f64> = cpu_us[0]
        .iter()
        .zip(&cpu_us[1])
        .map(|(on, off)| (on / off - 1.0) * 100.0)
        .collect();
    for (side, (scenario, ..)) in sides.into_iter().enumerate() {
        let ps = &points[side];
        let pick = |f: fn(&Point) -> f64| median(&mut ps.iter().map(f).collect::<Vec<_>>());
        let point = Point {
            requests: ps.iter().map(|p| p.requests).sum(),
            rps: pick(|p| p.rps),
            p50_us: pick(|p| p.p50_us),
            p99_us: pick(|p| p.p99_us),
            errors: ps.iter().map(|p| p.errors).sum(),
        };
        print_row(scenario, C, &point);
        rows.push(Row {
            scenario,
            concurrency: C,
            point,
        });
    }
    let list = |v: &[f64], unit: &str| {
        v.iter()
            .map(|x| format!("{x:+.1}{unit}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let setup = if o.aa {
        "an A/A run (`--aa`): two identical edges, both `--no-telemetry` with `RUST_LOG=off`, \
         so the differences are this machine's noise floor"
    } else {
        "two edges that differ only in telemetry — as shipped (metrics, request ids, logs at \
         `info`) vs `--no-telemetry` with `RUST_LOG=off`"
    };
    let note = format!(
        "Telemetry overhead through sockets (the two `telemetry` rows): {rounds} alternating \
         rounds of {} s at c={C} against {setup}. \
         Throughput on vs off per round: {} (median {:+.1} %). The edge's own CPU time per \
         request (from /proc, all threads): on {:.1} µs, off {:.1} µs (medians); paired \
         per round: {} (median {:+.1} %).\n",
        o.duration,
        list(&paired, " %"),
        median(&mut paired),
        median(&mut cpu_us[0].clone()),
        median(&mut cpu_us[1].clone()),
        list(&paired_cpu, " %"),
        median(&mut paired_cpu),
    );
    println!("{note}");
    Ok(note)
}

fn render(o: &Options, rows: &[Row], wasmtime_version: Option<&str>) -> String {
    let find = |prefix: &str, c: u32| {
        rows.iter()
            .find(|r| r.scenario.starts_with(prefix) && r.concurrency == c)
            .map(|r| r.point)
    };
    let ratio = |num: f64, base: Option<Point>| {
        base.map(|b| format!("{:.2}×", num / b.rps))
            .unwrap_or_else(|| "–".into())
    };
    let mut s = String::new();
    let _ = writeln!(s, "## Load: `/execute` side by side (`bench/run.sh`)\n");
    let _ = writeln!(
        s,
        "- Machine: {}; wrk and the servers share the cores.",
        machine()
    );
    let _ = writeln!(
        s,
        "- Versions: aether {} ({}), {}, {}, {}.",
        env!("CARGO_PKG_VERSION"),
        command_line("git", &["describe", "--always", "--dirty"]),
        command_line("rustc", &["-V"]),
        wrk_version(&o.wrk),
        wasmtime_version.unwrap_or("wasmtime serve not run")
    );
    let _ = writeln!(
        s,
        "- Date: {}. Command: `bench/run.sh` (wrk, {} s per point after a 1 s warm-up, \
         `-t 2` or `-t 1` at c=1, POST bodies from a Lua script; p50/p99 from wrk's latency record).",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        o.duration
    );
    let _ = writeln!(
        s,
        "- Load average when the table was written (other work on the box skews every row): {}.",
        load_average()
    );
    let _ = writeln!(
        s,
        "\n| scenario | c | req/s | p50 | p99 | errors | ÷ wasmtime serve | ÷ static |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let p = r.point;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.concurrency,
            p.rps,
            fmt_us(p.p50_us),
            fmt_us(p.p99_us),
            p.errors,
            ratio(p.rps, find("wasmtime", r.concurrency)),
            ratio(p.rps, find("static", r.concurrency)),
        );
    }
    let _ = writeln!(
        s,
        "\nRatios are req/s over the baseline's req/s at the same concurrency. \
         `wasmtime serve` runs `bench/wasi-http-hello` (a wasi-http component doing what \
         `examples/hello_world` does: parse the JSON body, answer `msg`) with \
         `-O pooling-allocator=y -S cli=y`; the static server is `aether-static-server` (hyper, \
         fixed body). The edges run with their defaults (pooling, keep-resident 2 MiB, \
         3 s timeout, 64 execution slots). The endless-loop rows report the good \
         requests only; a tenth of the connections (at least one) send a function that \
         loops until the 3 s timeout. The 1000-function rows pick names uniformly from \
         `f0000..f0999` with `cache_size = 100`, so about 90 % of requests load the \
         module from its on-disk artifact (every artifact written by a warm-up request). \
         The `/fn` rows run HTTP functions on the edge: the same wasi-http component \
         `wasmtime serve` runs (checked to answer the same status, content type and body), \
         and `examples/cgi_hello` (a preview-1 CGI program echoing the body); the \
         preview-2 row is `examples/hello_world` built for wasm32-wasip2. Every request \
         gets a fresh instance."
    );
    s
}

/// Replaces this benchmark's section of `path` (between the markers),
/// appending the markers at the end when absent.
fn write_section(path: &Path, section: &str) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Aether benchmarks\n".into(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let block = format!("{BEGIN}\n{section}{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &old[..b], &old[e + END.len()..])
        }
        (None, None) => {
            let sep = if old.ends_with("\n\n") {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{sep}{block}\n")
        }
        _ => bail!(
            "{} has one of {BEGIN} / {END} without the other; fix it by hand",
            path.display()
        ),
    };
    // Temp file then rename: an interrupted run leaves the old file.
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, new)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bench, Cli};
    use clap::Parser as _;

    /// `aether-bench load ARGS`, parsed as the binary parses it.
    fn load(args: &[&str]) -> Options {
        let argv = ["aether-bench", "load"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Bench::Load(o),
            }) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// The words of the first non-empty `name=(...)` bash array in
    /// `script`, quotes dropped (variables stay as written).
    fn bash_array(script: &str, name: &str) -> Vec<String> {
        let open = format!("{name}=(");
        let start = script
            .match_indices(&open)
            .map(|(i, _)| i + open.len())
            .find(|&i| !script[i..].starts_with(')'))
            .unwrap_or_else(|| panic!("bench/run.sh no longer sets {name}"));
        let end = start + script[start..].find(')').expect("closing )");
        script[start..end]
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_owned())
            .collect()
    }

    /// The arguments bench/run.sh passes, read from the script itself, so a
    /// new option there that this parser lacks fails here.
    #[test]
    fn bench_run_sh_command_lines_parse() {
        let script = include_str!("../../../bench/run.sh");
        assert!(
            script.contains(r#""$bin/aether-bench" load "${load_args[@]}" "${wasmtime_args[@]}""#),
            "bench/run.sh calls aether-bench differently; update this test"
        );
        let wasmtime = bash_array(script, "wasmtime_args");
        assert_eq!(wasmtime[0], "--wasmtime");
        // Both load_args lines (smoke, full), with and without wasmtime.
        let mut seen = 0;
        for line in script.lines().filter(|l| l.contains("load_args=(")) {
            let args = bash_array(line, "load_args");
            let o = load(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(o.wasmtime, None);
            let with: Vec<&str> = args.iter().chain(&wasmtime).map(String::as_str).collect();
            let o = load(&with);
            assert_eq!(o.wasmtime.as_deref(), Some(Path::new("$wasmtime")));
            assert!(o.component.is_some(), "{with:?}");
            seen += 1;
        }
        assert_eq!(seen, 2, "bench/run.sh: smoke and full load_args");

        // The same lines written out.
        let smoke = load(&["--duration", "1", "--concurrency", "16"]);
        assert_eq!((smoke.duration, &smoke.concurrency[..]), (1, &[16][..]));
        assert_eq!(smoke.out, None);
        let full = load(&[
            "--duration",
            "5",
            "--out",
            "/src/BENCHMARKS.md",
            "--wasmtime",
            "/src/bench/.tools/bin/wasmtime",
            "--component",
            "/src/bench/wasi-http-hello/target/wasm32-wasip2/release/wasi_http_hello.wasm",
        ]);
        assert_eq!(full.duration, 5);
        assert_eq!(full.concurrency, [1, 16, 64]);
        assert_eq!(full.out.as_deref(), Some(Path::new("/src/BENCHMARKS.md")));
        assert_eq!(
            full.wasmtime.as_deref(),
            Some(Path::new("/src/bench/.tools/bin/wasmtime"))
        );
        assert!(full.component.is_some());
    }

    #[test]
    fn documented_command_lines_parse() {
        // BENCHMARKS.md, docs/observability.md, docs/SECURITY.md.
        let o = load(&[
            "--duration",
            "5",
            "--concurrency",
            "16",
            "--only",
            "hello,loop",
        ]);
        assert_eq!(o.concurrency, [16]);
        assert_eq!(
            o.only.as_deref(),
            Some(&["hello".into(), "loop".into()][..])
        );
        assert!(o.wants("loop") && !o.wants("static"));
        let o = load(&[
            "--duration",
            "5",
            "--concurrency",
            "1,16,64",
            "--only",
            "static,hello,loop",
        ]);
        assert_eq!(o.concurrency, [1, 16, 64]);
        let o = load(&["--only", "telemetry"]);
        assert!(o.wants("telemetry") && !o.wants("hello"));
        let o = load(&[
            "--duration",
            "5",
            "--only",
            "telemetry",
            "--rounds",
            "20",
            "--aa",
        ]);
        assert_eq!((o.rounds, o.aa), (Some(20), true));
        assert!(load(&["--only", "loop"]).wants("loop"));
    }

    #[test]
    fn defaults_repeats_and_other_spellings() {
        let o = load(&[]);
        assert_eq!(o.wrk, "wrk");
        assert_eq!((o.duration, &o.concurrency[..]), (5, &[1, 16, 64][..]));
        assert_eq!((o.wasmtime, o.component, o.out), (None, None, None));
        assert_eq!((o.only, o.rounds, o.aa), (None, None, false));
        assert!(load(&[]).wants("churn"));
        // As with the hand-written parser, the last occurrence counts.
        let o = load(&[
            "--duration",
            "1",
            "--duration",
            "3",
            "--concurrency",
            "1,2",
            "--concurrency",
            "4",
            "--only",
            "hello",
            "--only",
            "json",
            "--aa",
            "--aa",
        ]);
        assert_eq!((o.duration, &o.concurrency[..]), (3, &[4][..]));
        assert_eq!(o.only.as_deref(), Some(&["json".to_owned()][..]));
        assert!(o.aa);
        // `--option=value` works too.
        let o = load(&["--wrk=/usr/bin/wrk", "--concurrency=8,32"]);
        assert_eq!(
            (&o.wrk[..], &o.concurrency[..]),
            ("/usr/bin/wrk", &[8, 32][..])
        );
    }
}
