//! `aether`, the command-line interface of Aether: deploy, invoke, list and
//! roll back functions, watch nodes and events, and run a whole local stack
//! (`aether up`).
//!
//! Exit codes (also in `aether --help` and docs/cli.md):
//! 0 success, 1 error (request refused, server unreachable, bad input),
//! 2 usage error (from clap), 3 the function ran and failed (trap, timeout,
//! limit, or a non-zero exit code).
//!
//! Every error is printed as one line on stderr, prefixed `error:`.

mod build;
mod cli;
mod client;
mod commands;
mod config;
mod error;
mod output;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2 (help/version: 0).
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error::one_line(&e));
            ExitCode::from(error::exit_code(&e))
        }
    }
}
