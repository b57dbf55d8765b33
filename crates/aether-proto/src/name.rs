//! Function-name validation: `^[a-z0-9][a-z0-9_-]{0,62}$`, checked at every
//! entry point so a name is always safe as a file name and a URL segment.

/// Longest allowed function name, in bytes.
pub const MAX_FUNCTION_NAME_LEN: usize = 63;

/// Why a function name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("function name is empty")]
    Empty,
    /// The name is longer than [`MAX_FUNCTION_NAME_LEN`].
    #[error("function name is {len} bytes long; at most {MAX_FUNCTION_NAME_LEN} are allowed")]
    TooLong {
        /// Length of the refused name in bytes.
        len: usize,
    },
    /// The name contains a character outside `[a-z0-9_-]` or starts with `_`/`-`.
    #[error(
        "function name {name:?} is invalid: use lowercase letters, digits, '_' and '-', starting with a letter or digit"
    )]
    BadCharacter {
        /// The refused name (escaped by `Debug` when printed).
        name: String,
    },
}

/// Checks a function name against `^[a-z0-9][a-z0-9_-]{0,62}$`.
pub fn validate_function_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(NameError::Empty);
    };
    if bytes.len() > MAX_FUNCTION_NAME_LEN {
        return Err(NameError::TooLong { len: bytes.len() });
    }
    let first_ok = first.is_ascii_lowercase() || first.is_ascii_digit();
    let rest_ok = bytes[1..]
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(NameError::BadCharacter {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_names() {
        for name in ["hello_world", "a", "0", "json-transform", &"a".repeat(63)] {
            assert_eq!(validate_function_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_path_tricks_unicode_and_bad_lengths() {
        assert_eq!(validate_function_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_function_name(&"a".repeat(64)),
            Err(NameError::TooLong { len: 64 })
        );
        for name in [
            "..", "../etc", "a/b", "a\\b", "Hello", "-x", "_x", "é", "a b", "a.wasm", "a\0",
        ] {
            assert!(
                matches!(
                    validate_function_name(name),
                    Err(NameError::BadCharacter { .. })
                ),
                "{name:?} should be refused"
            );
        }
    }
}
