//! Deploy-time checks: is this valid wasm for our engine's feature set, and
//! a WASI preview-1 command module we can link? Used by the control plane to
//! refuse a bad upload before it reaches any edge, and by the runtime before
//! compiling.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use wasmtime::wasmparser::{Parser, Payload, TypeRef};

use wasmtime::{Engine, Module};

use crate::error::CompileError;
use crate::sandbox;
use crate::wasi::{self, WASI_MODULE};

/// Most functions a module may define. Cranelift's compile time grows with
/// the function count (about 165 µs per small function on a 2-vCPU VM):
/// 100 000 one-line functions (a 2 MB module) took 16.5 s to compile, and
/// the edge compiles on the first request's execution slot. 50 000 keeps
/// the worst case near 8 s while leaving room for large real programs (a
/// Rust hello world defines about 100, big interpreters tens of thousands).
pub const MAX_FUNCTIONS: u32 = 50_000;

/// A process-wide engine with exactly the wasm feature set of the edges'
/// engines, for validating without executing (the control plane).
pub fn validation_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = sandbox::base_config(crate::config::DEFAULT_MAX_WASM_STACK);
        // The base configuration has no pooling and no cache; it can only
        // fail on a wasmtime build without a compiler, which this crate
        // always enables.
        Engine::new(&config).expect("the base engine configuration is valid")
    })
}

/// What a deployable wasm binary is, and so how it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmShape {
    /// A WASI preview-1 command module (`_start`): `POST /execute`, or CGI
    /// style through the HTTP trigger.
    CommandModule,
    /// A preview-2 command component (exports `wasi:cli/run`): `POST
    /// /execute`, like a command module.
    CommandComponent,
    /// A `wasi:http/proxy` component (exports
    /// `wasi:http/incoming-handler`): the HTTP trigger only.
    HttpComponent,
}

impl WasmShape {
    /// True for a `wasi:http` component.
    pub fn is_http(self) -> bool {
        self == WasmShape::HttpComponent
    }

    /// True for a component (preview 2), false for a core module.
    pub fn is_component(self) -> bool {
        self != WasmShape::CommandModule
    }

    /// How users name it: `http` for a `wasi:http` component, else
    /// `command`.
    pub fn kind_name(self) -> &'static str {
        if self.is_http() { "http" } else { "command" }
    }
}

/// Export-name prefix of the `wasi:http` handler a proxy component exports.
pub(crate) const HTTP_HANDLER_EXPORT: &str = "wasi:http/incoming-handler@0.2.";
/// Export-name prefix of a command component's entry point.
pub(crate) const CLI_RUN_EXPORT: &str = "wasi:cli/run@0.2.";

/// Validates `wasm` with the rules the edges apply and tells what it is: a
/// preview-1 command module ([`validate_command_module`]), a preview-2
/// command component or a `wasi:http` component. A component is validated
/// in full by wasmparser here; whether its imports link is known when an
/// edge first loads it (it may import only WASI 0.2 interfaces).
pub fn inspect(wasm: &[u8]) -> Result<WasmShape, CompileError> {
    if !Parser::is_component(wasm) {
        validate_command_module(validation_engine(), wasm)?;
        return Ok(WasmShape::CommandModule);
    }
    inspect_component(wasm)
}

