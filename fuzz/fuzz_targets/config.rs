//! Configuration files and human values: the edge's and the control
//! plane's TOML parsers, durations and sizes never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = toml::from_str::<aether_engine::config::FileConfig>(text);
    let _ = aether_control::Config::parse_file(std::path::Path::new("fuzz.toml"), text);
    let _ = aether_proto::limits::parse_duration("fuzz", text);
    let _ = aether_proto::limits::parse_size("fuzz", text);
});
