//! `POST /execute` bodies: decoding never panics, and an accepted request
//! round-trips through its own serialisation.
#![no_main]

use aether_proto::ExecuteRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<ExecuteRequest>(data) {
        let _ = aether_proto::validate_function_name(&req.function);
        let again = serde_json::to_vec(&req).expect("a decoded request serialises");
        let back: ExecuteRequest = serde_json::from_slice(&again).expect("and decodes again");
        assert_eq!(back.function, req.function);
    }
});