/// The shape of a component: which of the two entry points it exports at
/// its top level, after validating it and checking its imports.
pub(crate) fn inspect_component(wasm: &[u8]) -> Result<WasmShape, CompileError> {
    let mut validator = wasmtime::wasmparser::Validator::new_with_features(component_features());
    validator
        .validate_all(wasm)
        .map_err(|e| CompileError::InvalidWasm {
            reason: e.to_string(),
        })?;
    let (mut http, mut run) = (false, false);
    // The compile-time bound of modules applies to all the core modules a
    // component embeds, together.
    let mut functions = 0u64;
    // Nested modules and components come as sections of their own in
    // `parse_all`; only the outer component's imports and exports count.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| CompileError::InvalidWasm {
            reason: e.to_string(),
        })?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::FunctionSection(reader) => {
                functions += u64::from(reader.count());
                if functions > u64::from(MAX_FUNCTIONS) {
                    return Err(CompileError::InvalidWasm {
                        reason: format!(
                            "its core modules define more than {MAX_FUNCTIONS} functions together; at most {MAX_FUNCTIONS} are allowed (compile time)"
                        ),
                    });
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| CompileError::InvalidWasm {
                        reason: e.to_string(),
                    })?;
                    let name = import.name.name;
                    if !name.starts_with("wasi:") || !name.contains("@0.2.") {
                        return Err(CompileError::NotCommand {
                            reason: format!(
                                "it imports `{name}`; components may import only WASI 0.2 interfaces (wasi:cli, wasi:io, wasi:clocks, wasi:random, wasi:filesystem, wasi:http, ...)"
                            ),
                        });
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| CompileError::InvalidWasm {
                        reason: e.to_string(),
                    })?;
                    http |= export.name.name.starts_with(HTTP_HANDLER_EXPORT);
                    run |= export.name.name.starts_with(CLI_RUN_EXPORT);
                }
            }
            _ => {}
        }
    }
    match (http, run) {
        (true, _) => Ok(WasmShape::HttpComponent),
        (false, true) => Ok(WasmShape::CommandComponent),
        (false, false) => Err(CompileError::NotCommand {
            reason: "this component exports neither `wasi:http/incoming-handler@0.2.x` (an HTTP function: build with the wasi crate's `http::proxy::export!`) nor `wasi:cli/run@0.2.x` (a command: a binary built for wasm32-wasip2)".into(),
        }),
    }
}

/// The wasm features a component may use: those of the serving engine
/// (no threads, GC, memory64 or async components).
fn component_features() -> wasmtime::wasmparser::WasmFeatures {
    use wasmtime::wasmparser::WasmFeatures as F;
    let mut features = F::default();
    features.remove(
        F::THREADS
            | F::SHARED_EVERYTHING_THREADS
            | F::GC
            | F::MEMORY64
            | F::CM_ASYNC
            | F::CM_ASYNC_STACKFUL
            | F::CM_THREADING
            | F::STACK_SWITCHING,
    );
    features.insert(F::COMPONENT_MODEL);
    features
}

/// Names of every function Aether's linker provides under
/// `wasi_snapshot_preview1`, read from the linker itself.
fn wasi_function_names() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| wasi::linked_wasi_functions(validation_engine()))
}

/// Checks that `wasm` is valid for `engine` and is a WASI command module:
/// it exports a function `_start`, imports only functions that the
/// `wasi_snapshot_preview1` linker provides, and defines at most
/// [`MAX_FUNCTIONS`] functions (a compile-time bound).
pub fn validate_command_module(engine: &Engine, wasm: &[u8]) -> Result<(), CompileError> {
    Module::validate(engine, wasm).map_err(|e| CompileError::InvalidWasm {
        reason: format!("{e:#}"),
    })?;
    let known = wasi_function_names();
    let mut has_start = false;
    let mut imports_wasi = false;
    let mut exports_memory = false;
    for payload in Parser::new(0).parse_all(wasm) {
        // `Module::validate` already parsed the whole module successfully.
        let payload = payload.map_err(|e| CompileError::InvalidWasm {
            reason: e.to_string(),
        })?;
        match payload {
            Payload::FunctionSection(reader) if reader.count() > MAX_FUNCTIONS => {
                return Err(CompileError::InvalidWasm {
                    reason: format!(
                        "it defines {} functions; at most {MAX_FUNCTIONS} are allowed (compile time)",
                        reader.count()
                    ),
                });
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| CompileError::InvalidWasm {
                        reason: e.to_string(),
                    })?;
                    check_import(known, import.module, import.name, &import.ty)?;
                    imports_wasi = true;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| CompileError::InvalidWasm {
                        reason: e.to_string(),
                    })?;
                    if export.name == "memory"
                        && export.kind == wasmtime::wasmparser::ExternalKind::Memory
                    {
                        exports_memory = true;
                    }
                    if export.name == "_start" {
                        if export.kind != wasmtime::wasmparser::ExternalKind::Func {
                            return Err(CompileError::NotCommand {
                                reason: "export `_start` is not a function".into(),
                            });
                        }
                        has_start = true;
                    }
                }
            }
            _ => {}
        }
    }
    if !has_start {
        return Err(CompileError::NotCommand {
            reason: "it does not export `_start` (reactor modules and libraries are not runnable; build a binary for wasm32-wasip1)".into(),
        });
    }
    if imports_wasi && !exports_memory {
        return Err(CompileError::NotCommand {
            reason: "it calls WASI but exports no memory named `memory`".into(),
        });
    }
    Ok(())
}

