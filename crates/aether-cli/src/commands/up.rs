//! `aether up`: a control plane and one edge in this process, on
//! 127.0.0.1, with their state under one directory, until Ctrl-C or SIGTERM.
//!
//! The edge is a real client of the control plane (`control_url`,
//! `node_token`, `advertise_url`): it registers, heartbeats and pulls what
//! is deployed exactly as a remote edge would. Nothing is copied behind the
//! control plane's back.

use std::path::Path;

use anyhow::Context as _;
use tokio::sync::watch;

use aether_http::Secret;

use crate::cli::{GlobalArgs, UpArgs};
use crate::output;

/// How often the local edge reconciles against the manifest besides the
/// control plane's notifications: a manifest request per second costs
/// nothing on one machine, and a deploy is live at once even if a
/// notification is missed.
const LOCAL_RECONCILE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Printed by `aether up --json` (one line on stdout).
#[derive(Debug, serde::Serialize)]
struct Urls {
    control_url: String,
    edge_url: String,
    data_dir: String,
}

/// Runs `aether up`.
pub async fn run(args: UpArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    init_logging();
    let dir = &args.dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;

    // With a token (--token / AETHER_TOKEN / config file) the stack requires
    // it, like a production control plane; without one it is open, which
    // the control plane allows on loopback only. The node token is internal
    // to this process and new on every start.
    let token = crate::config::Endpoints::resolve(global)?.token;
    let admin_token = token.and_then(Secret::new);
    let node_token = admin_token
        .as_ref()
        .and_then(|_| Secret::new(uuid::Uuid::new_v4().simple().to_string()));

    let control_config = aether_control::Config {
        host: "127.0.0.1".into(),
        port: args.control_port,
        db_path: dir.join("control").join("control.db"),
        blob_dir: dir.join("control").join("blobs"),
        admin_tokens: admin_token.into_iter().collect(),
        node_token: node_token.clone(),
        ..aether_control::Config::default()
    };
    control_config
        .validate()
        .context("invalid control plane configuration")?;
    let control = aether_control::Server::bind(&control_config)
        .await
        .map_err(|e| match e {
            aether_control::ServeError::Bind { .. } => {
                port_hint(e.into(), "--control-port", args.control_port)
            }
            other => anyhow::Error::from(other).context("cannot start the control plane"),
        })?;
    let control_url = format!("http://{}", control.local_addr()?);

    let edge_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.edge_port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.edge_port))
        .map_err(|e| port_hint(e, "--edge-port", args.edge_port))?;
    let edge_addr = edge_listener.local_addr()?;
    let edge_url = format!("http://{edge_addr}");
    let edge_config = aether_engine::EngineConfig {
        port: edge_addr.port(),
        func_dir: dir.join("edge").join("functions"),
        data_dir: dir.join("edge").join("data"),
        control_url: Some(control_url.clone()),
        node_token,
        advertise_url: Some(edge_url.clone()),
        reconcile_interval: LOCAL_RECONCILE_INTERVAL,
        ..aether_engine::EngineConfig::default()
    };
    edge_config
        .validate()
        .context("invalid edge configuration")?;
    let edge_state = tokio::task::spawn_blocking(move || aether_engine::AppState::new(edge_config))
        .await
        .context("starting the edge failed")?
        .context("cannot start the edge")?;

    let (stop_control, control_stop) = watch::channel(false);
    let (stop_edge, edge_stop) = watch::channel(false);
    let mut control_task = tokio::spawn(control.run(stopped(control_stop)));
    let mut edge_task = tokio::spawn(aether_engine::serve(
        edge_listener,
        edge_state,
        stopped(edge_stop),
    ));

    announce(dir, &control_url, &edge_url, global.json, &args)?;

    let early = tokio::select! {
        () = aether_http::shutdown::signal() => None,
        r = &mut control_task => Some(("control plane", flatten(r))),
        r = &mut edge_task => Some(("edge", flatten(r))),
    };
    // Sending fails only when that server has already stopped; its task's
    // result says why.
    let _ = stop_edge.send(true);
    if let Some((which, result)) = early {
        let _ = stop_control.send(true);
        let reason = result
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("stopped unexpectedly"));
        return Err(reason.context(format!("the {which} of `aether up` failed")));
    }
    eprintln!("stopping (finishing in-flight requests)");
    // The edge first, so its last reports still reach the control plane.
    flatten(edge_task.await).context("the edge failed")?;
    let _ = stop_control.send(true);
    flatten(control_task.await).context("the control plane failed")?;
    eprintln!("stopped");
    Ok(())
}

/// Resolves when `rx` sees `true` (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender was dropped: stop as well.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// A server task's outcome as one result.
fn flatten<E: Into<anyhow::Error>>(
    joined: Result<Result<(), E>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok(result) => result.map_err(Into::into),
        Err(join) => Err(anyhow::anyhow!("crashed: {join}")),
    }
}

fn announce(
    dir: &Path,
    control_url: &str,
    edge_url: &str,
    json: bool,
    args: &UpArgs,
) -> anyhow::Result<()> {
    if json {
        return output::json_line(&Urls {
            control_url: control_url.to_owned(),
            edge_url: edge_url.to_owned(),
            data_dir: dir.display().to_string(),
        });
    }
    output::line(&format!("control plane  {control_url}"))?;
    output::line(&format!("edge           {edge_url}"))?;
    eprintln!("data in {}; press Ctrl-C to stop", dir.display());
    let defaults = args.control_port == aether_control::config::DEFAULT_PORT
        && args.edge_port == aether_engine::config::DEFAULT_PORT;
    if !defaults {
        eprintln!(
            "in another shell: export AETHER_CONTROL_URL={control_url} AETHER_EDGE_URL={edge_url}"
        );
    }
    eprintln!(
        "try: aether deploy examples/hello_world && aether invoke hello_world --input '{{\"msg\":\"Hello from Aether!\"}}'"
    );
    Ok(())
}

/// Adds "pick another port" to a bind failure.
fn port_hint(e: anyhow::Error, flag: &str, port: u16) -> anyhow::Error {
    e.context(format!(
        "port {port} is unavailable (another `aether up` or server running?); choose another with {flag}"
    ))
}

/// Both servers log as the `aether-engine` binary does (`RUST_LOG`, by
/// default `info` without wasmtime-wasi's host-call lines, and
/// wasmtime-wasi's per-host-call spans off unless `RUST_LOG` names it),
/// but to stderr: stdout is `aether up`'s own output (`--json`'s line).
fn init_logging() {
    // Fails only when a subscriber is already installed, i.e. in tests
    // that run `aether up` in-process with their own: keep that one.
    let _ = aether_http::logging::try_init(
        aether_http::logging::LogOutput::Stderr,
        aether_http::logging::LogFormat::Text,
        aether_engine::DEFAULT_LOG_FILTER,
        aether_engine::QUIET_SPAN_TARGETS,
    );
}
