//! `aether deploy PATH`: uploads a module (built first when PATH is a
//! crate) to the control plane, which makes it a new version.

use std::collections::BTreeMap;
use std::path::Path;

use aether_proto::LimitsSpec;
use aether_proto::control::{DeployRequest, DeployResponse, FunctionKind};
use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode};

use crate::build;
use crate::cli::DeployArgs;
use crate::client::Client;
use crate::error::Usage;
use crate::output;

/// From this size on, a module without args, env or outbound hosts is sent
/// raw with `PUT` (base64 would add a third), and uploads show a progress
/// bar.
const LARGE_UPLOAD: usize = 1 << 20;
/// Upload chunk: small enough for a smooth progress bar, large enough to
/// cost nothing.
const CHUNK: usize = 64 << 10;

/// Runs `aether deploy`.
pub async fn run(args: DeployArgs, control: &Client, json: bool) -> anyhow::Result<()> {
    // Everything that can be checked locally is, before a long build.
    let env = parse_env(&args.env)?;
    let limits = LimitsSpec {
        timeout: args.timeout.clone(),
        memory: args.memory.clone(),
    };
    limits.parse().map_err(|e| Usage(e.to_string()))?;
    if let Some(name) = &args.name {
        super::check_name(name)?;
    }

    let (default_name, wasm) = load_module(&args.path).await?;
    let name = match args.name.clone() {
        Some(n) => n,
        None => {
            aether_proto::validate_function_name(&default_name).map_err(|e| {
                Usage(format!(
                    "cannot use {default_name:?} from {} as the function name ({e}); pass --name",
                    args.path.display()
                ))
            })?;
            default_name
        }
    };

    let raw = args.args.is_empty()
        && env.is_empty()
        && args.allow_outbound.is_empty()
        && wasm.len() >= LARGE_UPLOAD;
    // Each request is made anew for every control-plane URL tried: a large
    // body is streamed (behind a progress bar) and cannot be sent twice.
    // A deploy tried again on another replica after a timeout may have
    // been applied by the first one; sending it again is safe, because an
    // identical deploy is answered 200 "unchanged" at the same version
    // instead of 201 with a new one.
    let response = if raw {
        let mut query = Vec::new();
        if let Some(t) = &limits.timeout {
            query.push(("timeout", t.clone()));
        }
        if let Some(m) = &limits.memory {
            query.push(("memory", m.clone()));
        }
        let body = Bytes::from(wasm);
        control
            .send_with(Method::PUT, &format!("/api/functions/{name}"), |req| {
                let req = req.query(&query).header(CONTENT_TYPE, "application/wasm");
                with_body(req, body.clone(), &name)
            })
            .await?
    } else {
        let body = DeployRequest {
            name: name.clone(),
            wasm_b64: base64::engine::general_purpose::STANDARD.encode(&wasm),
            args: args.args.clone(),
            env,
            limits: (limits != LimitsSpec::default()).then_some(limits),
            allowed_outbound_hosts: args.allow_outbound.clone(),
        };
        let body = Bytes::from(serde_json::to_vec(&body)?);
        control
            .send_with(Method::POST, "/api/functions", |req| {
                let req = req.header(CONTENT_TYPE, "application/json");
                with_body(req, body.clone(), &name)
            })
            .await?
    };
    let created = response.status() == StatusCode::CREATED;
    let deployed: DeployResponse = control.parse(response).await?;
    if json {
        let mut value = serde_json::to_value(&deployed)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("created".into(), created.into());
        }
        return output::json(&value);
    }
    let what = if created {
        format!(
            "deployed {} version {}",
            deployed.function_id, deployed.version
        )
    } else {
        format!(
            "{} is unchanged at version {}",
            deployed.function_id, deployed.version
        )
    };
    // Commands keep the line they always had; an HTTP function says how
    // it is called.
    let kind = match deployed.kind {
        FunctionKind::Command => String::new(),
        FunctionKind::Http => format!("http: /fn/{}/…, ", deployed.function_id),
    };
    println!(
        "{what} ({kind}sha256 {}, {} KiB)",
        deployed.sha256, deployed.size_kb
    );
    Ok(())
}

/// The module and its default function name: the file stem of a `.wasm`
/// file, or the binary name of a crate (built first).
async fn load_module(path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (name, file) = if meta.is_dir() {
        let built = build::build_crate(path).await?;
        (built.name, built.wasm)
    } else {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (stem, path.to_owned())
    };
    let wasm = tokio::fs::read(&file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    Ok((name, wasm))
}

/// `KEY=VALUE` pairs into a map; a key may not be empty.
fn parse_env(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                env.insert(key.to_owned(), value.to_owned());
            }
            _ => {
                return Err(Usage(format!("--env {pair:?} must be KEY=VALUE")).into());
            }
        }
    }
    Ok(env)
}

/// Attaches the body; a large one is streamed in chunks behind a progress
/// bar (indicatif draws it only when stderr is a terminal).
fn with_body(req: RequestBuilder, body: Bytes, name: &str) -> RequestBuilder {
    let len = body.len();
    if len < LARGE_UPLOAD {
        return req.body(body);
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("uploading {name}"));
    let chunks: Vec<Bytes> = (0..len)
        .step_by(CHUNK)
        .map(|start| body.slice(start..(start + CHUNK).min(len)))
        .collect();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        bar.inc(chunk.len() as u64);
        if bar.position() >= bar.length().unwrap_or(0) {
            bar.finish_and_clear();
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    req.header(CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_split_at_the_first_equals_sign() {
        let env = parse_env(&["A=1".into(), "B=x=y".into(), "C=".into()]).unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "x=y");
        assert_eq!(env["C"], "");
        for bad in ["A", "=1"] {
            let err = parse_env(&[bad.into()]).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "{bad}");
        }
    }
}
