//! `POST /callback` and `POST /register` bodies from edges: decoding never
//! panics, whatever the shape (one event, a batch, a wrapped batch).
#![no_main]

use aether_proto::control::{CallbackBody, RegisterRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<CallbackBody>(data) {
        for event in body.into_events() {
            if let Some(name) = event.data.get("function").and_then(|v| v.as_str()) {
                let _ = aether_proto::validate_function_name(name);
            }
        }
    }
    let _ = serde_json::from_slice::<RegisterRequest>(data);
});
