//! `aether new NAME`: a Rust function crate from a template, building to
//! `wasm32-wasip1` with `aether-guest`. `aether new --http NAME`: an HTTP
//! function instead, a `wasi:http` component for `wasm32-wasip2` depending
//! on the `wasi` crate of crates.io only (see [`http_files`]).
//!
//! aether-guest is published on no registry, so where the crate finds it
//! depends on where it is made:
//!
//! - Inside an Aether checkout (an ancestor holds `crates/aether-guest`): a
//!   path dependency on that crate, so examples and tests made there build
//!   against the code being worked on.
//! - Anywhere else: a copy in `vendor/aether-guest`, the crate's source as
//!   this binary was built with it ([`include_str!`]), with a standalone
//!   manifest (the workspace's versions written out instead of
//!   `workspace = true`) and the licence. The function then builds with
//!   crates.io alone (serde, serde_json) and uses the aether-guest of the
//!   CLI that made it. A version requirement would fail to resolve, and a
//!   git dependency would need the repository reachable and could differ
//!   from this CLI. The copy is a member of the crate's own workspace; a
//!   unit test keeps its manifest in step with the real one.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};

use super::check_name;
use crate::cli::{GlobalArgs, NewArgs};
use crate::output;

const CARGO_TOML: &str = r#"[package]
name = "__NAME__"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
aether-guest = __GUEST__
serde = { version = "1", features = ["derive"] }

# A workspace of its own, so the crate builds wherever it was created.
# Delete this table to make it a member of an enclosing workspace.
[workspace]

# Small, fast modules: an edge compiles a function once and instantiates it
# for every request, so size and start-up matter more than build time.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
"#;

const CARGO_CONFIG: &str = r#"# Aether functions are WASI preview-1 commands.
[build]
target = "wasm32-wasip1"
"#;

const MAIN_RS: &str = r#"//! __NAME__: an Aether function. The request input arrives on stdin (the
//! `input` JSON of `aether invoke --input`), and what is written to stdout
//! is the response. Deploy it with `aether deploy .`.

#[derive(serde::Deserialize, Default)]
struct Input {
    name: Option<String>,
}

fn main() {
    // Missing or malformed input falls back to the defaults.
    let input: Input = aether_guest::input_json().unwrap_or_default();
    let name = input.name.as_deref().unwrap_or("world");
    aether_guest::output(format!("Hello, {name}!"));
}
"#;

const GITIGNORE: &str = "/target\n";

/// `aether new --http`: a `wasi:http` component. `aether deploy` builds a
/// `cdylib` crate for wasm32-wasip2 (crate/build.rs).
const HTTP_CARGO_TOML: &str = r#"[package]
name = "__NAME__"
version = "0.1.0"
edition = "2024"
publish = false

# A component exporting wasi:http/incoming-handler: a library, not a binary.
[lib]
crate-type = ["cdylib"]

[dependencies]
wasi = "0.14"

# A workspace of its own, so the crate builds wherever it was created.
# Delete this table to make it a member of an enclosing workspace.
[workspace]

# Small, fast components: an edge compiles a function once and instantiates
# it for every request, so size and start-up matter more than build time.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
"#;

const HTTP_CARGO_CONFIG: &str = r#"# Aether HTTP functions are wasi:http components (WASI preview 2).
[build]
target = "wasm32-wasip2"
"#;

const HTTP_LIB_RS: &str = r#"//! __NAME__: an Aether HTTP function, a `wasi:http` component. An edge runs
//! it for every request to `/fn/__NAME__/...`, with the path after the
//! function's name (`/` for none) and the query string. It answers with
//! what it was sent. Deploy it with `aether deploy .`, call it with
//! `aether call __NAME__ /some/path -d 'hello'`.

use std::io::{Read as _, Write as _};

use wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Handler);

/// The largest request body read; a longer one is answered 413.
const MAX_BODY: u64 = 1 << 20;

struct Handler;

impl wasi::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (status, text) = match read_body(&request) {
            Ok(body) => {
                let method = request.method();
                let method = method_name(&method);
                let target = request.path_with_query().unwrap_or_else(|| "/".into());
                let body = String::from_utf8_lossy(&body);
                (200, format!("Hello from __NAME__! {method} {target}\n{body}"))
            }
            Err((status, why)) => (status, format!("{why}\n")),
        };
        respond(response_out, status, &text);
    }
}

