//! `aether-engine` binary: configuration, logging, signals; the rest is the
//! library.

use anyhow::Context as _;
use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = aether_engine::Flags::parse();
    aether_http::logging::init(
        flags.server.log_format,
        aether_engine::DEFAULT_LOG_FILTER,
        aether_engine::QUIET_SPAN_TARGETS,
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
    let addr = aether_http::config::listen_addr(&config.host, config.port);
    let state = aether_engine::AppState::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(&addr)
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
        "aether-engine listening on {}://{local}",
        if config.tls.is_some() { "https" } else { "http" }
    );
    tracing::info!(sandbox = %state.runtime().summary(), "sandbox settings");
    aether_engine::serve(listener, state, aether_http::shutdown::signal()).await?;
    tracing::info!("aether-engine stopped");
    Ok(())
}
