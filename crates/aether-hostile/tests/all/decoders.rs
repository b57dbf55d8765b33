//! A fast, deterministic stand-in for the fuzz targets in `fuzz/` (which
//! need a nightly toolchain): thousands of random and mutated inputs to
//! the same decoders, which must never panic. `POST /execute` bodies go
//! through the edge's own decoder and must agree with the `Value` tree
//! (`execute_body::check`, shared with the `execute_request` fuzz target).

mod execute_body;

use aether_proto::control::{CallbackBody, DeployRequest, RegisterRequest, RollbackRequest};
use aether_proto::validate_function_name;

const SEEDS: &[&str] = &[
    r#"{"function":"hello_world","input":{"msg":"Hello from Aether!"}}"#,
    r#"{"function":"echo","stdin":"text"}"#,
    r#"{"function":"f","input":{"b":[1,-2,3.5e-7,1e3,18446744073709551615,true,null,"x\u00e9\"\n"],"a":{},"a":-0.0}}"#,
    r#"{"name":"f","wasm_b64":"AGFzbQEAAAA=","args":["a"],"env":{"K":"V"},"limits":{"timeout":"3s","memory":"16MB"}}"#,
    r#"[{"event":"node_started","data":{"node_id":"n","function":"f"}},{"event":"x"}]"#,
    r#"{"events":[{"event":"a","data":{}}]}"#,
    r#"{"node_id":"edge-1","url":"http://127.0.0.1:9091","functions":{"f":1}}"#,
    r#"{"version":3}"#,
    "[server]\nhost = \"127.0.0.1\"\nport = 9091\n[runtime]\nexec_timeout = \"500ms\"\nmemory_limit = \"32MiB\"\n",
    "[database]\npath = \"./data/control.db\"\n[registry]\nnode_timeout = \"30s\"\n[limits]\nmax_module_size = \"50MB\"\n",
];

const ALPHABET: &[u8] = b"{}[]\":,0123456789abcdefghijklmnopqrstuvwxyz_-.\\/ \n=#'eE+-\xff\xc3\xa9";

fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.usize(1..8) {
        let at = rng.usize(..=bytes.len());
        match rng.u8(..5) {
            0 if !bytes.is_empty() => {
                let end = (at + rng.usize(..16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 => bytes.insert(at, ALPHABET[rng.usize(..ALPHABET.len())]),
            2 => bytes.insert(at, rng.u8(..)),
            3 => {
                let piece: Vec<u8> = bytes[at..].iter().take(rng.usize(..32)).copied().collect();
                bytes.splice(
                    at..at,
                    piece
                        .iter()
                        .copied()
                        .cycle()
                        .take(piece.len() * rng.usize(..50)),
                );
            }
            _ if !bytes.is_empty() => {
                let i = rng.usize(..bytes.len());
                bytes[i] = ALPHABET[rng.usize(..ALPHABET.len())];
            }
            _ => {}
        }
    }
    bytes
}

fn decode_everything(data: &[u8]) {
    execute_body::check(data);
    if let Ok(req) = serde_json::from_slice::<DeployRequest>(data)
        && let Some(limits) = req.limits
    {
        let _ = limits.parse();
    }
    if let Ok(body) = serde_json::from_slice::<CallbackBody>(data) {
        let _ = body.into_events();
    }
    let _ = serde_json::from_slice::<RegisterRequest>(data);
    let _ = serde_json::from_slice::<RollbackRequest>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = toml::from_str::<aether_engine::config::FileConfig>(text);
        let _ = aether_control::Config::parse_file(std::path::Path::new("p.toml"), text);
        let _ = aether_proto::limits::parse_duration("p", text);
        let _ = aether_proto::limits::parse_size("p", text);
        if validate_function_name(text).is_ok() {
            assert!(
                text.len() <= 63 && !text.contains(['/', '\\', '.', '\0', '%']),
                "{text:?}"
            );
        }
    }
}

#[test]
fn random_and_mutated_inputs_never_panic_a_decoder() {
    let mut rng = fastrand::Rng::with_seed(0xAE7E);
    let mut runs = 0;
    for _ in 0..2000 {
        let seed = SEEDS[rng.usize(..SEEDS.len())].as_bytes();
        decode_everything(&mutate(&mut rng, seed));
        runs += 1;
    }
    for _ in 0..2000 {
        let len = rng.usize(..256);
        let bytes: Vec<u8> = if rng.bool() {
            (0..len).map(|_| rng.u8(..)).collect()
        } else {
            (0..len)
                .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
                .collect()
        };
        decode_everything(&bytes);
        runs += 1;
    }
    for text in [
        "1e999",
        "18446744073709551616s",
        "-1s",
        "99999999999999999999MB",
        "0",
        " ",
        "1.5.5GB",
        "\u{0}",
    ] {
        decode_everything(text.as_bytes());
        runs += 1;
    }
    assert_eq!(runs, 4008);
}

/// Edges of `POST /execute` decoding that random mutation rarely reaches:
/// the edge's decoder must agree with the `Value` tree on each.
#[test]
fn execute_bodies_at_the_edges_decode_as_the_value_tree_would() {
    let nested = |depth: usize| {
        format!(
            r#"{{"function":"f","input":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let mut bodies: Vec<String> = (120..=130).map(nested).collect();
    bodies.extend(
        [
            r#"{"function":"f","input":1e999}"#,
            r#"{"function":"f","input":-1e999}"#,
            r#"{"function":"f","input":[1.7976931348623157e308,5e-324,2.2250738585072014e-308,-0]}"#,
            r#"{"function":"f","input":[0.1,1e-7,123456789012345678901234567890,1.0000000000000002]}"#,
            r#"{"function":"f","input":{"k":1,"k":2}}"#,
            r#"{"function":"f","input":"\ud800"}"#,
            r#"{"function":"f","input":"\ud83d\ude00 \u0000"}"#,
            r#"{"function":"f","input":null,"stdin":"x"}"#,
            r#"{"function":"f","input":{},"stdin":"x"}"#,
            r#"{"function":"f","function":"g"}"#,
            r#"{"function":"f","inputs":{}}"#,
            r#"{"function":1}"#,
            r#"{"input":{}}"#,
            r#"{"function":"f","input":[1,]}"#,
            r#"{"function":"f","input":{"a":1} }  "#,
            r#"{"function":"f"} x"#,
        ]
        .map(str::to_owned),
    );
    for body in &bodies {
        execute_body::check(body.as_bytes());
    }
    // Not all refused: serde_json's recursion limit is 128 levels.
    let edge = |body: &str| serde_json::from_str::<aether_engine::input::ExecuteBody>(body);
    assert!(edge(&nested(120)).is_ok());
    assert!(edge(&nested(130)).is_err());
    execute_body::check(b"{\"function\":\"f\",\"input\":\"\xff\"}");
}