/// The request body, read in chunks; an error is a status and a reason.
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, (u16, String)> {
    let body = request
        .consume()
        .map_err(|()| (500, "the request body was taken already".to_owned()))?;
    let mut stream = body
        .stream()
        .map_err(|()| (500, "the request body stream was taken already".to_owned()))?;
    let mut bytes = Vec::new();
    stream
        .by_ref()
        .take(MAX_BODY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| (400, format!("cannot read the request body: {e}")))?;
    if bytes.len() as u64 > MAX_BODY {
        return Err((413, format!("the request body is over {MAX_BODY} bytes")));
    }
    Ok(bytes)
}

/// Answers `status` with a text body. If the response cannot be made, the
/// edge is told (it answers an error itself); once sent, a body that cannot
/// be written (the client left) is nobody's to hear about.
fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::new();
    let response = match headers.set("content-type", &[b"text/plain; charset=utf-8".to_vec()]) {
        Ok(()) => OutgoingResponse::new(headers),
        Err(e) => return fail(out, format!("cannot set content-type: {e:?}")),
    };
    if response.set_status_code(status).is_err() {
        return fail(out, format!("invalid status {status}"));
    }
    let Ok(body) = response.body() else {
        return fail(out, "the response body was taken already".into());
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = body.write() {
        let _ = stream.write_all(text.as_bytes());
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(body, None);
}

fn fail(out: ResponseOutparam, why: String) {
    ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(why))));
}

/// `GET`, `POST`, ... as sent.
fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}
"#;

/// Where a crate made outside a checkout keeps its copy of aether-guest.
const VENDORED_GUEST: &str = "vendor/aether-guest";

/// The manifest of the copy: `crates/aether-guest/Cargo.toml` with the
/// workspace's values written out (`__VERSION__` is this CLI's version),
/// `[lints]` left out (the function's workspace has none) and
/// `publish = false` added (a copy is not the crate).
/// `the_vendored_manifest_matches_the_real_one` checks it.
const GUEST_CARGO_TOML: &str = r#"# A copy of aether-guest __VERSION__ made by `aether new`: the crate is
# published on no registry, so the function builds with crates.io alone.
# Its source is crates/aether-guest of the Aether repository (Apache-2.0,
# see LICENSE).
[package]
name = "aether-guest"
description = "Write Aether functions in Rust: read the request input, write the output"
version = "__VERSION__"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"
publish = false

[features]
default = ["json"]
json = ["dep:serde", "dep:serde_json"]

[dependencies]
serde = { version = "1", features = ["derive"], optional = true }
serde_json = { version = "1", optional = true }
"#;

/// The source of aether-guest, copied unchanged. Read from outside this
/// package, like the licence: the CLI builds from a checkout (it is not
/// published; its path dependencies already tie it to one).
const GUEST_LIB_RS: &str = include_str!("../../../aether-guest/src/lib.rs");

/// Aether's licence, which covers aether-guest: Apache-2.0 asks that
/// copies of the work carry it.
const GUEST_LICENSE: &str = include_str!("../../../../LICENSE");

/// What `aether new --json` prints.
#[derive(Debug, serde::Serialize)]
struct Created {
    name: String,
    path: PathBuf,
    /// How the function is called: `command` or `http`.
    kind: &'static str,
    /// The `aether-guest` dependency of the crate's Cargo.toml (commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    aether_guest: Option<String>,
}

