//! The function-name validator: never panics, and every accepted name is
//! safe as a file name and a URL path segment.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if aether_proto::validate_function_name(name).is_ok() {
        assert!(!name.is_empty() && name.len() <= 63, "{name:?}");
        assert!(name != "." && name != ".." && !name.contains(['/', '\\', '.', '\0', '%']));
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        );
        assert!(!name.starts_with(['_', '-']));
    }
});
