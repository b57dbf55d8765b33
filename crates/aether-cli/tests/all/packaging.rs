//! Docker is not available where these tests run, so the packaging is
//! checked against the binaries instead: every `AETHER_*` variable that
//! `Dockerfile.*`, `docker-compose.yml` and `docker-compose.https.yml` set
//! is one the binary reads (the same clap definitions `--help` prints), the
//! resulting configuration of every container is valid, ports agree, edges
//! point at the control plane, containers are locked down and sized for
//! their defaults, the build context leaves build outputs out, and the
//! images' HEALTHCHECK command succeeds against real servers, over plain
//! HTTP and over HTTPS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_http::logging::LogFormat;
use aether_http::tls::TlsFiles;
use base64::Engine as _;
use clap::CommandFactory as _;

use crate::{Stack, repo};

const DOCKERFILES: [&str; 2] = ["Dockerfile.control", "Dockerfile.edge"];

/// Which binary an image runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binary {
    Control,
    Edge,
}

/// What a container's configuration comes to, as the binary loads it.
#[derive(Debug)]
struct Loaded {
    port: u16,
    /// The shared `--log-format` flag.
    log_format: LogFormat,
    tls: Option<TlsFiles>,
    ca_cert: Option<PathBuf>,
    /// Edge: the control plane it registers with.
    control_url: Option<String>,
    /// Edge: the URL it gives the control plane.
    advertise_url: Option<String>,
    /// Files and directories the server writes.
    writes: Vec<PathBuf>,
    /// The least memory the container needs at this configuration (see
    /// `Binary::load`).
    memory_needed: u64,
}

impl Binary {
    fn of_dockerfile(name: &str) -> Binary {
        match name {
            "Dockerfile.control" => Binary::Control,
            "Dockerfile.edge" => Binary::Edge,
            other => panic!("unknown Dockerfile {other}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Binary::Control => "aether-control",
            Binary::Edge => "aether-engine",
        }
    }

    fn command(self) -> clap::Command {
        match self {
            Binary::Control => aether_control::Cli::command(),
            Binary::Edge => aether_engine::Flags::command(),
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Binary::Control => aether_control::config::DEFAULT_PORT,
            Binary::Edge => aether_engine::config::DEFAULT_PORT,
        }
    }

    /// Loads the configuration the binary would build from `env` (given as
    /// the flags clap maps them to).
    fn load(self, env: &BTreeMap<String, String>) -> Loaded {
        let command = self.command();
        let mut argv = vec![self.name().to_owned()];
        for (key, value) in env {
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == key.as_str()))
                .unwrap_or_else(|| panic!("{} does not read {key}", self.name()));
            let long = arg.get_long().expect("env args have a long flag");
            if arg.get_action().takes_values() {
                argv.push(format!("--{long}={value}"));
            } else {
                // A switch: the value must be one clap reads as true.
                assert!(
                    ["true", "1", "yes", "on"].contains(&value.as_str()),
                    "{key}={value} is not a true value for the switch --{long}"
                );
                argv.push(format!("--{long}"));
            }
        }
        match self {
            Binary::Control => {
                let cli = <aether_control::Cli as clap::Parser>::try_parse_from(&argv)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                let c =
                    aether_control::Config::load(&cli).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                Loaded {
                    port: c.port,
                    log_format: cli.server.log_format,
                    tls: c.tls,
                    ca_cert: c.ca_cert,
                    control_url: None,
                    advertise_url: None,
                    writes: vec![c.db_path, c.blob_dir],
                    // A deploy holds its module several times over (the
                    // base64 body, the decoded bytes, validation): room for
                    // two of the largest at once, plus the process.
                    memory_needed: 2 * 3 * c.max_module_size + (128 << 20),
                }
            }
            Binary::Edge => {
                let flags = <aether_engine::Flags as clap::Parser>::try_parse_from(&argv)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                let c = aether_engine::EngineConfig::load(&flags)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                Loaded {
                    port: c.port,
                    log_format: flags.server.log_format,
                    tls: c.tls,
                    ca_cert: c.ca_cert,
                    control_url: c.control_url,
                    advertise_url: c.advertise_url,
                    writes: vec![c.func_dir, c.data_dir],
                    // Every execution slot running a function that uses
                    // its whole default memory limit, plus output buffers,
                    // pooled memory kept resident, the module cache and the
                    // process: half a GiB.
                    memory_needed: c.max_concurrency as u64 * c.limits.memory_bytes + (512 << 20),
                }
            }
        }
    }
}

