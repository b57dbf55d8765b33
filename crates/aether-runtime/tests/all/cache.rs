//! Loading: validation errors, hash checks, the in-memory cache and the
//! on-disk artifacts.

use aether_runtime::{CompileError, ModuleHash, ModuleSource, Runtime, RuntimeConfig};

use crate::{ECHO, run, runtime};

fn load_bytes(rt: &Runtime, wasm: Vec<u8>) -> Result<ModuleSource, CompileError> {
    rt.load(ModuleHash::of(&wasm), || Ok(wasm)).map(|(_, s)| s)
}

#[test]
fn invalid_bytes_are_invalid_wasm() {
    let rt = runtime();
    let err = load_bytes(&rt, b"\0asm but not really".to_vec()).unwrap_err();
    assert!(matches!(err, CompileError::InvalidWasm { .. }), "{err}");
}

#[test]
fn unknown_import_is_refused_with_its_name() {
    let rt = runtime();
    let wasm =
        wat::parse_str(r#"(module (import "env" "now" (func)) (func (export "_start")))"#).unwrap();
    let err = load_bytes(&rt, wasm).unwrap_err();
    assert!(
        matches!(err, CompileError::NotCommand { ref reason } if reason.contains("env::now")),
        "{err}"
    );
}

#[test]
fn missing_start_is_refused() {
    let rt = runtime();
    let wasm = wat::parse_str(r#"(module (func (export "main")))"#).unwrap();
    let err = load_bytes(&rt, wasm).unwrap_err();
    assert!(
        matches!(err, CompileError::NotCommand { ref reason } if reason.contains("_start")),
        "{err}"
    );
}

#[test]
fn start_with_wrong_signature_is_refused() {
    let rt = runtime();
    let wasm = wat::parse_str(r#"(module (func (export "_start") (param i32)))"#).unwrap();
    let err = load_bytes(&rt, wasm).unwrap_err();
    assert!(matches!(err, CompileError::NotCommand { .. }), "{err}");
}

#[test]
fn wasi_import_with_wrong_type_is_refused() {
    let rt = runtime();
    let wasm = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i64))) (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let err = load_bytes(&rt, wasm).unwrap_err();
    assert!(matches!(err, CompileError::NotCommand { .. }), "{err}");
}

#[test]
fn bytes_that_do_not_match_the_hash_are_refused() {
    let rt = runtime();
    let wasm = wat::parse_str(ECHO).unwrap();
    let wrong = ModuleHash::of(b"something else");
    let err = rt.load(wrong, || Ok(wasm)).unwrap_err();
    assert!(matches!(err, CompileError::HashMismatch { .. }), "{err}");
}

#[test]
fn second_load_is_a_memory_hit_without_reading_bytes() {
    let rt = runtime();
    let wasm = wat::parse_str(ECHO).unwrap();
    let hash = ModuleHash::of(&wasm);
    assert_eq!(
        rt.load(hash, || Ok(wasm)).unwrap().1,
        ModuleSource::Compiled
    );
    let (_, source) = rt
        .load(hash, || panic!("a cached module must not be read again"))
        .unwrap();
    assert_eq!(source, ModuleSource::Memory);
    assert_eq!(rt.cached_modules(), 1);
}

fn disk_runtime(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        artifact_dir: Some(dir.to_owned()),
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[test]
fn restarted_runtime_loads_from_disk_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(ECHO).unwrap();
    let hash = ModuleHash::of(&wasm);
    {
        let rt = disk_runtime(dir.path());
        assert_eq!(
            rt.load(hash, || Ok(wasm.clone())).unwrap().1,
            ModuleSource::Compiled
        );
    }
    assert_eq!(artifacts(dir.path()).len(), 1);
    let rt = disk_runtime(dir.path());
    let (module, source) = rt
        .load(hash, || panic!("must come from the artifact"))
        .unwrap();
    assert_eq!(source, ModuleSource::Disk);
    assert_eq!(&run(&rt, &module, "warm").unwrap().stdout[..], b"warm");
}

#[test]
fn corrupt_artifact_is_discarded_and_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(ECHO).unwrap();
    let hash = ModuleHash::of(&wasm);
    disk_runtime(dir.path())
        .load(hash, || Ok(wasm.clone()))
        .unwrap();
    for (i, path) in artifacts(dir.path()).into_iter().enumerate() {
        let mut bytes = std::fs::read(&path).unwrap();
        if i % 2 == 0 {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
        }
        bytes.truncate(bytes.len() - 10);
        std::fs::write(&path, bytes).unwrap();
    }
    let rt = disk_runtime(dir.path());
    let (module, source) = rt.load(hash, || Ok(wasm.clone())).unwrap();
    assert_eq!(
        source,
        ModuleSource::Compiled,
        "the damaged artifact was not trusted"
    );
    assert_eq!(&run(&rt, &module, "ok").unwrap().stdout[..], b"ok");
    // A fresh, valid artifact replaced it.
    let rt = disk_runtime(dir.path());
    assert_eq!(
        rt.load(hash, || Ok(wasm.clone())).unwrap().1,
        ModuleSource::Disk
    );
}

#[test]
fn foreign_file_in_artifact_dir_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(ECHO).unwrap();
    let hash = ModuleHash::of(&wasm);
    disk_runtime(dir.path())
        .load(hash, || Ok(wasm.clone()))
        .unwrap();
    // Replace the artifact with arbitrary bytes of a plausible size.
    for path in artifacts(dir.path()) {
        std::fs::write(&path, vec![0x42; 4096]).unwrap();
    }
    let rt = disk_runtime(dir.path());
    assert_eq!(
        rt.load(hash, || Ok(wasm.clone())).unwrap().1,
        ModuleSource::Compiled
    );
}

