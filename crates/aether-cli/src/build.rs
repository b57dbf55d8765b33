//! Building a function crate with cargo and finding the `.wasm` file it
//! produced. What is built depends on the crate:
//!
//! - a binary (`src/main.rs`): a WASI command, for `wasm32-wasip1` (a
//!   preview-1 module), or for `wasm32-wasip2` (a preview-2 command
//!   component) when the crate's `.cargo/config.toml` (or one in a
//!   directory above it, or `CARGO_BUILD_TARGET`) says
//!   `target = "wasm32-wasip2"`;
//! - no binary but a `cdylib` library: a component, such as a `wasi:http`
//!   handler (`aether new --http`), always for `wasm32-wasip2`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// The target of WASI preview-1 commands, the default.
pub const TARGET: &str = "wasm32-wasip1";

/// The target of components: `wasi:http` handlers and preview-2 commands.
pub const TARGET_P2: &str = "wasm32-wasip2";

/// A module built from a crate.
#[derive(Debug, serde::Serialize)]
pub struct Built {
    /// The default function name: the binary's name, or the package's for
    /// a library.
    pub name: String,
    /// The `.wasm` file.
    pub wasm: PathBuf,
    /// The target it was built for ([`TARGET`] or [`TARGET_P2`]).
    pub target: &'static str,
}

/// What cargo is asked to build.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Artifact {
    /// `--bin NAME`: `NAME.wasm`.
    Bin(String),
    /// `--lib` of a `cdylib` crate: the library's name (with `_` for `-`)
    /// `.wasm`.
    Cdylib(String),
}

impl Artifact {
    /// The `.wasm` file's name.
    fn file(&self) -> String {
        match self {
            Artifact::Bin(name) => format!("{name}.wasm"),
            Artifact::Cdylib(name) => format!("{}.wasm", name.replace('-', "_")),
        }
    }

    /// The target to build it for, given the one the crate's cargo
    /// configuration names: a library is a component; a binary is a
    /// preview-2 command only when asked for.
    fn target(&self, configured: Option<&str>) -> &'static str {
        match (self, configured) {
            (Artifact::Cdylib(_), _) | (Artifact::Bin(_), Some(TARGET_P2)) => TARGET_P2,
            (Artifact::Bin(_), _) => TARGET,
        }
    }
}

/// The parts of `cargo metadata` we read.
#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The cargo to run: the one that runs us (`$CARGO`), else `cargo`.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds the crate in `dir` in release mode for the target it is made for
/// (see the module's documentation); cargo's progress goes to stderr.
pub async fn build_crate(dir: &Path) -> anyhow::Result<Built> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} has no Cargo.toml: pass a .wasm file or a function crate directory",
            dir.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let metadata = metadata(&manifest).await?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path == manifest)
        .ok_or_else(|| {
            let members: Vec<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
            anyhow::anyhow!(
                "{} is a workspace, not a crate; pass the directory of one of its crates ({})",
                dir.display(),
                members.join(", ")
            )
        })?;
    let artifact = artifact(package)?;
    let crate_dir = manifest.parent().unwrap_or(Path::new("."));
    let target = artifact.target(configured_target(crate_dir).as_deref());

    eprintln!("building {} for {target} (release)", package.name);
    let mut command = tokio::process::Command::new(cargo());
    command
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(&manifest)
        .args(["--package", &package.name]);
    let name = match &artifact {
        Artifact::Bin(bin) => {
            command.args(["--bin", bin]);
            bin.clone()
        }
        Artifact::Cdylib(_) => {
            command.arg("--lib");
            package.name.clone()
        }
    };
    let status = command
        // Our stdout is for results (`--json`): cargo's chatter goes to stderr.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .await
        .context("cannot run cargo (is Rust installed?)")?;
    if !status.success() {
        bail!(
            "building {} failed ({status}); is the target installed? `rustup target add {target}`",
            package.name
        );
    }
    let wasm = metadata
        .target_directory
        .join(target)
        .join("release")
        .join(artifact.file());
    if !wasm.is_file() {
        bail!(
            "cargo succeeded but {} is missing; does the crate build a binary or a cdylib?",
            wasm.display()
        );
    }
    Ok(Built { name, wasm, target })
}

/// The `build.target` a crate in `dir` is configured for: the
/// `CARGO_BUILD_TARGET` variable, else the nearest `.cargo/config.toml`
/// (or `.cargo/config`) in `dir` or a directory above it that sets one, as
/// cargo run from `dir` would read it. Only a single target (a string) is
/// taken.
fn configured_target(dir: &Path) -> Option<String> {
    if let Some(target) = std::env::var("CARGO_BUILD_TARGET")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Some(target.trim().to_owned());
    }
    dir.ancestors().find_map(|d| {
        ["config.toml", "config"].iter().find_map(|file| {
            let text = std::fs::read_to_string(d.join(".cargo").join(file)).ok()?;
            let config: toml::Table = toml::from_str(&text).ok()?;
            config
                .get("build")?
                .get("target")?
                .as_str()
                .map(str::to_owned)
        })
    })
}

