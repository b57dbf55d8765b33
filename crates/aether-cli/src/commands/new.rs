//! `aether new NAME`: a Rust function crate from a template, building to
//! `wasm32-wasip1` with `aether-guest`.
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
    /// The `aether-guest` dependency of the crate's Cargo.toml.
    aether_guest: String,
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
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if global.json {
        return output::json(&Created {
            name: args.name,
            path: dir,
            aether_guest: guest,
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