/// `ECHO` made distinct by a custom section (same code, other hash).
fn echo_copy(i: u8) -> Vec<u8> {
    let mut wasm = wat::parse_str(ECHO).unwrap();
    // Custom section id 0: size 3, name length 1, name "x", payload `i`.
    wasm.extend_from_slice(&[0, 3, 1, b'x', i]);
    wasm
}

fn small_cache_runtime(dir: &std::path::Path, budget: u64) -> Runtime {
    Runtime::new(RuntimeConfig {
        artifact_dir: Some(dir.to_owned()),
        cache_size: 1,
        module_memory_budget: budget,
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn a_module_pushed_out_of_the_linked_cache_comes_back_from_memory_without_disk() {
    let dir = tempfile::tempdir().unwrap();
    let rt = small_cache_runtime(dir.path(), u64::MAX);
    let (a, b) = (echo_copy(1), echo_copy(2));
    let (ha, hb) = (ModuleHash::of(&a), ModuleHash::of(&b));
    assert_eq!(load_bytes(&rt, a).unwrap(), ModuleSource::Compiled);
    assert_eq!(load_bytes(&rt, b).unwrap(), ModuleSource::Compiled);
    assert_eq!(rt.cached_modules(), 1, "cache_size 1 links one module");
    assert_eq!(rt.held_modules().0, 2, "both stay in memory");
    // Neither the wasm nor the artifacts are needed any more.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for hash in [ha, hb, ha] {
        let module = rt
            .load_cached(&hash)
            .expect("a held module is linked without I/O");
        assert_eq!(&run(&rt, &module, "back").unwrap().stdout[..], b"back");
        let (_, source) = rt.load(hash, || panic!("must not read the wasm")).unwrap();
        assert_eq!(source, ModuleSource::Memory);
    }
    // Evicted (its function removed): gone from memory, and so from disk
    // (deleted above) the wasm is needed again.
    rt.evict(&ha);
    assert!(rt.load_cached(&ha).is_none());
    assert_eq!(rt.held_modules().0, 1);
}

#[test]
fn past_the_module_memory_budget_a_load_is_refused_until_memory_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    // Learn one module's size, then allow a budget of one and a half.
    let probe = small_cache_runtime(dir.path(), u64::MAX);
    load_bytes(&probe, echo_copy(1)).unwrap();
    let (_, one) = probe.held_modules();
    assert!(one > 0, "a held module has a size");
    drop(probe);
    let rt = small_cache_runtime(dir.path(), one + one / 2);
    assert_eq!(load_bytes(&rt, echo_copy(1)).unwrap(), ModuleSource::Disk);
    let err = load_bytes(&rt, echo_copy(2)).unwrap_err();
    match err {
        CompileError::OverBudget {
            needed,
            used,
            budget,
        } => assert_eq!((used, budget), (one, one + one / 2), "needed {needed}"),
        other => panic!("expected OverBudget, got {other}"),
    }
    assert!(err_text(&rt).contains("budget"));
    assert_eq!(
        rt.held_modules(),
        (1, one),
        "the refused module is not held"
    );
    // The first function goes: the second fits (from the artifact its
    // refused load compiled and wrote).
    rt.evict(&ModuleHash::of(&echo_copy(1)));
    assert_eq!(rt.held_modules(), (0, 0));
    assert_eq!(load_bytes(&rt, echo_copy(2)).unwrap(), ModuleSource::Disk);
    assert_eq!(rt.held_modules(), (1, one));
}

fn err_text(rt: &Runtime) -> String {
    load_bytes(rt, echo_copy(3)).unwrap_err().to_string()
}

#[test]
fn an_artifact_without_its_checksum_file_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(ECHO).unwrap();
    load_bytes(&disk_runtime(dir.path()), wasm.clone()).unwrap();
    let sums: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sum"))
        .collect();
    assert_eq!(sums.len(), 1);
    std::fs::remove_file(&sums[0]).unwrap();
    let rt = disk_runtime(dir.path());
    assert_eq!(
        load_bytes(&rt, wasm.clone()).unwrap(),
        ModuleSource::Compiled
    );
    // Written again, both files: the next start loads it.
    assert_eq!(
        load_bytes(&disk_runtime(dir.path()), wasm).unwrap(),
        ModuleSource::Disk
    );
}

#[test]
fn both_memory_init_modes_give_an_instance_its_data_segments() {
    // A module whose output comes from a data segment: a wrong or missing
    // initialisation prints something else.
    let wasm = wat::parse_str(aether_fixtures::print_wat("from the data segment")).unwrap();
    for mode in [
        aether_runtime::MemoryInit::Copy,
        aether_runtime::MemoryInit::Cow,
    ] {
        let rt = Runtime::new(RuntimeConfig {
            memory_init: mode,
            max_instances: 8,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let (module, _) = rt.load(ModuleHash::of(&wasm), || Ok(wasm.clone())).unwrap();
        // Twice: the second instance reuses the first one's pool slot.
        for _ in 0..2 {
            let out = run(&rt, &module, "").unwrap();
            assert_eq!(&out.stdout[..], b"from the data segment", "{mode:?}");
        }
    }
}
