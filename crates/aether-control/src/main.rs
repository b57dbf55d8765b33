//! `aether-control`: the control-plane binary. Exit codes: 0 after a clean
//! shutdown (SIGTERM, Ctrl-C), 1 on a configuration or runtime error, printed
//! as one line.

use std::process::ExitCode;

use aether_http::logging::LogFormat;
use anyhow::Context;
use clap::Parser;

use aether_control::server::log_startup;
use aether_control::{Cli, Config, Server};

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli).context("invalid configuration")?;
    let server = Server::bind(&config).await?;
    log_startup(&config, server.local_addr()?);
    server.run(aether_http::shutdown::signal()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = if cli.log_json {
        LogFormat::Json
    } else {
        cli.server.log_format
    };
    aether_http::logging::init(format, "info", &[]);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("aether-control: {e:#}");
            ExitCode::FAILURE
        }
    }
}