/// A Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// `ENV A=1 B=2` pairs of the last stage.
fn dockerfile_env(instrs: &[(String, String)]) -> BTreeMap<String, String> {
    let last_from = instrs.iter().rposition(|(op, _)| op == "FROM").unwrap();
    instrs[last_from..]
        .iter()
        .filter(|(op, _)| op == "ENV")
        .flat_map(|(_, rest)| rest.split_whitespace())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn one<'a>(instrs: &'a [(String, String)], op: &str) -> &'a str {
    let found: Vec<&str> = instrs
        .iter()
        .filter(|(o, _)| o == op)
        .map(|(_, r)| r.as_str())
        .collect();
    assert!(!found.is_empty(), "no {op}");
    found[found.len() - 1]
}

fn healthcheck_command(instrs: &[(String, String)]) -> Vec<String> {
    let rest = one(instrs, "HEALTHCHECK");
    let json = &rest[rest.find("CMD [").expect("HEALTHCHECK CMD [...]") + 4..];
    serde_json::from_str(json).expect("HEALTHCHECK CMD is a JSON array")
}

/// The tokens an operator passes at run time: 0.0.0.0 needs them, both
/// for the control plane, the node token for an edge attached to one.
fn with_run_time_tokens(
    binary: Binary,
    mut env: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if binary == Binary::Control {
        env.insert("AETHER_ADMIN_TOKEN".into(), "a".into());
    }
    env.insert("AETHER_NODE_TOKEN".into(), "n".into());
    env
}

#[test]
fn dockerfiles_build_run_and_configure_the_right_binary() {
    let rust_version = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap();
    for file in DOCKERFILES {
        let binary = Binary::of_dockerfile(file);
        let instrs = instructions(&repo().join(file));
        let froms: Vec<&str> = instrs
            .iter()
            .filter(|(op, _)| op == "FROM")
            .map(|(_, r)| r.as_str())
            .collect();
        assert_eq!(
            froms,
            [
                format!("rust:{rust_version}-bookworm AS build").as_str(),
                "debian:bookworm-slim"
            ],
            "{file}: builder on the workspace's Rust, runtime on the same Debian"
        );
        let package = match binary {
            Binary::Control => "aether-control",
            Binary::Edge => "aether-engine",
        };
        let run = instrs
            .iter()
            .find(|(op, r)| op == "RUN" && r.contains("cargo build"))
            .map(|(_, r)| r.as_str())
            .unwrap();
        assert!(
            run.contains(&format!("cargo build --release --locked -p {package}"))
                && run.contains(&format!("target/release/{}", binary.name())),
            "{file}: {run}"
        );
        assert_eq!(
            one(&instrs, "ENTRYPOINT"),
            format!("[\"{}\"]", binary.name()),
            "{file}"
        );
        let user = one(&instrs, "USER");
        assert!(user != "root" && user != "0", "{file} runs as root");

        let env = dockerfile_env(&instrs);
        assert_eq!(env.get("AETHER_HOST").map(String::as_str), Some("0.0.0.0"));
        let port = binary.load(&with_run_time_tokens(binary, env)).port;
        assert_eq!(port, binary.default_port(), "{file}");
        assert_eq!(one(&instrs, "EXPOSE"), port.to_string(), "{file}");
        let health = healthcheck_command(&instrs);
        assert!(
            health
                .join(" ")
                .contains(&format!("${{AETHER_PORT:-{port}}}")),
            "{file}: {health:?}"
        );
    }
}