fn check_import(
    known: &BTreeSet<String>,
    module: &str,
    name: &str,
    ty: &TypeRef,
) -> Result<(), CompileError> {
    if module != WASI_MODULE {
        return Err(CompileError::NotCommand {
            reason: format!(
                "it imports `{module}::{name}`; only `{WASI_MODULE}` functions are available"
            ),
        });
    }
    if !matches!(ty, TypeRef::Func(_)) {
        return Err(CompileError::NotCommand {
            reason: format!("it imports `{module}::{name}` as a non-function"),
        });
    }
    if !known.contains(name) {
        return Err(CompileError::NotCommand {
            reason: format!("it imports unknown WASI function `{module}::{name}`"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str) -> Result<(), CompileError> {
        let wasm = wat::parse_str(wat).unwrap();
        validate_command_module(validation_engine(), &wasm)
    }

    #[test]
    fn accepts_a_minimal_command() {
        check(r#"(module (func (export "_start")))"#).unwrap();
        check(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                       (memory (export "memory") 1) (func (export "_start")))"#,
        )
        .unwrap();
    }

    #[test]
    fn refuses_non_wasm_bytes() {
        let err = validate_command_module(validation_engine(), b"not wasm at all").unwrap_err();
        assert!(matches!(err, CompileError::InvalidWasm { .. }), "{err}");
    }

    #[test]
    fn refuses_a_reactor_without_start() {
        let err = check(r#"(module (func (export "_initialize")))"#).unwrap_err();
        assert!(
            matches!(err, CompileError::NotCommand { ref reason } if reason.contains("_start")),
            "{err}"
        );
    }

    #[test]
    fn refuses_imports_from_unknown_modules_and_names() {
        let err =
            check(r#"(module (import "env" "f" (func)) (func (export "_start")))"#).unwrap_err();
        assert!(err.to_string().contains("env::f"), "{err}");
        let err = check(
            r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no_such_call"), "{err}");
    }

    #[test]
    fn refuses_modules_with_more_functions_than_compile_time_allows() {
        // Regression: a 2 MB module of 100 000 tiny functions passed
        // validation in 0.1 s and then took 16.5 s to compile on the edge.
        let module = |n: u32| {
            let mut wat = String::from("(module");
            for _ in 0..n {
                wat.push_str(" (func)");
            }
            wat.push_str(r#" (func (export "_start")))"#);
            wat::parse_str(&wat).unwrap()
        };
        validate_command_module(validation_engine(), &module(MAX_FUNCTIONS - 1)).unwrap();
        let err = validate_command_module(validation_engine(), &module(MAX_FUNCTIONS)).unwrap_err();
        assert!(
            matches!(err, CompileError::InvalidWasm { ref reason } if reason.contains("50001 functions")),
            "{err}"
        );
    }

    #[test]
    fn refuses_components_whose_modules_define_more_functions_than_compile_time_allows() {
        let component = |n: u32| {
            let mut wat = String::from("(component (core module");
            for _ in 0..n {
                wat.push_str(" (func)");
            }
            // No exports: the count is checked while parsing, before them.
            wat.push_str("))");
            wat::parse_str(&wat).unwrap()
        };
        let err = inspect(&component(MAX_FUNCTIONS + 1)).unwrap_err();
        assert!(
            matches!(err, CompileError::InvalidWasm { ref reason } if reason.contains("more than 50000 functions")),
            "{err}"
        );
    }

    #[test]
    fn refuses_wasi_calls_without_an_exported_memory() {
        let err = check(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (func (export "_start")))"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
