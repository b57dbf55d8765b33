//! One module per verb; [`run`] dispatches.

mod build;
mod call;
mod deploy;
mod events;
mod functions;
mod invoke;
mod new;
mod nodes;
mod up;

use crate::cli::{Cli, Command};
use crate::client::{Client, Server};
use crate::config::Endpoints;

/// Runs the command named on the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Up(args) => up::run(args, &global).await,
        Command::New(args) => new::run(args, &global),
        Command::Build(args) => build::run(args, global.json).await,
        Command::Deploy(args) => {
            let control = control(&Endpoints::resolve(&global)?)?;
            deploy::run(args, &control, global.json).await
        }
        Command::Invoke(args) => {
            let edge = edge(&Endpoints::resolve(&global)?)?;
            invoke::run(args, &edge, global.json).await
        }
        Command::Call(args) => {
            let edge = edge(&Endpoints::resolve(&global)?)?;
            call::run(args, &edge, global.json).await
        }
        Command::Functions(args) => {
            let control = control(&Endpoints::resolve(&global)?)?;
            functions::run(args, &control, global.json).await
        }
        Command::Nodes(args) => {
            let control = control(&Endpoints::resolve(&global)?)?;
            nodes::run(args, &control, global.json).await
        }
        Command::Events(args) => {
            let control = control(&Endpoints::resolve(&global)?)?;
            events::run(args, &control, global.json).await
        }
    }
}

/// A client of the edge. The edge's routes need no admin token; sending it
/// would leak it to every edge (and to the functions called through
/// `/fn/`), so it is left out.
fn edge(endpoints: &Endpoints) -> anyhow::Result<Client> {
    Client::new(
        Server::Edge,
        std::slice::from_ref(&endpoints.edge_url),
        None,
        endpoints.ca_cert.as_deref(),
    )
}

fn control(endpoints: &Endpoints) -> anyhow::Result<Client> {
    Client::new(
        Server::Control,
        &endpoints.control_urls,
        endpoints.token.clone(),
        endpoints.ca_cert.as_deref(),
    )
}

/// Checks a function name before any request, with the server's rule.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    aether_proto::validate_function_name(name)
        .map_err(|e| anyhow::Error::from(crate::error::Usage(e.to_string())))
}