/// Regression: the control plane's image set `AETHER_LOG_JSON=true` (an
/// older, hidden spelling) while the edge's set `AETHER_LOG_FORMAT=json`.
#[test]
fn both_images_log_json_through_the_same_variable() {
    for file in DOCKERFILES {
        let binary = Binary::of_dockerfile(file);
        let env = dockerfile_env(&instructions(&repo().join(file)));
        let log: Vec<(&str, &str)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("AETHER_LOG"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(log, [("AETHER_LOG_FORMAT", "json")], "{file}");
        let loaded = binary.load(&with_run_time_tokens(binary, env));
        assert_eq!(loaded.log_format, LogFormat::Json, "{file}");
    }
}

/// `.dockerignore` patterns, as Docker reads them: each matches a path
/// relative to the context or any of its parent directories (an excluded
/// directory is left out whole); `*` stays within one path segment, `**`
/// spans any number of them, none included.
struct DockerIgnore(Vec<Vec<String>>);

impl DockerIgnore {
    fn read(path: &Path) -> DockerIgnore {
        let text = std::fs::read_to_string(path).unwrap();
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                // Exceptions would need Docker's last-match-wins rule.
                assert!(!l.starts_with('!'), "{l}: exceptions are not modelled");
                l.trim_matches('/').split('/').map(str::to_owned).collect()
            })
            .collect();
        DockerIgnore(patterns)
    }

    fn excludes(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        (1..=segments.len()).any(|n| {
            self.0.iter().any(|p| {
                let p: Vec<&str> = p.iter().map(String::as_str).collect();
                glob(&p, &segments[..n])
            })
        })
    }
}

fn glob(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (None, None) => true,
        (Some((&"**", rest)), _) => {
            glob(rest, path) || (!path.is_empty() && glob(pattern, &path[1..]))
        }
        (Some((p, rest)), Some((s, tail))) => segment_matches(p, s) && glob(rest, tail),
        _ => false,
    }
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == segment,
        Some((head, tail)) => segment.strip_prefix(head).is_some_and(|rest| {
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| segment_matches(tail, &rest[i..]))
        }),
    }
}

/// Every file under `dir`, relative to the repository.
/// The tracked files under `dir` (sources; build outputs in the tree,
/// such as a guest's `target/`, are not sources).
fn files_under(dir: &Path, out: &mut Vec<String>) {
    let listed = std::process::Command::new("git")
        .arg("-C")
        .arg(repo())
        .arg("ls-files")
        .arg("--")
        .arg(dir.strip_prefix(repo()).unwrap())
        .output()
        .expect("git runs");
    assert!(listed.status.success(), "git ls-files failed");
    out.extend(
        String::from_utf8(listed.stdout)
            .expect("UTF-8 paths")
            .lines()
            .map(str::to_owned),
    );
}

