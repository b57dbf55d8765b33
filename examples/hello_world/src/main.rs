//! Prints the `msg` field of its JSON input:
//! `{"msg":"Hello from Aether!"}` → `Hello from Aether!`.

#[derive(serde::Deserialize, Default)]
struct Input {
    msg: Option<String>,
}

fn main() {
    let input: Input = aether_guest::input_json().unwrap_or_default();
    aether_guest::output(input.msg.as_deref().unwrap_or("Hello from Aether!"));
}
