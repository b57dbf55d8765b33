//! Module loading for the edge: through the runtime's cache, with the load
//! time recorded in the edge's metrics when the module was not in memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aether_proto::CacheSource;
use aether_runtime::{CompileError, LoadedModule, ModuleHash, ModuleSource, Runtime};

use crate::metrics::EdgeMetrics;

/// Loads the module at `path` (blocking: it may read and compile).
pub fn load_module(
    runtime: &Runtime,
    metrics: Option<&EdgeMetrics>,
    hash: ModuleHash,
    path: &Path,
) -> Result<(Arc<LoadedModule>, ModuleSource), CompileError> {
    let started = Instant::now();
    let loaded = runtime.load(hash, || std::fs::read(path));
    if let (Some(m), Ok((_, source))) = (metrics, &loaded) {
        m.module_loaded(*source, started.elapsed());
    }
    loaded
}

/// Where a module came from, as the wire names it.
pub fn cache_source(source: ModuleSource) -> CacheSource {
    match source {
        ModuleSource::Memory => CacheSource::Memory,
        ModuleSource::Disk => CacheSource::Disk,
        ModuleSource::Compiled => CacheSource::Compiled,
    }
}

/// Removes the compiled artifacts of modules no function of `registry`
/// uses any more (a replaced version, a deleted function, a file gone from
/// `func_dir`, or leftovers from before a restart). Blocking I/O.
pub fn sweep_artifacts(runtime: &Runtime, registry: &crate::registry::Registry) {
    let used: std::collections::HashSet<ModuleHash> =
        registry.snapshot().iter().map(|e| e.hash).collect();
    let removed = runtime.retain_artifacts(&|hash| used.contains(hash));
    if removed > 0 {
        tracing::debug!(removed, "removed compiled artifacts no function uses");
    }
}