/// Runs `aether new`.
pub fn run(args: NewArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists; choose another name or --path",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if args.http {
        write_files(&dir, http_files(&args.name))?;
        if global.json {
            return output::json(&Created {
                name: args.name,
                path: dir,
                kind: "http",
                aether_guest: None,
            });
        }
        println!(
            "created HTTP function crate {} in {}",
            args.name,
            dir.display()
        );
        println!("next:");
        println!("  rustup target add wasm32-wasip2   # once");
        println!("  aether deploy {}", dir.display());
        println!("  aether call {} /hello -d 'some body'", args.name);
        return Ok(());
    }
    let abs = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let checkout_guest = find_guest_crate(&abs);
    let guest_dir = match &checkout_guest {
        Some(guest_dir) => relative(&abs, guest_dir),
        None => PathBuf::from(VENDORED_GUEST),
    };
    let guest = format!("{{ path = {:?} }}", guest_dir.to_string_lossy());
    let mut files = vec![
        (
            PathBuf::from("Cargo.toml"),
            CARGO_TOML
                .replace("__NAME__", &args.name)
                .replace("__GUEST__", &guest),
        ),
        (PathBuf::from(".cargo/config.toml"), CARGO_CONFIG.to_owned()),
        (
            PathBuf::from("src/main.rs"),
            MAIN_RS.replace("__NAME__", &args.name),
        ),
        (PathBuf::from(".gitignore"), GITIGNORE.to_owned()),
    ];
    if checkout_guest.is_none() {
        files.extend(vendored_guest());
    }
    write_files(&dir, files)?;
    if global.json {
        return output::json(&Created {
            name: args.name,
            path: dir,
            kind: "command",
            aether_guest: Some(guest),
        });
    }
    println!("created function crate {} in {}", args.name, dir.display());
    if checkout_guest.is_none() {
        println!(
            "aether-guest {} is copied into {}",
            env!("CARGO_PKG_VERSION"),
            dir.join(VENDORED_GUEST).display()
        );
    }
    println!("next:");
    println!("  aether deploy {}", dir.display());
    println!(
        "  aether invoke {} --input '{{\"name\":\"Ada\"}}'",
        args.name
    );
    Ok(())
}

