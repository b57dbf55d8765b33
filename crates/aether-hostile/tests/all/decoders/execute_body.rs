//! The edge's own `POST /execute` decoder (`aether_engine::input::ExecuteBody`,
//! which re-encodes `input` as compact JSON while parsing it) checked
//! against the `serde_json::Value` tree it stands in for
//! (`aether_proto::ExecuteRequest`, what clients send).
//!
//! Shared by `decoders::random_and_mutated_inputs_never_panic_a_decoder` and
//! the `execute_request` fuzz target (`fuzz/fuzz_targets/execute_request.rs`
//! includes this file with `#[path]`), so both check the same invariants.

use aether_engine::input::ExecuteBody;
use aether_proto::ExecuteRequest;
use serde_json::Value;

/// Decodes `data` as `POST /execute` does and panics unless the result
/// agrees with the `Value` tree: the same bodies accepted with the same
/// error messages (but for the struct's name), the same `function` and `stdin`, and `input` as valid
/// JSON text holding the same value (`None` for absent or `null` input).
pub fn check(data: &[u8]) {
    let edge = serde_json::from_slice::<ExecuteBody>(data);
    let tree = serde_json::from_slice::<ExecuteRequest>(data);
    let (edge, tree) = match (edge, tree) {
        (Ok(edge), Ok(tree)) => (edge, tree),
        (Err(edge), Err(tree)) => {
            // The messages name the struct ("expected struct ExecuteBody").
            assert_eq!(
                edge.to_string().replace("ExecuteBody", "ExecuteRequest"),
                tree.to_string(),
                "different errors for {:?}",
                String::from_utf8_lossy(data)
            );
            return;
        }
        (edge, tree) => panic!(
            "the edge decoder and the Value tree disagree on {:?}: edge {:?}, tree {:?}",
            String::from_utf8_lossy(data),
            edge.map(|_| "accepted"),
            tree.map(|_| "accepted"),
        ),
    };
    let _ = aether_proto::validate_function_name(&edge.function);
    assert_eq!(edge.function, tree.function);
    assert_eq!(edge.stdin, tree.stdin);
    match (&edge.input, &tree.input) {
        (None, None) => {}
        (Some(compact), Some(value)) => {
            let text = std::str::from_utf8(compact).expect("the compact input is UTF-8");
            let reread: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("the compact input {text:?} is not JSON: {e}"));
            assert!(
                same(&reread, value),
                "the compact input {text:?} is not the tree's {value}"
            );
        }
        (edge, tree) => panic!(
            "input: edge {:?}, tree {tree:?}",
            edge.as_deref().map(String::from_utf8_lossy)
        ),
    }
}

/// `a == b`, except that floats may differ by a few units in the last
/// place: without its `float_roundtrip` feature serde_json's float parsing
/// is best-effort, so reading a float back from the text it was written as
/// may not give exactly that float (up to 2 units apart, measured on 60
/// million random floats).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.is_f64(), y.is_f64()) {
            (true, true) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y
                    || (x.is_sign_negative() == y.is_sign_negative()
                        && x.to_bits().abs_diff(y.to_bits()) <= 4)
            }
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, x)| y.get(k).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}
