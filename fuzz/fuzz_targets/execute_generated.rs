//! Generated modules through the real runtime: the fuzzer's bytes drive
//! wasm-smith (a WASI command module with the engine's wasm features, see
//! the shared generator), the module runs on an edge-configured `Runtime`
//! under 100 ms / 16 MiB / 64 KiB, and the host must not panic, must end the
//! invocation by the timeout plus 2 s and must keep peak memory and output
//! within the limits. The same generator and checks run 400 fixed modules
//! in every CI run: aether-hostile `generated::wasm_smith_modules_never_take_the_host_down`.
#![no_main]

use std::sync::{Mutex, OnceLock};

use aether_runtime::Runtime;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/aether-hostile/tests/all/generated/smith.rs"]
mod smith;

fuzz_target!(|data: &[u8]| {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    static TALLY: Mutex<Option<smith::Tally>> = Mutex::new(None);
    let mut u = arbitrary::Unstructured::new(data);
    // About half the modules are instrumented to terminate; the others
    // may loop into the timeout.
    let terminates = u.arbitrary().unwrap_or(true);
    let Ok(module) = smith::generate(&mut u, terminates) else {
        return;
    };
    let rt = RUNTIME.get_or_init(smith::runtime);
    let mut tally = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    let tally = tally.get_or_insert_with(smith::Tally::default);
    smith::run(rt, &module, tally);
    // Progress on stderr: shows that modules really run, and how they end.
    if tally.total().is_power_of_two() || tally.total().is_multiple_of(10_000) {
        eprintln!("execute_generated: {}", tally.summary());
    }
});
