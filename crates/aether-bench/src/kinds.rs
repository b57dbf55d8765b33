//! `aether-bench kinds` (and the last rows of `aether-bench micro`): what
//! one request costs in process for each kind of function, side by side
//! in one run, one thread, a fresh instance per request from an already
//! loaded module: hello_world as a preview-1 command (`execute`), the same
//! program as a preview-2 command component (`execute`), and the
//! wasi-http hello component (`http_call`: the request with its JSON body
//! in, the whole response body read out).

use std::time::{Duration, Instant};

use aether_runtime::{
    EgressPolicy, GuestResponse, HttpInvocation, Limits, LoadedModule, ModuleHash, Runtime,
    RuntimeConfig,
};
use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};

/// Timed requests per kind (after as many again for warm-up).
const RUNS: usize = 5_000;

fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    let path = crate::root().join(path);
    std::fs::read(&path).with_context(|| {
        format!(
            "{} missing: bench/run.sh builds it (or see its build step)",
            path.display()
        )
    })
}

fn load(rt: &Runtime, wasm: Vec<u8>) -> anyhow::Result<std::sync::Arc<LoadedModule>> {
    let hash = ModuleHash::of(&wasm);
    Ok(rt.load(hash, || Ok(wasm))?.0)
}

/// One `execute` of a hello world; checks its output.
async fn command(rt: &Runtime, module: &LoadedModule) -> anyhow::Result<()> {
    let out = rt
        .execute(module, crate::hello_invocation())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    if &out.stdout[..] != b"Hello from Aether!" {
        bail!("unexpected output {:?}", out.stdout);
    }
    Ok(())
}

/// One request to the wasi-http hello component; checks its answer.
async fn http(
    rt: &Runtime,
    module: &LoadedModule,
    egress: &std::sync::Arc<EgressPolicy>,
) -> anyhow::Result<()> {
    let request = http::Request::post("/")
        .header("host", "localhost")
        .body(Full::new(crate::input()))?;
    let call = rt
        .http_call(
            module,
            HttpInvocation {
                env: &[],
                request,
                https: false,
                limits: Limits::default(),
                max_request_body: 1 << 20,
                egress: egress.clone(),
            },
        )
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let (outcome, body) = tokio::join!(call.guest, async {
        match call.response.recv().await {
            GuestResponse::Response(r) => r.into_body().collect().await.map(|b| b.to_bytes()).ok(),
            _ => None,
        }
    });
    outcome.result.map_err(|f| anyhow::anyhow!("{f}"))?;
    if body.as_deref() != Some(b"Hello from Aether!".as_slice()) {
        bail!("unexpected answer {body:?}");
    }
    Ok(())
}

/// Median and p99 of `RUNS` timed calls of `f`, after `RUNS` untimed ones.
async fn time<F, Fut>(mut f: F) -> anyhow::Result<(Duration, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for _ in 0..RUNS {
        f().await?;
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((
        crate::percentile(&times, 0.5),
        crate::percentile(&times, 0.99),
    ))
}

/// Prints the three rows (markdown table lines).
pub fn rows() -> anyhow::Result<()> {
    let rt = Runtime::new(RuntimeConfig::default())?;
    let p1 = load(&rt, crate::hello_world()?)?;
    let p2 = load(
        &rt,
        read("examples/target/wasip2/wasm32-wasip2/release/hello_world.wasm")?,
    )?;
    let component = load(
        &rt,
        read("bench/wasi-http-hello/target/wasm32-wasip2/release/wasi_http_hello.wasm")?,
    )?;
    let egress = std::sync::Arc::new(EgressPolicy::deny_all());
    let rows = wasmtime_wasi::runtime::in_tokio(async {
        let p1 = time(|| command(&rt, &p1)).await?;
        let p2 = time(|| command(&rt, &p2)).await?;
        let component = time(|| http(&rt, &component, &egress)).await?;
        anyhow::Ok([
            ("hello_world, preview-1 command (`execute`)", p1),
            ("hello_world, preview-2 command component (`execute`)", p2),
            (
                "wasi-http hello component (`http_call`, body in and out)",
                component,
            ),
        ])
    })?;
    let base = rows[0].1.0.as_secs_f64();
    for (label, (p50, p99)) in rows {
        println!(
            "| fresh instance per request, 1 thread, {label} | p50 {} · p99 {} · {:.2}× the preview-1 p50 |",
            crate::us(p50),
            crate::us(p99),
            p50.as_secs_f64() / base
        );
    }
    Ok(())
}
