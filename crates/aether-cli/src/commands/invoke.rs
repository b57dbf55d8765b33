//! `aether invoke NAME`: runs a function on the edge (`POST /execute`) and
//! prints its output.

use std::io::{IsTerminal as _, Read as _, Write as _};

use aether_proto::{ErrorCode, ExecuteRequest, ExecuteResponse};
use anyhow::Context as _;
use reqwest::Method;

use super::check_name;
use crate::cli::InvokeArgs;
use crate::client::{ApiFailure, Client};
use crate::error::{FunctionFailed, Usage};
use crate::output;

/// Runs `aether invoke`.
pub async fn run(args: InvokeArgs, edge: &Client, json: bool) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let input = match &args.input {
        Some(text) => Some(serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            Usage(format!(
                "--input is not valid JSON ({e}); quote it for the shell, e.g. --input '{{\"msg\":\"hi\"}}'"
            ))
        })?),
        None => None,
    };
    let stdin = if args.stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input (--stdin sends text; it must be UTF-8)")?;
        Some(text)
    } else {
        None
    };
    let request = ExecuteRequest {
        function: args.name.clone(),
        input,
        stdin,
    };
    let sent = edge
        .json::<ExecuteResponse>(edge.request(Method::POST, "/execute").json(&request))
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Err(execution_failure(e, &args.name)),
    };

    if json {
        output::json(&response)?;
    } else {
        print_output(&response)?;
    }
    if args.verbose && !json {
        eprintln!(
            "exit code {} · {:.2} ms · {} KiB memory · cache {}",
            response.exit_code,
            response.execution_time_ms,
            response.memory_used_kb,
            response.cache.as_str()
        );
    }
    if response.exit_code != 0 {
        return Err(FunctionFailed(format!(
            "function {} exited with code {}",
            args.name, response.exit_code
        ))
        .into());
    }
    Ok(())
}

/// The function's stdout on stdout and its stderr on stderr, as they are;
/// a final newline is added only for a terminal, so pipes get exact bytes.
fn print_output(response: &ExecuteResponse) -> anyhow::Result<()> {
    if !response.stderr.is_empty() {
        let mut err = std::io::stderr().lock();
        err.write_all(response.stderr.as_bytes())?;
        if !response.stderr.ends_with('\n') {
            err.write_all(b"\n")?;
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(response.output.as_bytes())?;
    if std::io::stdout().is_terminal() && !response.output.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Errors of the function itself (trap, timeout, limits) become
/// [`FunctionFailed`] (exit code 3); the others stay as they are.
fn execution_failure(e: anyhow::Error, name: &str) -> anyhow::Error {
    let Some(failure) = e.downcast_ref::<ApiFailure>() else {
        return e;
    };
    let how = match failure.code {
        Some(ErrorCode::Trap) => "trapped",
        Some(ErrorCode::Timeout) => "timed out",
        Some(ErrorCode::MemoryLimitExceeded) => "exceeded its memory limit",
        Some(ErrorCode::OutputLimitExceeded) => "exceeded its output limit",
        _ => return e,
    };
    FunctionFailed(format!("function {name} {how}: {}", failure.detail)).into()
}
