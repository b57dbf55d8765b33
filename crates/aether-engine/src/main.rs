//! `aether-engine` binary: configuration, logging, signals; the rest is the
//! library.

use anyhow::Context as _;
use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = aether_engine::Flags::parse();
    let format = match flags.log_format.parse::<aether_http::logging::LogFormat>() {
        Ok(format) => format,
        Err(e) => {
            eprintln!("aether-engine: --log-format: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    aether_http::logging::init(
        format,
        aether_engine::telemetry::DEFAULT_LOG_FILTER,
        aether_engine::telemetry::QUIET_SPAN_TARGETS,
    );
    match run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("aether-engine: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(flags: aether_engine::Flags) -> anyhow::Result<()> {
    let config = aether_engine::EngineConfig::load(&flags)?;
    let addr = std::net::SocketAddr::new(config.host, config.port);
    let state = aether_engine::AppState::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        addr = %local,
        node_id = state.node_id(),
        func_dir = %config.func_dir.display(),
        data_dir = %config.data_dir.display(),
        max_concurrency = config.max_concurrency,
        max_queue = config.max_queue,
        max_input = config.max_input,
        "aether-engine listening on http://{local}"
    );
    tracing::info!(sandbox = %state.runtime().summary(), "sandbox settings");
    aether_engine::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("aether-engine stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down; letting in-flight requests finish");
}
