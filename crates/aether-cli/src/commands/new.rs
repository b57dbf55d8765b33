//! `aether new NAME`: a Rust function crate from a template, building to
//! `wasm32-wasip1` with `aether-guest`.

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

/// What `aether new --json` prints.
#[derive(Debug, serde::Serialize)]
struct Created {
    name: String,
    path: PathBuf,
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
    std::fs::create_dir_all(dir.join("src"))
        .and_then(|()| std::fs::create_dir_all(dir.join(".cargo")))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let abs = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let guest = match find_guest_crate(&abs) {
        Some(guest_dir) => {
            let rel = relative(&abs, &guest_dir);
            format!("{{ path = {:?} }}", rel.to_string_lossy())
        }
        None => format!("{:?}", env!("CARGO_PKG_VERSION")),
    };
    let files = [
        (
            "Cargo.toml",
            CARGO_TOML
                .replace("__NAME__", &args.name)
                .replace("__GUEST__", &guest),
        ),
        (".cargo/config.toml", CARGO_CONFIG.to_owned()),
        ("src/main.rs", MAIN_RS.replace("__NAME__", &args.name)),
        (".gitignore", GITIGNORE.to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
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
    println!("next:");
    println!("  aether deploy {}", dir.display());
    println!(
        "  aether invoke {} --input '{{\"name\":\"Ada\"}}'",
        args.name
    );
    Ok(())
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
}
