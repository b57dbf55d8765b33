//! The function registry of this edge: which names it serves and the
//! sha256 of each one's module. Two kinds of entries live side by side:
//! *local* ones mirror `func_dir` (`<name>.wasm`, rescanned periodically
//! and on a request for an unknown name, so new and changed files are
//! served without a restart), *managed* ones come from the control plane
//! (they carry a version). A managed function hides a local file of the
//! same name; when it is deleted, the local file is served again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use aether_proto::control::FunctionKind;
use aether_proto::validate_function_name;
use aether_runtime::{EgressError, EgressPolicy, Limits, ModuleHash};

use crate::stats::ExecutionStats;

/// Identity of a file's current contents without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// One servable function.
#[derive(Debug)]
pub struct FunctionEntry {
    /// Function name.
    pub name: String,
    /// sha256 of its module.
    pub hash: ModuleHash,
    /// The module file.
    pub path: PathBuf,
    /// Deployed arguments after the name.
    pub args: Vec<String>,
    /// Deployed environment.
    pub env: Vec<(String, String)>,
    /// Limits of this function (the edge's defaults where it sets none).
    pub limits: Limits,
    /// How it is called, as the control plane recorded it; `command` for
    /// a file of `func_dir` (the module's real shape is known once it is
    /// loaded).
    pub kind: FunctionKind,
    /// Where its outbound HTTP may go (allow-list entries as deployed);
    /// empty for a file of `func_dir`: nowhere.
    pub allowed_outbound_hosts: Vec<String>,
    /// Version from the control plane (`None` in standalone mode).
    pub version: Option<u64>,
    /// Execution statistics, shared by every version of the name.
    pub stats: Arc<ExecutionStats>,
    stamp: Option<FileStamp>,
    /// `allowed_outbound_hosts` parsed, at the first request that needs it.
    egress: OnceLock<Result<Arc<EgressPolicy>, EgressError>>,
}

impl FunctionEntry {
    /// The outbound allow-list, parsed once per entry (the control plane
    /// refused bad entries at deploy; one that this edge cannot parse is
    /// an error at every call). No entries: the shared deny-all policy.
    pub fn egress(&self) -> Result<Arc<EgressPolicy>, EgressError> {
        if self.allowed_outbound_hosts.is_empty() {
            return Ok(EgressPolicy::shared_deny_all());
        }
        self.egress
            .get_or_init(|| EgressPolicy::new(&self.allowed_outbound_hosts).map(Arc::new))
            .clone()
    }

    /// True for a function the control plane installed (not a file of
    /// `func_dir`).
    pub fn is_managed(&self) -> bool {
        self.version.is_some()
    }
}

/// A function as the control plane describes it, to install on this edge.
#[derive(Debug, Clone)]
pub struct ManagedFunction {
    /// Function name.
    pub name: String,
    /// sha256 of its module.
    pub hash: ModuleHash,
    /// Where its verified module is stored.
    pub path: PathBuf,
    /// Arguments after the name.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Limits, the edge's defaults filled in.
    pub limits: Limits,
    /// How it is called.
    pub kind: FunctionKind,
    /// Where its outbound HTTP may go; empty: nowhere.
    pub allowed_outbound_hosts: Vec<String>,
    /// Version.
    pub version: u64,
}

/// What a scan changed.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// New or changed functions (worth compiling ahead of traffic).
    pub updated: Vec<Arc<FunctionEntry>>,
    /// Names that disappeared.
    pub removed: Vec<String>,
}

/// Name → function, read-mostly.
#[derive(Debug)]
pub struct Registry {
    func_dir: PathBuf,
    default_limits: Limits,
    functions: RwLock<HashMap<String, Arc<FunctionEntry>>>,
    stats: RwLock<HashMap<String, Arc<ExecutionStats>>>,
}

impl Registry {
    /// A registry over `func_dir` (created if missing).
    pub fn open(func_dir: &Path, default_limits: Limits) -> std::io::Result<Self> {
        std::fs::create_dir_all(func_dir)?;
        Ok(Registry {
            func_dir: func_dir.to_owned(),
            default_limits,
            functions: RwLock::default(),
            stats: RwLock::default(),
        })
    }

    fn stats_for(&self, name: &str) -> Arc<ExecutionStats> {
        if let Some(s) = self
            .stats
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return s.clone();
        }
        self.stats
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Every function's statistics, by name.
    pub fn all_stats(&self) -> Vec<(String, Arc<ExecutionStats>)> {
        self.stats
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }

    /// Every function now served.
    pub fn snapshot(&self) -> Vec<Arc<FunctionEntry>> {
        self.read().values().cloned().collect()
    }

    /// Name → version of the managed functions, for heartbeats.
    pub fn versions(&self) -> std::collections::BTreeMap<String, u64> {
        self.read()
            .values()
            .filter_map(|e| e.version.map(|v| (e.name.clone(), v)))
            .collect()
    }

