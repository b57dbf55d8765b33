//! The CLI's error vocabulary: typed failures that decide the exit code,
//! and the one-line rendering of any error.

/// Exit code of a failed command (request refused, server unreachable, bad
/// input, ...).
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error; clap uses it for bad flags and we use it for
/// arguments clap cannot check (e.g. `--env` without `=`).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the function ran and failed: a trap, a timeout, a limit,
/// or a non-zero exit code of its own.
pub const EXIT_FUNCTION_FAILED: u8 = 3;

/// The function ran and failed; the message says how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FunctionFailed(pub String);

/// A command-line argument clap could not check.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The exit code for `err`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<FunctionFailed>().is_some() {
        EXIT_FUNCTION_FAILED
    } else if err.downcast_ref::<Usage>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_ERROR
    }
}

/// `err` with its causes, `: `-separated, on a single line (server messages
/// and OS errors may contain newlines).
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    let mut line = String::with_capacity(text.len());
    for (i, part) in text.split(['\n', '\r']).map(str::trim).enumerate() {
        if part.is_empty() {
            continue;
        }
        if i > 0 && !line.is_empty() {
            line.push(' ');
        }
        line.push_str(part);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_messages_become_one_line() {
        let err = anyhow::anyhow!("invalid wasm:\n  bad magic\r\n").context("deploy failed");
        assert_eq!(one_line(&err), "deploy failed: invalid wasm: bad magic");
    }

    #[test]
    fn typed_failures_choose_the_exit_code() {
        assert_eq!(exit_code(&FunctionFailed("x".into()).into()), 3);
        assert_eq!(exit_code(&Usage("x".into()).into()), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
        let wrapped = anyhow::Error::from(FunctionFailed("trap".into())).context("invoke");
        assert_eq!(exit_code(&wrapped), 3);
    }
}
