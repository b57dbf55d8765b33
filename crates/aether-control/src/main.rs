//! `aether-control`: the control-plane binary. Exit codes: 0 after a clean
//! shutdown (SIGTERM, Ctrl-C), 1 on a configuration or runtime error, printed
//! as one line.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use aether_control::server::{log_startup, shutdown_signal};
use aether_control::{Cli, Config, Server};

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli).context("invalid configuration")?;
    let server = Server::bind(&config).await?;
    log_startup(&config, server.local_addr()?);
    server.run(shutdown_signal()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("aether-control: {e:#}");
            ExitCode::FAILURE
        }
    }
}
