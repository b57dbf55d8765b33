//! `POST /api/functions` bodies: JSON decoding, base64 decoding, limits
//! parsing and name validation never panic.
#![no_main]

use aether_proto::control::{DeployRequest, RollbackRequest};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<DeployRequest>(data) {
        let _ = aether_proto::validate_function_name(&req.name);
        let _ = base64::engine::general_purpose::STANDARD.decode(req.wasm_b64.trim());
        if let Some(limits) = req.limits {
            let _ = limits.parse();
        }
    }
    let _ = serde_json::from_slice::<RollbackRequest>(data);
});