    /// Installs (or atomically replaces) a managed function: a request
    /// runs either the entry it looked up or the new one, never a mix.
    pub fn install(&self, f: ManagedFunction) -> Arc<FunctionEntry> {
        let entry = Arc::new(FunctionEntry {
            stats: self.stats_for(&f.name),
            name: f.name.clone(),
            hash: f.hash,
            path: f.path,
            args: f.args,
            env: f.env,
            limits: f.limits,
            kind: f.kind,
            allowed_outbound_hosts: f.allowed_outbound_hosts,
            version: Some(f.version),
            stamp: None,
            egress: OnceLock::new(),
        });
        self.write().insert(f.name, entry.clone());
        entry
    }

    /// Every function the control plane installed.
    pub fn managed(&self) -> Vec<Arc<FunctionEntry>> {
        self.read()
            .values()
            .filter(|e| e.is_managed())
            .cloned()
            .collect()
    }

    /// Removes a function; returns what was served.
    pub fn remove(&self, name: &str) -> Option<Arc<FunctionEntry>> {
        let removed = self.write().remove(name);
        self.forget_stats(name);
        removed
    }

    /// Drops the statistics of a function no longer served (and with them
    /// its metric series: see `EdgeMetrics`), so a deleted name costs
    /// nothing after its last request.
    fn forget_stats(&self, name: &str) {
        self.stats
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// The directory this registry mirrors.
    pub fn func_dir(&self) -> &Path {
        &self.func_dir
    }

    /// The function called `name`, if known.
    pub fn get(&self, name: &str) -> Option<Arc<FunctionEntry>> {
        self.read().get(name).cloned()
    }

    /// Number of functions.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no function is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<FunctionEntry>>> {
        // Writers only swap whole entries; a panic cannot leave the map torn.
        self.functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<FunctionEntry>>> {
        self.functions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks at `<func_dir>/<name>.wasm` now (blocking I/O). Returns the
    /// entry if the file exists, updating the registry if it changed; a
    /// managed function of that name is returned as it is.
    pub fn refresh_one(&self, name: &str) -> std::io::Result<Option<Arc<FunctionEntry>>> {
        let existing = self.get(name);
        if let Some(managed) = existing.as_ref().filter(|e| e.is_managed()) {
            return Ok(Some(managed.clone()));
        }
        if validate_function_name(name).is_err() {
            return Ok(None);
        }
        let path = self.func_dir.join(format!("{name}.wasm"));
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.remove_local(name);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let stamp = Some(FileStamp::of(&meta));
        if let Some(existing) = existing
            && existing.stamp == stamp
        {
            return Ok(Some(existing));
        }
        let bytes = std::fs::read(&path)?;
        let entry = Arc::new(FunctionEntry {
            name: name.to_owned(),
            hash: ModuleHash::of(&bytes),
            path,
            args: Vec::new(),
            env: Vec::new(),
            limits: self.default_limits,
            kind: FunctionKind::Command,
            allowed_outbound_hosts: Vec::new(),
            version: None,
            stats: self.stats_for(name),
            stamp,
            egress: OnceLock::new(),
        });
        let mut functions = self.write();
        // A deploy may have installed the name since the look above.
        if let Some(managed) = functions.get(name).filter(|e| e.is_managed()) {
            return Ok(Some(managed.clone()));
        }
        functions.insert(name.to_owned(), entry.clone());
        Ok(Some(entry))
    }

    /// Removes `name` if it is a local function.
    fn remove_local(&self, name: &str) {
        let mut functions = self.write();
        if functions.get(name).is_some_and(|e| !e.is_managed()) {
            functions.remove(name);
            drop(functions);
            self.forget_stats(name);
        }
    }

    /// Rescans `func_dir` (blocking I/O): adds new files, refreshes changed
    /// ones, drops deleted ones. Files whose stem is not a valid function
    /// name are skipped with a warning.
    pub fn scan(&self) -> std::io::Result<ScanReport> {
        let (seen, mut report) = self.list_func_dir()?;
        self.drop_unseen(&seen, &mut report);
        Ok(report)
    }

    /// First half of a scan: registers or refreshes every module file in
    /// `func_dir`; returns the names seen.
    fn list_func_dir(&self) -> std::io::Result<(Vec<String>, ScanReport)> {
        let mut report = ScanReport::default();
        let mut seen = Vec::new();
        for dirent in std::fs::read_dir(&self.func_dir)? {
            let path = dirent?.path();
            if path.extension().is_none_or(|e| e != "wasm") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if self.get(name).is_some_and(|e| e.is_managed()) {
                seen.push(name.to_owned());
                continue;
            }
            if let Err(e) = validate_function_name(name) {
                tracing::warn!(path = %path.display(), error = %e, "skipping module with an invalid function name");
                continue;
            }
            let before = self.get(name).map(|e| e.hash);
            match self.refresh_one(name) {
                Ok(Some(entry)) => {
                    if before != Some(entry.hash) {
                        report.updated.push(entry);
                    }
                    seen.push(name.to_owned());
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read module file");
                }
            }
        }
        Ok((seen, report))
    }

    /// Second half of a scan: drops the functions whose file is gone.
    fn drop_unseen(&self, seen: &[String], report: &mut ScanReport) {
        // A set: with thousands of functions a list made this scan
        // quadratic, holding the registry's write lock (and so every
        // request's lookup) for ~100 ms every second at 10 000 functions.
        let seen: std::collections::HashSet<&str> = seen.iter().map(String::as_str).collect();
        self.write().retain(|name, entry| {
            // Not in the listing, but a request's `refresh_one` may have
            // added it after `read_dir` ran: drop it only if its file is
            // really gone now.
            let keep = entry.is_managed()
                || seen.contains(name.as_str())
                || self.func_dir.join(format!("{name}.wasm")).is_file();
            if !keep {
                report.removed.push(name.clone());
            }
            keep
        });
        for name in &report.removed {
            self.forget_stats(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_tracks_added_changed_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), Limits::default()).unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"one").unwrap();
        std::fs::write(dir.path().join("Bad Name.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let report = reg.scan().unwrap();
        assert_eq!(report.updated.len(), 1);
        assert_eq!(reg.len(), 1);
        let first = reg.get("a").unwrap().hash;

        std::fs::write(dir.path().join("a.wasm"), b"two!").unwrap();
        let report = reg.scan().unwrap();
        assert_eq!(report.updated.len(), 1);
        assert_ne!(reg.get("a").unwrap().hash, first);

        assert!(reg.scan().unwrap().updated.is_empty(), "nothing changed");
        assert_eq!(reg.all_stats().len(), 1, "statistics kept across versions");

        std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
        let report = reg.scan().unwrap();
        assert_eq!(report.removed, vec!["a".to_owned()]);
        assert!(reg.is_empty());
        assert!(
            reg.all_stats().is_empty(),
            "a removed function's statistics go too"
        );
    }

    #[test]
    fn a_scan_keeps_a_function_added_after_it_listed_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), Limits::default()).unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"one").unwrap();
        std::fs::write(dir.path().join("gone.wasm"), b"x").unwrap();
        assert!(reg.refresh_one("gone").unwrap().is_some());
        std::fs::remove_file(dir.path().join("gone.wasm")).unwrap();
        let (seen, mut report) = reg.list_func_dir().unwrap();
        // Between the listing and its end, a request registers `b`.
        std::fs::write(dir.path().join("b.wasm"), b"two").unwrap();
        assert!(reg.refresh_one("b").unwrap().is_some());
        reg.drop_unseen(&seen, &mut report);
        assert!(reg.get("b").is_some(), "b was dropped");
        assert!(reg.get("a").is_some());
        assert_eq!(report.removed, vec!["gone".to_owned()]);
        assert!(reg.get("gone").is_none());
    }

    #[test]
    fn managed_functions_carry_their_kind_and_hosts_and_local_files_are_commands() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), Limits::default()).unwrap();
        std::fs::write(dir.path().join("local.wasm"), b"x").unwrap();
        let local = reg.refresh_one("local").unwrap().unwrap();
        assert_eq!(local.kind, FunctionKind::Command);
        assert!(local.allowed_outbound_hosts.is_empty());
        let hosts = vec!["https://api.example.com".to_owned()];
        let managed = reg.install(ManagedFunction {
            name: "proxy".into(),
            hash: ModuleHash::of(b"component"),
            path: dir.path().join("component.wasm"),
            args: Vec::new(),
            env: Vec::new(),
            limits: Limits::default(),
            kind: FunctionKind::Http,
            allowed_outbound_hosts: hosts.clone(),
            version: 1,
        });
        assert_eq!(managed.kind, FunctionKind::Http);
        assert_eq!(reg.get("proxy").unwrap().allowed_outbound_hosts, hosts);
        // Parsed once and kept: the same policy at every call.
        let first = managed.egress().unwrap();
        assert!(!first.is_empty());
        assert!(Arc::ptr_eq(&first, &managed.egress().unwrap()));
        assert!(local.egress().unwrap().is_empty());
        // An entry this edge cannot parse is an error at every call.
        let bad = reg.install(ManagedFunction {
            name: "bad".into(),
            hash: ModuleHash::of(b"bad"),
            path: dir.path().join("bad.wasm"),
            args: Vec::new(),
            env: Vec::new(),
            limits: Limits::default(),
            kind: FunctionKind::Http,
            allowed_outbound_hosts: vec!["ftp://x".into()],
            version: 1,
        });
        assert!(bad.egress().is_err());
        assert!(bad.egress().is_err());
    }

    #[test]
    fn refresh_one_never_leaves_func_dir() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(&dir.path().join("functions"), Limits::default()).unwrap();
        std::fs::write(dir.path().join("secret.wasm"), b"x").unwrap();
        assert!(reg.refresh_one("../secret").unwrap().is_none());
        assert!(reg.refresh_one("secret").unwrap().is_none());
    }
}