async fn metadata(manifest: &Path) -> anyhow::Result<Metadata> {
    let out = tokio::process::Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest)
        .stderr(Stdio::piped())
        .output()
        .await
        .context("cannot run cargo (is Rust installed?)")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or_else(|| stderr.trim());
        bail!("cargo cannot read {}: {reason}", manifest.display());
    }
    serde_json::from_slice(&out.stdout).context("cannot parse `cargo metadata` output")
}

/// What to build of the crate: its binary, else its `cdylib` library.
fn artifact(package: &Package) -> anyhow::Result<Artifact> {
    let has_bin = package
        .targets
        .iter()
        .any(|t| t.kind.iter().any(|k| k == "bin"));
    if has_bin {
        return binary_target(package).map(Artifact::Bin);
    }
    match package
        .targets
        .iter()
        .find(|t| t.kind.iter().any(|k| k == "cdylib"))
    {
        Some(lib) => Ok(Artifact::Cdylib(lib.name.clone())),
        None => bail!(
            "crate {} has no binary (src/main.rs) and no cdylib library: an Aether function is a WASI command with a main, or a wasi:http component (`[lib] crate-type = [\"cdylib\"]`, see `aether new --http`)",
            package.name
        ),
    }
}

/// The crate's binary: the only one, or the one named like the package.
fn binary_target(package: &Package) -> anyhow::Result<String> {
    let bins: Vec<&Target> = package
        .targets
        .iter()
        .filter(|t| t.kind.iter().any(|k| k == "bin"))
        .collect();
    match bins.as_slice() {
        [] => bail!(
            "crate {} has no binary (src/main.rs): an Aether function is a WASI command with a main",
            package.name
        ),
        [only] => Ok(only.name.clone()),
        several => several
            .iter()
            .find(|t| t.name == package.name)
            .map(|t| t.name.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = several.iter().map(|t| t.name.as_str()).collect();
                anyhow::anyhow!(
                    "crate {} has several binaries ({}); build the one you want and deploy its .wasm file",
                    package.name,
                    names.join(", ")
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(bins: &[&str]) -> Package {
        Package {
            name: "pkg".into(),
            manifest_path: PathBuf::from("/x/Cargo.toml"),
            targets: bins
                .iter()
                .map(|b| Target {
                    name: (*b).into(),
                    kind: vec!["bin".into()],
                })
                .collect(),
        }
    }

    fn target(name: &str, kind: &str) -> Target {
        Target {
            name: name.into(),
            kind: vec![kind.into()],
        }
    }

    #[test]
    fn a_binary_is_a_command_and_a_cdylib_a_component() {
        let mut p = package(&["f"]);
        p.targets.push(target("pkg", "cdylib"));
        assert_eq!(
            artifact(&p).unwrap(),
            Artifact::Bin("f".into()),
            "bin first"
        );
        p.targets.remove(0);
        let lib = artifact(&p).unwrap();
        assert_eq!(lib, Artifact::Cdylib("pkg".into()));
        p.targets = vec![target("my-fn", "cdylib")];
        assert_eq!(artifact(&p).unwrap().file(), "my_fn.wasm");
        p.targets = vec![target("pkg", "lib")];
        let err = artifact(&p).unwrap_err().to_string();
        assert!(err.contains("no cdylib"), "{err}");

        let bin = Artifact::Bin("f".into());
        assert_eq!(bin.target(None), TARGET);
        assert_eq!(bin.target(Some("wasm32-wasip1")), TARGET);
        assert_eq!(bin.target(Some("wasm32-wasip2")), TARGET_P2);
        assert_eq!(bin.target(Some("x86_64-unknown-linux-gnu")), TARGET);
        assert_eq!(lib.target(None), TARGET_P2);
        assert_eq!(lib.target(Some("wasm32-wasip1")), TARGET_P2);
    }

    #[test]
    fn the_nearest_cargo_config_names_the_target() {
        if std::env::var_os("CARGO_BUILD_TARGET").is_some() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let inner = root.path().join("a/b");
        std::fs::create_dir_all(inner.join(".cargo")).unwrap();
        std::fs::create_dir_all(root.path().join(".cargo")).unwrap();
        std::fs::write(
            root.path().join(".cargo/config.toml"),
            "[build]\ntarget = \"wasm32-wasip2\"\n",
        )
        .unwrap();
        assert_eq!(
            configured_target(&inner).as_deref(),
            Some("wasm32-wasip2"),
            "from a directory above"
        );
        std::fs::write(inner.join(".cargo/config.toml"), "[build]\njobs = 1\n").unwrap();
        assert_eq!(
            configured_target(&inner).as_deref(),
            Some("wasm32-wasip2"),
            "a config without a target is skipped"
        );
        std::fs::write(
            inner.join(".cargo/config.toml"),
            "[build]\ntarget = \"wasm32-wasip1\"\n",
        )
        .unwrap();
        assert_eq!(configured_target(&inner).as_deref(), Some("wasm32-wasip1"));
    }

    #[test]
    fn the_binary_is_the_only_one_or_the_package_named_one() {
        assert_eq!(binary_target(&package(&["f"])).unwrap(), "f");
        assert_eq!(binary_target(&package(&["a", "pkg"])).unwrap(), "pkg");
        assert!(binary_target(&package(&["a", "b"])).is_err());
        assert!(binary_target(&package(&[])).is_err());
    }
}