#[test]
fn the_build_context_leaves_out_build_outputs_and_keeps_the_sources() {
    let ignore = DockerIgnore::read(&repo().join(".dockerignore"));
    for output in [
        ".git/HEAD",
        "target/release/aether-engine",
        "examples/target/wasm32-wasip1/release/hello_world.wasm",
        // cargo-fuzz: its build, the inputs it generated, the crashes it
        // found, coverage runs (fuzz/.gitignore).
        "fuzz/target/x86_64-unknown-linux-gnu/release/decode_manifest",
        "fuzz/corpus/decode_manifest/0a1b2c",
        "fuzz/artifacts/decode_manifest/crash-0a1b2c",
        "fuzz/coverage/decode_manifest/coverage.profdata",
        // bench/run.sh: wasmtime-cli installed once, the guests' builds.
        "bench/.tools/bin/wasmtime",
        "bench/wasi-http-hello/target/wasm32-wasip2/release/wasi_http_hello.wasm",
        // Standalone guest workspaces' builds (wasm32-wasip2 components).
        "examples/http_hello/target/wasm32-wasip2/release/http_hello.wasm",
        "examples/http_hello/target/release/.fingerprint/x",
        "crates/aether-fixtures/guests/http_hostile/target/release/.fingerprint/x",
        // Local runs and built modules.
        "data/control.db",
        ".aether/config.toml",
        "functions/hello.wasm",
        "crates/aether-runtime/artifact.cwasm",
        // Keys of the HTTPS variant.
        "certs/control.key",
        "certs-ca/ca.key",
    ] {
        assert!(ignore.excludes(output), "{output} is sent to the builder");
    }

    // What `cargo build --locked -p …` in the Dockerfiles reads.
    let mut sources = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    files_under(&repo().join("crates"), &mut sources);
    assert!(sources.len() > 50, "{sources:?}");
    for source in &sources {
        assert!(
            !ignore.excludes(source),
            "{source} is left out of the build"
        );
    }
}

/// Bytes of a compose size (`512M`, `2G`, `1gb`): binary units, as Docker
/// reads them.
fn compose_bytes(text: &str) -> u64 {
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.strip_suffix('b').unwrap_or(&lower);
    let (number, shift) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 30),
        _ => (trimmed, 0),
    };
    number
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("size {text}"))
        << shift
}

/// A volume of a service: `source:target[:ro]` or the long syntax.
#[derive(Debug)]
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

fn mounts(service: &serde_yaml::Value) -> Vec<Mount> {
    let Some(volumes) = service["volumes"].as_sequence() else {
        return Vec::new();
    };
    volumes
        .iter()
        .map(|v| match v {
            serde_yaml::Value::String(short) => {
                let mut parts = short.split(':');
                let source = parts.next().unwrap().to_owned();
                let target = parts.next().expect("source:target").to_owned();
                Mount {
                    source,
                    target,
                    read_only: parts.next() == Some("ro"),
                }
            }
            long => Mount {
                source: long["source"].as_str().expect("source").to_owned(),
                target: long["target"].as_str().expect("target").to_owned(),
                read_only: long["read_only"].as_bool() == Some(true),
            },
        })
        .collect()
}

/// `over` merged into `base` as `docker compose -f base -f over` does for
/// the keys used here: mappings key by key, lists appended.
fn merge(base: &mut serde_yaml::Value, over: &serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (key, value) in o {
                match b.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        b.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (serde_yaml::Value::Sequence(b), serde_yaml::Value::Sequence(o)) => {
            b.extend(o.iter().cloned());
        }
        (b, o) => *b = o.clone(),
    }
}

