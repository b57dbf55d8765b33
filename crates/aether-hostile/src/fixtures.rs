//! WAT fixtures: well-behaved helpers and hostile guests.

pub use aether_e2e::command;
pub use aether_fixtures::{ECHO, LOOP as SPIN};

/// One `poll_oneoff` on a single clock subscription, then exits with the
/// errno it returned (so a sleep that ends normally is exit 0).
///
/// `flags` 1 = absolute time (`subscription_clock_abstime`); `clock` 0 =
/// realtime, 1 = monotonic. `repeat` loops the call forever.
pub fn sleep(clock: u32, timeout_ns: u64, flags: u32, repeat: bool) -> String {
    let call = r#"(call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))"#;
    let body = if repeat {
        format!("(loop $again (drop {call}) (br $again))")
    } else {
        format!("(call $exit {call})")
    };
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            ;; subscription at 0: userdata, tag 0 (clock), clock id,
            ;; timeout, precision, flags
            (i64.store (i32.const 0) (i64.const 42))
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const {clock}))
            (i64.store (i32.const 24) (i64.const {timeout_ns}))
            (i64.store (i32.const 32) (i64.const 0))
            (i32.store16 (i32.const 40) (i32.const {flags}))
            {body}))"#
    )
}

/// Writes `stdout_text` to stdout and `stderr_text` to stderr, then traps.
pub fn partial_then_trap(stdout_text: &str, stderr_text: &str) -> String {
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 256) "{stdout_text}")
          (data (i32.const 1024) "{stderr_text}")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 256))
            (i32.store (i32.const 4) (i32.const {out_len}))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
            (i32.store (i32.const 0) (i32.const 1024))
            (i32.store (i32.const 4) (i32.const {err_len}))
            (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
            unreachable))"#,
        out_len = stdout_text.len(),
        err_len = stderr_text.len(),
    )
}

/// Calls `proc_exit(code)`.
pub fn exit_with(code: i32) -> String {
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const {code}))))"#
    )
}

/// A module with `functions` small functions, each called from `_start`'s
/// table, for compile-time measurements.
pub fn many_functions(functions: usize) -> Vec<u8> {
    let mut wat = String::from("(module\n");
    for i in 0..functions {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))\n"
        ));
    }
    wat.push_str("(func (export \"_start\") (drop (call $f0 (i32.const 1)))))");
    wat::parse_str(&wat).expect("valid wat")
}

/// A module whose `_start` is one function of about `instructions`
/// arithmetic instructions over `locals` locals.
pub fn huge_function(instructions: usize, locals: usize) -> Vec<u8> {
    let mut wat = format!(
        "(module (func (export \"_start\") (local {})\n",
        "i64 ".repeat(locals)
    );
    for i in 0..instructions / 4 {
        let a = i % locals;
        let b = (i * 7 + 3) % locals;
        wat.push_str(&format!(
            "(local.set {a} (i64.mul (local.get {a}) (local.get {b})))\n"
        ));
    }
    wat.push_str("))");
    wat::parse_str(&wat).expect("valid wat")
}
