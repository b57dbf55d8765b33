//! Generated modules (wasm-smith) through the real runtime: whatever a
//! valid module does, the host must not panic, must end every invocation at
//! its timeout, must keep guest memory within the limit, and must keep
//! serving. `fuzz/fuzz_targets/execute_generated.rs` runs the same check
//! under libFuzzer (`scripts/fuzz.sh`).

mod smith;

use std::time::Instant;

use aether_hostile::{fixtures, proc};
use aether_runtime::{Invocation, ModuleHash};

/// Modules per run; `AETHER_GENERATED_MODULES=N` runs more (or fewer).
/// Deterministic: module `i` comes from 512 B–32 KiB of `fastrand` seeded
/// with `i`, and every even one is instrumented by wasm-smith's
/// `ensure_termination` (the others may loop into the 100 ms timeout).
const MODULES: u64 = 400;

/// 400 generated modules with 100 ms / 16 MiB / 64 KiB limits through
/// `Runtime::load` and `Runtime::execute`, the path of an edge's
/// `/execute`. Took 12.9 s alone and 13.5 s beside the rest of the suite
/// (debug build, shared 2-vCPU VM, load average about 4); 351 of the 400
/// ran (104 ok, 206 traps, 39 timeouts, 2 at the memory limit), 49 declared
/// too much memory, none was refused.
#[test]
fn wasm_smith_modules_never_take_the_host_down() {
    let modules = std::env::var("AETHER_GENERATED_MODULES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MODULES);
    let rt = smith::runtime();
    let mut tally = smith::Tally::default();
    let (started, rss_before) = (Instant::now(), proc::rss_kb());
    for i in 0..modules {
        let mut rng = fastrand::Rng::with_seed(i);
        let bytes: Vec<u8> = (0..rng.usize(512..32_768)).map(|_| rng.u8(..)).collect();
        let mut u = arbitrary::Unstructured::new(&bytes);
        let module = smith::generate(&mut u, i % 2 == 0)
            .unwrap_or_else(|e| panic!("module {i}: wasm-smith: {e}"));
        smith::run(&rt, &module, &mut tally);
    }
    // CI logs show that real executions happened, and how they ended.
    println!(
        "generated: {} in {:?}; rss {} -> {} MiB (whole test process); first refusal: {}",
        tally.summary(),
        started.elapsed(),
        rss_before / 1024,
        proc::rss_kb() / 1024,
        tally.first_refusal.as_deref().unwrap_or("none"),
    );
    assert_eq!(tally.total() as u64, modules);
    // Otherwise the test could pass by refusing everything.
    assert!(
        tally.ran() as u64 * 10 >= modules * 3,
        "fewer than 30 % of the modules ran: {}",
        tally.summary()
    );

    // The runtime still serves a normal function correctly.
    let echo = wat::parse_str(fixtures::ECHO).expect("fixture is valid WAT");
    let (module, _) = rt
        .load(ModuleHash::of(&echo), || Ok(echo))
        .expect("echo loads");
    let out = rt
        .execute_blocking(
            &module,
            Invocation {
                name: "echo",
                args: &[],
                env: &[],
                stdin: bytes::Bytes::from_static(b"still serving"),
                limits: smith::LIMITS,
            },
        )
        .expect("echo runs");
    assert_eq!((out.exit_code, &out.stdout[..]), (0, &b"still serving"[..]));
}