fn read_yaml(file: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Checks the services of a compose file (the base file, or it with an
/// override merged in) against the binaries; `scheme` is how they call
/// each other. Returns each service's loaded configuration and mounts.
fn check_services(
    compose: &serde_yaml::Value,
    scheme: &str,
) -> BTreeMap<String, (Loaded, Vec<Mount>)> {
    let services = compose["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(names, ["control", "edge-1", "edge-2"]);

    // Which image each service runs: built here, or the image another
    // service builds.
    let mut built: BTreeMap<String, String> = BTreeMap::new();
    for (_, svc) in services {
        if let Some(dockerfile) = svc["build"]["dockerfile"].as_str() {
            assert!(repo().join(dockerfile).is_file(), "{dockerfile}");
            let image = svc["image"]
                .as_str()
                .expect("built services name their image");
            built.insert(image.to_owned(), dockerfile.to_owned());
        }
    }

    let mut out = BTreeMap::new();
    let mut control_port = None;
    let mut node_token_var = None;
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let image = svc["image"].as_str().unwrap();
        let dockerfile = built
            .get(image)
            .unwrap_or_else(|| panic!("{name}: image {image} is built by no service"));
        let binary = Binary::of_dockerfile(dockerfile);
        assert!(
            svc.get("command").is_none(),
            "{name}: configure with environment"
        );

        let mut env = dockerfile_env(&instructions(&repo().join(dockerfile)));
        let mut secrets = BTreeMap::new();
        for (key, value) in svc["environment"].as_mapping().expect("environment map") {
            let key = key.as_str().unwrap().to_owned();
            let value = match value {
                serde_yaml::Value::String(s) => s.clone(),
                other => panic!("{name}: {key} must be a string, got {other:?}"),
            };
            // `${VAR:?message}`: required from the operator's environment.
            let value = match value.strip_prefix("${") {
                Some(rest) => {
                    let var = rest.split([':', '}']).next().unwrap().to_owned();
                    secrets.insert(key.clone(), var.clone());
                    format!("placeholder-for-{var}")
                }
                None => value,
            };
            env.insert(key, value);
        }
        let loaded = binary.load(&env);
        let port = loaded.port;
        let ports: Vec<&str> = svc["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .map(|p| p.as_str().expect("ports as strings"))
            .collect();
        assert_eq!(ports.len(), 1, "{name}");
        let (host_part, container) = ports[0].rsplit_once(':').unwrap();
        assert_eq!(container, port.to_string(), "{name}: published port");
        assert!(host_part.starts_with("127.0.0.1:"), "{name}: loopback only");

        // Locked down: nothing but its volumes is writable (the server's
        // files are all in one), no capabilities, no privilege gain.
        assert_eq!(svc["read_only"], true, "{name}: read-only root filesystem");
        let cap_drop: Vec<&str> = svc["cap_drop"]
            .as_sequence()
            .map(|s| s.iter().filter_map(|c| c.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(cap_drop, ["ALL"], "{name}: no capabilities");
        assert!(
            svc["security_opt"]
                .as_sequence()
                .is_some_and(|s| s.iter().any(|o| o == "no-new-privileges:true")),
            "{name}: no-new-privileges"
        );
        let mounts = mounts(svc);
        for path in &loaded.writes {
            assert!(
                mounts
                    .iter()
                    .any(|m| !m.read_only && path.starts_with(&m.target)),
                "{name} writes {} outside its writable volumes {mounts:?}",
                path.display()
            );
        }
        // Limits that `docker compose` applies without swarm, as large as
        // the configuration needs.
        let limits = &svc["deploy"]["resources"]["limits"];
        let cpus: f64 = limits["cpus"]
            .as_str()
            .expect("cpus as a string")
            .parse()
            .unwrap();
        assert!(cpus >= 1.0, "{name}: {cpus} CPUs");
        let memory = compose_bytes(limits["memory"].as_str().expect("memory limit"));
        assert!(
            memory >= loaded.memory_needed,
            "{name}: memory limit {memory} B below the {} B its configuration can use",
            loaded.memory_needed
        );

        match binary {
            Binary::Control => {
                assert_eq!(secrets["AETHER_ADMIN_TOKEN"], "AETHER_ADMIN_TOKEN");
                node_token_var = Some(secrets["AETHER_NODE_TOKEN"].clone());
                control_port = Some((name.to_owned(), port));
            }
            Binary::Edge => {
                let (control, cport) = control_port.clone().expect("control first");
                assert_eq!(
                    loaded.control_url,
                    Some(format!("{scheme}://{control}:{cport}")),
                    "{name}"
                );
                assert_eq!(
                    loaded.advertise_url,
                    Some(format!("{scheme}://{name}:{port}")),
                    "{name}: reachable by the control plane under its service name"
                );
                assert_eq!(
                    Some(&secrets["AETHER_NODE_TOKEN"]),
                    node_token_var.as_ref(),
                    "{name}: same node token as the control plane"
                );
                assert_eq!(env["AETHER_NODE_ID"], name);
                assert_eq!(
                    svc["depends_on"]["control"]["condition"], "service_healthy",
                    "{name}"
                );
            }
        }
        out.insert(name.to_owned(), (loaded, mounts));
    }
    out
}

#[test]
fn compose_services_match_the_binaries_and_are_locked_down_and_limited() {
    let services = check_services(&read_yaml("docker-compose.yml"), "http");
    for (name, (loaded, _)) in services {
        assert_eq!(loaded.tls, None, "{name}");
    }
}

#[test]
fn the_https_variant_serves_and_calls_https_with_certificates_from_a_read_only_mount() {
    let over = read_yaml("docker-compose.https.yml");
    let mut compose = read_yaml("docker-compose.yml");
    merge(&mut compose, &over);
    let services = check_services(&compose, "https");
    let dir = Path::new("/etc/aether/tls");
    for (name, (loaded, mounts)) in &services {
        assert_eq!(
            loaded.tls,
            Some(TlsFiles {
                cert: dir.join(format!("{name}.crt")),
                key: dir.join(format!("{name}.key")),
            }),
            "{name}: its own certificate, which names it"
        );
        // The control plane calls the edges (notifications), the edges
        // call the control plane: both trust the CA that signed them.
        assert_eq!(loaded.ca_cert, Some(dir.join("ca.pem")), "{name}");
        // The directory, not single files: a renewal renamed into place
        // reaches the container.
        let certs: Vec<&Mount> = mounts
            .iter()
            .filter(|m| Path::new(&m.target) == dir)
            .collect();
        assert!(
            certs.len() == 1 && certs[0].read_only && certs[0].source == "./certs",
            "{name}: ./certs mounted read-only at {}: {mounts:?}",
            dir.display()
        );
        assert!(
            over["services"][name.as_str()]["volumes"][0]["bind"]["create_host_path"] == false,
            "{name}: a missing ./certs is an error, not an empty directory"
        );
    }
}

/// The TLS 1.3 ClientHello the images' healthcheck sends when
/// `AETHER_TLS_CERT` is set (base64 in the Dockerfiles), field by field.
/// No client randomness is needed: the check only waits for the first
/// bytes of the ServerHello and hangs up.
fn client_hello() -> Vec<u8> {
    fn u16_len(body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len()).unwrap().to_be_bytes();
        [&len[..], body].concat()
    }
    fn u8_len(body: &[u8]) -> Vec<u8> {
        [&[u8::try_from(body.len()).unwrap()][..], body].concat()
    }
    fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
        [&kind.to_be_bytes()[..], &u16_len(body)].concat()
    }
    const X25519: [u8; 2] = [0x00, 0x1d];
    // Any point serves for a key share; x25519's base point (u = 9) keeps
    // the shared secret away from zero, which servers refuse.
    let mut public_key = [0u8; 32];
    public_key[0] = 9;
    let extensions = [
        // supported_versions: TLS 1.3
        extension(0x002b, &u8_len(&[0x03, 0x04])),
        // supported_groups: x25519
        extension(0x000a, &u16_len(&X25519)),
        // key_share: one x25519 share
        extension(
            0x0033,
            &u16_len(&[&X25519[..], &u16_len(&public_key)].concat()),
        ),
        // signature_algorithms: ECDSA P-256/P-384, RSA-PSS SHA-256/384,
        // Ed25519: the keys docs/packaging.md makes, and the usual others.
        extension(
            0x000d,
            &u16_len(&[0x04, 0x03, 0x05, 0x03, 0x08, 0x04, 0x08, 0x05, 0x08, 0x07]),
        ),
    ]
    .concat();
    let hello = [
        &[0x03, 0x03][..], // legacy_version: TLS 1.2
        &[0; 32],          // random
        &u8_len(&[]),      // legacy_session_id
        // cipher_suites: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305
        &u16_len(&[0x13, 0x01, 0x13, 0x02, 0x13, 0x03]),
        &u8_len(&[0]), // compression: none
        &u16_len(&extensions),
    ]
    .concat();
    let len = u32::try_from(hello.len()).unwrap().to_be_bytes();
    let handshake = [&[0x01][..], &len[1..], &hello].concat(); // client_hello
    [&[0x16, 0x03, 0x01][..], &u16_len(&handshake)].concat() // handshake record
}

#[test]
fn the_https_healthcheck_sends_the_client_hello_spelled_out_here() {
    let expected = base64::engine::general_purpose::STANDARD.encode(client_hello());
    for file in DOCKERFILES {
        let command = healthcheck_command(&instructions(&repo().join(file))).join(" ");
        assert!(
            command.contains(&format!("printf %s {expected} | base64 -d >&3")),
            "{file}: {command}\nexpected the ClientHello {expected}"
        );
    }
}

/// Runs an image's healthcheck command against `port`, with or without
/// `AETHER_TLS_CERT` in its environment; `true` when it passes.
fn healthcheck_passes(command: &[String], port: u16, tls: bool) -> bool {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .env("AETHER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if tls {
        cmd.env("AETHER_TLS_CERT", "/etc/aether/tls/server.crt");
    } else {
        cmd.env_remove("AETHER_TLS_CERT");
    }
    let mut child = cmd.spawn().unwrap();
    // Docker gives it 3 s (`--timeout`); a check that hangs is a failure
    // there, and a bug here.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} on port {port} (tls: {tls}) hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_healthchecks_pass_against_real_servers_and_fail_without_them() {
    let stack = Stack::start();
    let port_of = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    for (file, url) in [
        ("Dockerfile.control", &stack.control_url),
        ("Dockerfile.edge", &stack.edge_url),
    ] {
        let command = healthcheck_command(&instructions(&repo().join(file)));
        assert!(
            healthcheck_passes(&command, port_of(url), false),
            "{file}: healthcheck failed against {url}"
        );
        assert!(
            !healthcheck_passes(&command, closed_port(), false),
            "{file}"
        );
        // Told the server speaks HTTPS, the check wants a TLS handshake,
        // which a plain HTTP server does not give.
        assert!(!healthcheck_passes(&command, port_of(url), true), "{file}");
    }
}

#[test]
fn with_aether_tls_cert_the_healthchecks_pass_against_https_servers_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = aether_fixtures::pki::Ca::new(dir.path(), "ca");
    let cert = ca.server_cert(dir.path(), "server");
    let tls = TlsFiles {
        cert: cert.cert,
        key: cert.key,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (control, edge_port) = rt.block_on(async {
        let control = aether_e2e::TestControl::start_config(aether_control::Config {
            tls: Some(tls.clone()),
            ..aether_e2e::control_config(&dir.path().join("control"))
        })
        .await
        .expect("HTTPS control plane starts");
        let state = aether_engine::AppState::new(aether_engine::EngineConfig {
            port: 0,
            func_dir: dir.path().join("functions"),
            data_dir: dir.path().join("edge"),
            control_url: None,
            tls: Some(tls.clone()),
            ..aether_engine::EngineConfig::default()
        })
        .expect("HTTPS edge starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let edge_port = listener.local_addr().unwrap().port();
        tokio::spawn(aether_engine::serve(
            listener,
            state,
            std::future::pending(),
        ));
        (control, edge_port)
    });
    for (file, port) in [
        ("Dockerfile.control", control.addr.port()),
        ("Dockerfile.edge", edge_port),
    ] {
        let command = healthcheck_command(&instructions(&repo().join(file)));
        assert!(
            healthcheck_passes(&command, port, true),
            "{file}: TLS healthcheck failed against port {port}"
        );
        assert!(!healthcheck_passes(&command, closed_port(), true), "{file}");
        // Without AETHER_TLS_CERT the check speaks plain HTTP, which an
        // HTTPS server does not answer.
        assert!(!healthcheck_passes(&command, port, false), "{file}");
    }
    drop(control);
    rt.shutdown_timeout(Duration::from_secs(2));
}
