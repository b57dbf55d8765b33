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
    let reload = tokio::spawn(reload_tokens_on_sighup(cli, server.state().auth().clone()));
    server.run(aether_http::shutdown::signal()).await?;
    reload.abort();
    Ok(())
}

/// On SIGHUP, reads the configuration again (file, variables, flags) and
/// replaces the admin tokens and the join token: rotation without a
/// restart. Nothing else is reloaded; a configuration that does not load
/// keeps the current tokens.
async fn reload_tokens_on_sighup(cli: Cli, auth: aether_control::auth::Auth) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; tokens reload only on restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match Config::load(&cli) {
            Ok(config) => {
                auth.set_tokens(&config.admin_tokens, config.node_token.as_ref());
                tracing::info!(
                    admin_tokens = config.admin_tokens.len(),
                    "SIGHUP: tokens reloaded"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP: the configuration does not load; tokens unchanged")
            }
        }
    }
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
