//! Write Aether functions in Rust.
//!
//! A function is a normal `main` compiled for `wasm32-wasip1`. The request
//! input arrives on stdin (the `input` JSON of `POST /execute`, compact, or
//! the raw `stdin` text) and whatever the function writes to stdout is the
//! response `output`:
//!
//! ```no_run
//! let name: String = aether_guest::input_json().unwrap_or_default();
//! aether_guest::output(format!("Hello, {name}!"));
//! ```
//!
//! stderr (`eprintln!`) is captured separately and shown to the caller;
//! `std::process::exit(code)` sets the reported `exit_code`.

use std::io::{Read, Write};

/// Reads the whole request input as bytes.
pub fn input_bytes() -> Vec<u8> {
    let mut buf = Vec::new();
    // stdin is an in-memory pipe on Aether; reading it cannot fail short of
    // a host bug, which is worth a loud trap rather than a silent empty input.
    std::io::stdin()
        .read_to_end(&mut buf)
        .expect("reading the request input from stdin");
    buf
}

/// Reads the whole request input as text (invalid UTF-8 is replaced).
pub fn input() -> String {
    String::from_utf8_lossy(&input_bytes()).into_owned()
}

/// Parses the request input as JSON.
#[cfg(feature = "json")]
pub fn input_json<T: serde::de::DeserializeOwned>() -> Result<T, serde_json::Error> {
    serde_json::from_slice(&input_bytes())
}

/// Writes `data` to the response output (no newline added).
pub fn output(data: impl AsRef<[u8]>) {
    let mut out = std::io::stdout().lock();
    // A failed write means the output limit was hit; the host already
    // reports `output_limit_exceeded`, so stop here.
    out.write_all(data.as_ref())
        .and_then(|()| out.flush())
        .expect("writing the response output to stdout");
}

/// Writes `value` as compact JSON to the response output.
#[cfg(feature = "json")]
pub fn output_json<T: serde::Serialize>(value: &T) {
    let json = serde_json::to_vec(value).expect("serialising the response output");
    output(json);
}
