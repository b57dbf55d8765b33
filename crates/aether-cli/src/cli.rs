//! The command line: global options and one subcommand per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Shown at the end of `aether --help`.
const AFTER_HELP: &str = "\
Endpoints and token: flags, then AETHER_CONTROL_URL / AETHER_EDGE_URL / AETHER_TOKEN,
then the config file (~/.config/aether/config.toml or --config), then
http://127.0.0.1:9090 (control plane) and http://127.0.0.1:9091 (edge).

Exit codes: 0 ok, 1 error, 2 usage error, 3 the function ran and failed
(trap, timeout, limit, or a non-zero exit code).";

/// Deploy and run WebAssembly functions on Aether.
#[derive(Debug, Parser)]
#[command(name = "aether", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Control plane base URL [default: http://127.0.0.1:9090]; several
    /// replicas comma-separated (`http://a:9090,http://b:9090`): a request
    /// the first does not answer goes to the next.
    #[arg(
        long,
        global = true,
        env = "AETHER_CONTROL_URL",
        value_name = "URL[,URL...]"
    )]
    pub control_url: Option<String>,
    /// Edge base URL, for `invoke` and `call` [default: http://127.0.0.1:9091].
    #[arg(long, global = true, env = "AETHER_EDGE_URL", value_name = "URL")]
    pub edge_url: Option<String>,
    /// Admin bearer token of the control plane.
    #[arg(long, global = true, env = "AETHER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Extra CA certificate(s) (PEM) to trust for `https://` servers,
    /// beside the system's roots.
    #[arg(long, global = true, env = "AETHER_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Config file [default: ~/.config/aether/config.toml].
    #[arg(long, global = true, env = "AETHER_CLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a control plane and one edge locally until Ctrl-C.
    Up(UpArgs),
    /// Create a new Rust function crate from a template.
    New(NewArgs),
    /// Build a function crate and print where its .wasm file is.
    Build(BuildArgs),
    /// Deploy a .wasm file or a function crate directory (built first).
    Deploy(DeployArgs),
    /// Run a function on the edge and print its output.
    Invoke(InvokeArgs),
    /// Send an HTTP request to a function on the edge (`/fn/NAME/PATH`)
    /// and print the response body.
    Call(CallArgs),
    /// List functions, or show, remove or roll back one.
    #[command(alias = "fn")]
    Functions(FunctionsArgs),
    /// List the edge nodes known to the control plane, or remove one.
    Nodes(NodesArgs),
    /// Show events reported by the edges (oldest first).
    Events(EventsArgs),
}

/// `aether nodes [remove ID]`
#[derive(Debug, Args)]
pub struct NodesArgs {
    /// Without one: list.
    #[command(subcommand)]
    pub action: Option<NodesAction>,
}

/// `aether nodes <action>`
#[derive(Debug, Subcommand)]
pub enum NodesAction {
    /// List the nodes with their status.
    #[command(alias = "ls")]
    List,
    /// Forget a node and revoke its credential: its calls get 401 and it
    /// is no longer notified. It must join again (new credential) to
    /// come back.
    #[command(alias = "rm")]
    Remove {
        /// The node's id (`aether nodes` lists them).
        id: String,
    },
}

/// `aether up`
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory for the database, blobs and edge state.
    #[arg(long, default_value = ".aether")]
    pub dir: PathBuf,
    /// Control plane port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = aether_control::config::DEFAULT_PORT)]
    pub control_port: u16,
    /// Edge port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = aether_engine::config::DEFAULT_PORT)]
    pub edge_port: u16,
}

/// `aether new`
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Function (and crate) name: lowercase letters, digits, `_` and `-`.
    pub name: String,
    /// Where to create the crate [default: ./NAME].
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// An HTTP function: a `wasi:http` component (wasm32-wasip2) that
    /// answers requests to `/fn/NAME/...` on an edge, instead of a command
    /// run by `aether invoke`.
    #[arg(long)]
    pub http: bool,
}

/// `aether build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A directory with a Cargo.toml: a binary crate builds for
    /// wasm32-wasip1 (wasm32-wasip2 when its .cargo/config.toml says so),
    /// a `cdylib` crate (a wasi:http component) for wasm32-wasip2.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

