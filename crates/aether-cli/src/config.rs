//! Where the CLI talks to: endpoints and token from flags, `AETHER_*`
//! variables (clap reads both), the config file, then the defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::cli::GlobalArgs;

/// The control plane of a local stack (`aether up`).
pub const DEFAULT_CONTROL_URL: &str = "http://127.0.0.1:9090";
/// The edge of a local stack (`aether up`).
pub const DEFAULT_EDGE_URL: &str = "http://127.0.0.1:9091";

/// `~/.config/aether/config.toml`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Control plane base URL, or several replicas' comma-separated.
    pub control_url: Option<String>,
    /// Edge base URL.
    pub edge_url: Option<String>,
    /// Admin bearer token.
    pub token: Option<String>,
    /// Extra CA (PEM) for `https://` servers.
    pub ca_cert: Option<PathBuf>,
}

/// The effective endpoints and token.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Control plane base URLs (one, or several replicas of one control
    /// plane, tried in this order), without a trailing `/`.
    pub control_urls: Vec<String>,
    /// Edge base URL, without a trailing `/`.
    pub edge_url: String,
    /// Admin bearer token, if any.
    pub token: Option<String>,
    /// Extra CA (PEM) for `https://` servers, if any.
    pub ca_cert: Option<PathBuf>,
}

impl Endpoints {
    /// Merges flags/variables over the config file over the defaults.
    pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Endpoints> {
        let file = match &global.config {
            Some(path) => read_file(path)?,
            None => match default_path() {
                Some(path) if path.exists() => read_file(&path)?,
                _ => FileConfig::default(),
            },
        };
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let control_url = non_empty(&global.control_url)
            .or(file.control_url)
            .unwrap_or_else(|| DEFAULT_CONTROL_URL.to_owned());
        let edge_url = non_empty(&global.edge_url)
            .or(file.edge_url)
            .unwrap_or_else(|| DEFAULT_EDGE_URL.to_owned());
        Ok(Endpoints {
            control_urls: check_urls("control plane URL", &control_url)?,
            edge_url: check_url("edge URL", &edge_url)?,
            token: non_empty(&global.token).or(non_empty(&file.token)),
            ca_cert: global.ca_cert.clone().or(file.ca_cert),
        })
    }
}

/// `$XDG_CONFIG_HOME/aether/config.toml`, else `~/.config/aether/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("aether").join("config.toml"))
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines (it quotes the source); the
        // first one says what is wrong.
        let reason = e.message().to_owned();
        anyhow::anyhow!("invalid config file {}: {reason}", path.display())
    })
}

/// A comma-separated list of URLs, each checked by [`check_url`]; an
/// empty entry or a URL named twice is an error.
fn check_urls(what: &str, list: &str) -> anyhow::Result<Vec<String>> {
    let mut urls: Vec<String> = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        if entry.trim().is_empty() {
            bail!(
                "invalid {what} list {list:?}: entry {} is empty; separate URLs with single commas, e.g. http://a:9090,http://b:9090",
                i + 1
            );
        }
        let url = check_url(what, entry)?;
        if urls.contains(&url) {
            bail!("invalid {what} list {list:?}: {url} is named twice");
        }
        urls.push(url);
    }
    Ok(urls)
}

/// Accepts `http://` and `https://` URLs and drops a trailing `/`.
fn check_url(what: &str, url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("invalid {what} {url:?}: expected http://HOST:PORT");
    };
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        bail!("invalid {what} {url:?}: expected http://HOST:PORT");
    }
    match scheme {
        "http" | "https" => {}
        _ => bail!("invalid {what} {url:?}: expected http://HOST:PORT"),
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(config: Option<PathBuf>) -> GlobalArgs {
        GlobalArgs {
            config,
            ..GlobalArgs::default()
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "control_url = \"http://10.0.0.1:9090/\"\ntoken = \"from-file\"\n",
        )
        .unwrap();
        let mut args = global(Some(path));
        let e = Endpoints::resolve(&args).unwrap();
        assert_eq!(e.control_urls, ["http://10.0.0.1:9090"]);
        assert_eq!(e.edge_url, DEFAULT_EDGE_URL);
        assert_eq!(e.token.as_deref(), Some("from-file"));

        args.token = Some("flag".into());
        args.control_url = Some("http://localhost:1".into());
        let e = Endpoints::resolve(&args).unwrap();
        assert_eq!(e.control_urls, ["http://localhost:1"]);
        assert_eq!(e.token.as_deref(), Some("flag"));
    }

    #[test]
    fn bad_files_and_urls_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "contrl_url = \"x\"\n").unwrap();
        let err = Endpoints::resolve(&global(Some(path))).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("contrl_url") && !text.contains('\n'),
            "{text}"
        );

        let err = Endpoints::resolve(&global(Some(dir.path().join("missing.toml")))).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read config file"));

        for bad in ["127.0.0.1:9090", "ftp://x", "http://", "http://a b"] {
            assert!(check_url("control plane URL", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_control_url_may_list_several_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "control_url = \"http://10.0.0.1:9090/, http://10.0.0.2:9090\"\n",
        )
        .unwrap();
        let mut args = global(Some(path));
        let e = Endpoints::resolve(&args).unwrap();
        assert_eq!(
            e.control_urls,
            ["http://10.0.0.1:9090", "http://10.0.0.2:9090"]
        );

        args.control_url = Some("https://a:9090,https://b:9090/".into());
        let e = Endpoints::resolve(&args).unwrap();
        assert_eq!(
            e.control_urls,
            ["https://a:9090", "https://b:9090"],
            "the flag wins"
        );

        for (list, why) in [
            ("http://a:9090,,http://b:9090", "entry 2 is empty"),
            ("http://a:9090,", "entry 2 is empty"),
            ("http://a:9090, ,http://b:9090", "entry 2 is empty"),
            ("http://a:9090,b:9090", "expected http://HOST:PORT"),
            ("http://a:9090,http://a:9090/", "named twice"),
        ] {
            args.control_url = Some(list.into());
            let err = format!("{:#}", Endpoints::resolve(&args).unwrap_err());
            assert!(
                err.contains("control plane URL") && err.contains(why),
                "{list}: {err}"
            );
        }
    }
}
