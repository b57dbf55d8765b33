//! Docker is not available where these tests run, so the packaging is
//! checked against the binaries instead: every `AETHER_*` variable that
//! `Dockerfile.*` and `docker-compose.yml` set is one the binary reads
//! (the same clap definitions `--help` prints), the resulting configuration
//! of every container is valid, ports agree, edges point at the control
//! plane, and the images' HEALTHCHECK command succeeds against real servers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

use crate::{Stack, repo};

/// Which binary an image runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binary {
    Control,
    Edge,
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
    /// the flags clap maps them to); returns its port.
    fn load(self, env: &BTreeMap<String, String>) -> u16 {
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
                aether_control::Config::load(&cli)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
                    .port
            }
            Binary::Edge => {
                let flags = <aether_engine::Flags as clap::Parser>::try_parse_from(&argv)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                aether_engine::EngineConfig::load(&flags)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
                    .port
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

#[test]
fn dockerfiles_build_run_and_configure_the_right_binary() {
    let rust_version = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap();
    for file in ["Dockerfile.control", "Dockerfile.edge"] {
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

        let mut env = dockerfile_env(&instrs);
        assert_eq!(env.get("AETHER_HOST").map(String::as_str), Some("0.0.0.0"));
        // 0.0.0.0 needs tokens, which the operator passes at run time: both
        // for the control plane, the node token for an edge attached to one.
        if binary == Binary::Control {
            env.insert("AETHER_ADMIN_TOKEN".into(), "a".into());
        }
        env.insert("AETHER_NODE_TOKEN".into(), "n".into());
        let port = binary.load(&env);
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

#[test]
fn compose_services_match_the_binaries() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
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
        let port = binary.load(&env);
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

        match binary {
            Binary::Control => {
                assert_eq!(secrets["AETHER_ADMIN_TOKEN"], "AETHER_ADMIN_TOKEN");
                node_token_var = Some(secrets["AETHER_NODE_TOKEN"].clone());
                control_port = Some((name.to_owned(), port));
            }
            Binary::Edge => {
                let (control, cport) = control_port.clone().expect("control first");
                assert_eq!(
                    env["AETHER_CONTROL_URL"],
                    format!("http://{control}:{cport}"),
                    "{name}"
                );
                assert_eq!(
                    env["AETHER_ADVERTISE_URL"],
                    format!("http://{name}:{port}"),
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
    }
}

#[test]
fn the_healthchecks_pass_against_real_servers_and_fail_without_them() {
    let stack = Stack::start();
    let port_of = |url: &str| url.rsplit(':').next().unwrap().to_owned();
    for (file, url) in [
        ("Dockerfile.control", &stack.control_url),
        ("Dockerfile.edge", &stack.edge_url),
    ] {
        let command = healthcheck_command(&instructions(&repo().join(file)));
        let run = |port: &str| {
            Command::new(&command[0])
                .args(&command[1..])
                .env("AETHER_PORT", port)
                .output()
                .unwrap()
        };
        let up = run(&port_of(url));
        assert!(
            up.status.success(),
            "{file}: healthcheck failed against {url}: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!run(&closed.to_string()).status.success(), "{file}");
    }
}
