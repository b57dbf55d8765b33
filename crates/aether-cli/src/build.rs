//! Building a function crate for `wasm32-wasip1` with cargo and finding the
//! module it produced.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// The target every Aether function is built for.
pub const TARGET: &str = "wasm32-wasip1";

/// A module built from a crate.
#[derive(Debug)]
pub struct Built {
    /// The binary target's name, the default function name.
    pub name: String,
    /// The `.wasm` file.
    pub wasm: PathBuf,
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

/// Builds the crate in `dir` in release mode for [`TARGET`]; cargo's
/// progress goes to stderr.
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
    let bin = binary_target(package)?;

    eprintln!("building {} for {TARGET} (release)", package.name);
    let status = tokio::process::Command::new(cargo())
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .args(["--package", &package.name, "--bin", &bin])
        // Our stdout is for results (`--json`): cargo's chatter goes to stderr.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .await
        .context("cannot run cargo (is Rust installed?)")?;
    if !status.success() {
        bail!(
            "building {} failed ({status}); is the target installed? `rustup target add {TARGET}`",
            package.name
        );
    }
    let wasm = metadata
        .target_directory
        .join(TARGET)
        .join("release")
        .join(format!("{bin}.wasm"));
    if !wasm.is_file() {
        bail!(
            "cargo succeeded but {} is missing; does the crate build a binary?",
            wasm.display()
        );
    }
    Ok(Built { name: bin, wasm })
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

    #[test]
    fn the_binary_is_the_only_one_or_the_package_named_one() {
        assert_eq!(binary_target(&package(&["f"])).unwrap(), "f");
        assert_eq!(binary_target(&package(&["a", "pkg"])).unwrap(), "pkg");
        assert!(binary_target(&package(&["a", "b"])).is_err());
        assert!(binary_target(&package(&[])).is_err());
    }
}