/// `aether deploy`
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A `.wasm` file, or a directory with a Cargo.toml to build first (see
    /// `aether build`).
    pub path: PathBuf,
    /// Function name [default: the file stem or the crate's binary name].
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable of the function, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Argument after the function name (repeatable).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Wall-clock limit per invocation, e.g. `500ms`, `3s` [default: the edge's].
    #[arg(long)]
    pub timeout: Option<String>,
    /// Linear-memory limit, e.g. `16MB`, `64MiB` [default: the edge's].
    #[arg(long)]
    pub memory: Option<String>,
    /// Where the function's outbound HTTP may go (repeatable), e.g.
    /// `https://api.example.com`, `http://127.0.0.1:8080`,
    /// `https://*.example.com:8443` [default: nowhere].
    #[arg(long = "allow-outbound", value_name = "URL")]
    pub allow_outbound: Vec<String>,
}

/// `aether invoke`
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function.
    pub name: String,
    /// JSON input, written to the function's stdin as compact JSON.
    #[arg(long, value_name = "JSON", conflicts_with = "stdin")]
    pub input: Option<String>,
    /// Send this command's standard input as the function's stdin, as text.
    #[arg(long)]
    pub stdin: bool,
    /// Also print exit code, time, memory and cache source (on stderr).
    #[arg(long, short)]
    pub verbose: bool,
}

/// `aether call`
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The function.
    pub name: String,
    /// Path and query string the function sees, e.g. `/users/7?full=1`
    /// (sent to `/fn/NAME/users/7?full=1`).
    #[arg(default_value = "/")]
    pub path: String,
    /// HTTP method [default: GET, or POST with --data].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Request header (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body, sent as given; `@FILE` sends a file's bytes, `@-`
    /// standard input.
    #[arg(
        short = 'd',
        long = "data",
        value_name = "BODY|@FILE|@-",
        allow_hyphen_values = true
    )]
    pub data: Option<String>,
    /// Print the status line and the response headers before the body.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
}

/// `aether functions`
#[derive(Debug, Args)]
pub struct FunctionsArgs {
    /// Without one: list.
    #[command(subcommand)]
    pub action: Option<FunctionsAction>,
}

/// `aether functions <action>`
#[derive(Debug, Subcommand)]
pub enum FunctionsAction {
    /// List functions with their current version.
    #[command(alias = "ls")]
    List,
    /// Show a function with all its versions.
    Show {
        /// The function.
        name: String,
    },
    /// Remove a function (every version) from the control plane and the edges.
    #[command(alias = "delete")]
    Rm {
        /// The function.
        name: String,
    },
    /// Make an older version current again.
    Rollback {
        /// The function.
        name: String,
        /// The version to make current.
        version: u64,
    },
}

/// `aether events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep polling and print new events as they arrive (Ctrl-C stops).
    #[arg(long, short)]
    pub follow: bool,
    /// Only events concerning this function.
    #[arg(long)]
    pub function: Option<String>,
    /// Show at most the last N events.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Only events after this id (from an earlier listing).
    #[arg(long)]
    pub since: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli =
            Cli::try_parse_from(["aether", "functions", "show", "f", "--json", "--token", "t"])
                .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.token.as_deref(), Some("t"));
    }

    #[test]
    fn allow_outbound_repeats() {
        let cli = Cli::try_parse_from([
            "aether",
            "deploy",
            "f.wasm",
            "--allow-outbound",
            "https://api.example.com",
            "--allow-outbound",
            "http://127.0.0.1:8080",
        ])
        .unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("not a deploy")
        };
        assert_eq!(
            args.allow_outbound,
            ["https://api.example.com", "http://127.0.0.1:8080"]
        );
    }

    #[test]
    fn input_and_stdin_exclude_each_other() {
        let err =
            Cli::try_parse_from(["aether", "invoke", "f", "--input", "{}", "--stdin"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn call_takes_curl_like_options() {
        let cli = Cli::try_parse_from([
            "aether", "call", "f", "/a?b=1", "-X", "PUT", "-H", "x-a: 1", "-H", "x-b: 2", "-d",
            "-body-", "-i",
        ])
        .unwrap();
        let Command::Call(call) = cli.command else {
            panic!("not call: {:?}", cli.command);
        };
        assert_eq!(call.path, "/a?b=1");
        assert_eq!(call.method.as_deref(), Some("PUT"));
        assert_eq!(call.headers, ["x-a: 1", "x-b: 2"]);
        assert_eq!(call.data.as_deref(), Some("-body-"));
        assert!(call.include);
        let cli = Cli::try_parse_from(["aether", "call", "f"]).unwrap();
        let Command::Call(call) = cli.command else {
            panic!("not call: {:?}", cli.command);
        };
        assert_eq!(call.path, "/");
    }
}
