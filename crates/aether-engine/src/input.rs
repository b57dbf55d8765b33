//! The `/execute` body as the edge reads it: `input` is re-encoded as
//! compact JSON while it is parsed, straight into the bytes the function
//! reads on stdin, instead of being built into a `serde_json::Value` tree
//! and serialised again (one allocation per node of the input, twice the
//! passes). Same validation as the tree: serde_json's recursion limit, no
//! out-of-range numbers, valid UTF-8 and escapes. Object keys keep the
//! client's order.
//!
//! Public only so that the `execute_request` fuzz target and aether-hostile's
//! `decoders` test decode bodies exactly as `POST /execute` does
//! (`serde_json::from_slice::<ExecuteBody>`); not an API of its own.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `POST /execute` body; same fields and errors as
/// [`aether_proto::ExecuteRequest`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// Name of the function.
    pub function: String,
    /// `input` as compact JSON (`None` when absent or `null`).
    #[serde(default, deserialize_with = "compact_input")]
    pub input: Option<Vec<u8>>,
    /// Raw stdin text.
    #[serde(default)]
    pub stdin: Option<String>,
}

fn compact_input<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let mut out = Vec::new();
    Compact(&mut out).deserialize(d)?;
    Ok((out != b"null").then_some(out))
}

/// Writes the value it deserializes to its buffer as compact JSON.
struct Compact<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Compact<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Compact<'_> {
    fn write<T: serde::Serialize + ?Sized, E: de::Error>(self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for Compact<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.write(&v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.write(&v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.write(&v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // As `Value` does: a non-finite float is written as null.
        self.write(&serde_json::Number::from_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.write(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Compact(self.0).deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Compact(self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if map.next_key_seed(Compact(self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            self.0.push(b':');
            map.next_value_seed(Compact(self.0))?;
            first = false;
        }
        self.0.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdin(body: &str) -> Option<String> {
        serde_json::from_str::<ExecuteBody>(body)
            .unwrap()
            .input
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn input_is_written_as_compact_json_like_a_value_would_be() {
        let input = r#" { "b" : [1, -2, 3.5, 1e3, 18446744073709551615, true, null, "x\u00e9\"\n"], "a" : {} } "#;
        let value: serde_json::Value = serde_json::from_str(input).unwrap();
        let body = format!(r#"{{"function":"f","input":{input}}}"#);
        let compact = stdin(&body).unwrap();
        assert_eq!(
            compact,
            r#"{"b":[1,-2,3.5,1000.0,18446744073709551615,true,null,"xé\"\n"],"a":{}}"#
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&compact).unwrap(),
            value
        );
    }

    #[test]
    fn absent_or_null_input_is_no_input() {
        assert_eq!(stdin(r#"{"function":"f"}"#), None);
        assert_eq!(stdin(r#"{"function":"f","input":null}"#), None);
        assert_eq!(
            stdin(r#"{"function":"f","input":[]}"#).as_deref(),
            Some("[]")
        );
    }

    #[test]
    fn out_of_range_numbers_and_deep_nesting_are_refused() {
        assert!(serde_json::from_str::<ExecuteBody>(r#"{"function":"f","input":1e999}"#).is_err());
        let deep = format!(
            r#"{{"function":"f","input":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(serde_json::from_str::<ExecuteBody>(&deep).is_err());
    }
}
