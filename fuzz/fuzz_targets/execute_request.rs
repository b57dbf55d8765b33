//! `POST /execute` bodies through the edge's own decoder
//! (`aether_engine::input::ExecuteBody`, as the handler calls it): decoding
//! never panics and agrees with the `serde_json::Value` tree it stands in
//! for (`aether_proto::ExecuteRequest`): the same bodies accepted with the
//! same errors, the same fields, and `input` as compact JSON text of the
//! same value. The same check runs on thousands of inputs in every CI run:
//! aether-hostile `decoders::random_and_mutated_inputs_never_panic_a_decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/aether-hostile/tests/all/decoders/execute_body.rs"]
mod execute_body;

fuzz_target!(|data: &[u8]| execute_body::check(data));