/// Writes `files` (paths relative to `dir`), making directories as needed.
fn write_files(dir: &Path, files: Vec<(PathBuf, String)>) -> anyhow::Result<()> {
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The files of an HTTP function crate (`aether new --http`): a `cdylib`
/// depending on the `wasi` crate, whose `wasi::http::proxy::export!` makes
/// it a `wasi:http/proxy` component, built for wasm32-wasip2.
fn http_files(name: &str) -> Vec<(PathBuf, String)> {
    vec![
        (
            PathBuf::from("Cargo.toml"),
            HTTP_CARGO_TOML.replace("__NAME__", name),
        ),
        (
            PathBuf::from(".cargo/config.toml"),
            HTTP_CARGO_CONFIG.to_owned(),
        ),
        (
            PathBuf::from("src/lib.rs"),
            HTTP_LIB_RS.replace("__NAME__", name),
        ),
        (PathBuf::from(".gitignore"), GITIGNORE.to_owned()),
    ]
}

/// The files of the aether-guest copy, relative to the function crate.
fn vendored_guest() -> [(PathBuf, String); 3] {
    let dir = Path::new(VENDORED_GUEST);
    [
        (
            dir.join("Cargo.toml"),
            GUEST_CARGO_TOML.replace("__VERSION__", env!("CARGO_PKG_VERSION")),
        ),
        (dir.join("src/lib.rs"), GUEST_LIB_RS.to_owned()),
        (dir.join("LICENSE"), GUEST_LICENSE.to_owned()),
    ]
}

/// `crates/aether-guest` of an Aether checkout containing `dir`, if any:
/// inside the repository the template uses the local crate.
fn find_guest_crate(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|root| {
        let guest = root.join("crates").join("aether-guest");
        let manifest = std::fs::read_to_string(guest.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|l| l.trim() == r#"name = "aether-guest""#)
            .then_some(guest)
    })
}

/// The path from directory `from` to `to`, both absolute.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_then_descend() {
        assert_eq!(
            relative(
                Path::new("/r/examples/f"),
                Path::new("/r/crates/aether-guest")
            ),
            PathBuf::from("../../crates/aether-guest")
        );
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r/crates/g")),
            PathBuf::from("crates/g")
        );
    }

    #[test]
    fn the_template_is_valid_toml() {
        let text = CARGO_TOML
            .replace("__NAME__", "f")
            .replace("__GUEST__", "{ path = \"../g\" }");
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("f"));
        let _: toml::Table = toml::from_str(CARGO_CONFIG).unwrap();
    }

    #[test]
    fn the_http_template_is_a_cdylib_for_wasip2() {
        let files = http_files("my-fn");
        let text = |name: &str| {
            files
                .iter()
                .find(|(p, _)| p == Path::new(name))
                .map(|(_, t)| t.clone())
                .unwrap()
        };
        let manifest: toml::Table = toml::from_str(&text("Cargo.toml")).unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("my-fn"));
        assert_eq!(manifest["lib"]["crate-type"][0].as_str(), Some("cdylib"));
        assert_eq!(manifest["dependencies"]["wasi"].as_str(), Some("0.14"));
        let config: toml::Table = toml::from_str(&text(".cargo/config.toml")).unwrap();
        assert_eq!(config["build"]["target"].as_str(), Some("wasm32-wasip2"));
        let lib = text("src/lib.rs");
        assert!(lib.contains("/fn/my-fn/") && !lib.contains("__NAME__"));
        assert!(
            !lib.contains("unwrap()") && !lib.contains("expect("),
            "no panics"
        );
    }

    /// The Aether checkout this crate is part of.
    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn read_toml(path: &Path) -> toml::Table {
        let text = std::fs::read_to_string(path).unwrap();
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `crates/aether-guest/Cargo.toml` with what it inherits from the
    /// workspace written out, as cargo reads it: `key.workspace = true`
    /// takes the workspace's value, a dependency's `features` add to the
    /// workspace's.
    fn inherited_guest_manifest() -> toml::Table {
        use toml::Value;
        let root = read_toml(&repo().join("Cargo.toml"));
        let workspace = root["workspace"].as_table().unwrap();
        let mut guest = read_toml(&repo().join("crates/aether-guest/Cargo.toml"));
        let inherits = |v: &Value| v.get("workspace").and_then(Value::as_bool) == Some(true);
        let package = guest["package"].as_table_mut().unwrap();
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = workspace["package"][key.as_str()].clone();
            }
        }
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = guest.get_mut(section).and_then(Value::as_table_mut) else {
                continue;
            };
            for (name, spec) in deps.iter_mut() {
                if !inherits(spec) {
                    continue;
                }
                let mut resolved = match &workspace["dependencies"][name.as_str()] {
                    Value::String(version) => {
                        toml::Table::from_iter([("version".to_owned(), version.clone().into())])
                    }
                    other => other.as_table().unwrap().clone(),
                };
                for (key, value) in spec.as_table().unwrap() {
                    match key.as_str() {
                        "workspace" => {}
                        "features" => {
                            let features = resolved
                                .entry("features")
                                .or_insert_with(|| Value::Array(Vec::new()))
                                .as_array_mut()
                                .unwrap();
                            features.extend(value.as_array().unwrap().iter().cloned());
                        }
                        _ => {
                            resolved.insert(key.clone(), value.clone());
                        }
                    }
                }
                *spec = Value::Table(resolved);
            }
        }
        guest
    }

    #[test]
    fn the_vendored_manifest_matches_the_real_one() {
        let mut expected = inherited_guest_manifest();
        // The copy's workspace is the function's, which has no lints.
        expected.remove("lints");
        assert_eq!(
            expected["package"]["version"].as_str(),
            Some(env!("CARGO_PKG_VERSION")),
            "aether-guest and the CLI share the workspace's version"
        );
        let (_, text) = &vendored_guest()[0];
        let mut vendored: toml::Table = toml::from_str(text).unwrap();
        let publish = vendored["package"]
            .as_table_mut()
            .unwrap()
            .remove("publish");
        assert_eq!(publish.and_then(|p| p.as_bool()), Some(false));
        assert_eq!(vendored, expected, "update GUEST_CARGO_TOML");
    }

    #[test]
    fn the_vendored_copy_holds_every_file_of_the_crate() {
        let crate_dir = repo().join("crates/aether-guest");
        let mut real = Vec::new();
        let mut pending = vec![crate_dir.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    real.push(path.strip_prefix(&crate_dir).unwrap().to_owned());
                }
            }
        }
        real.sort();
        let mut copied: Vec<PathBuf> = vendored_guest()
            .into_iter()
            .map(|(path, _)| path.strip_prefix(VENDORED_GUEST).unwrap().to_owned())
            .filter(|path| path != Path::new("LICENSE"))
            .collect();
        copied.sort();
        assert_eq!(
            copied, real,
            "a new file in aether-guest needs a copy in vendored_guest"
        );
    }
}
