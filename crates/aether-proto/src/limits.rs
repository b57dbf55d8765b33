//! Per-function limits as written by users (`{"timeout": "3s", "memory": "16MB"}`)
//! and their parsed form.
//!
//! Sizes follow the `bytesize` crate: `MB` is 10^6 bytes, `MiB` is 2^20.
//! Durations follow `humantime`: `250ms`, `3s`, `1m`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits as they appear on the wire and in config files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Wall-clock timeout, e.g. `"3s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Linear-memory limit, e.g. `"16MB"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Limits after parsing; `None` means "use the edge's default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParsedLimits {
    /// Wall-clock timeout.
    pub timeout: Option<Duration>,
    /// Linear-memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

/// A limit string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}")]
pub struct LimitsError {
    /// Which limit.
    pub field: &'static str,
    /// The text that was refused.
    pub value: String,
    /// Why.
    pub reason: String,
}

impl LimitsSpec {
    /// Parses both limits; zero values are refused.
    pub fn parse(&self) -> Result<ParsedLimits, LimitsError> {
        let timeout = self
            .timeout
            .as_deref()
            .map(|t| parse_duration("timeout", t))
            .transpose()?;
        let memory_bytes = self
            .memory
            .as_deref()
            .map(|m| parse_size("memory", m))
            .transpose()?;
        Ok(ParsedLimits {
            timeout,
            memory_bytes,
        })
    }
}

/// Parses a human duration (`"3s"`, `"250ms"`); zero is refused.
pub fn parse_duration(field: &'static str, text: &str) -> Result<Duration, LimitsError> {
    let err = |reason: String| LimitsError {
        field,
        value: text.to_owned(),
        reason,
    };
    let d = humantime::parse_duration(text.trim()).map_err(|e| err(e.to_string()))?;
    if d.is_zero() {
        return Err(err("must be greater than zero".into()));
    }
    Ok(d)
}

/// Parses a human size (`"16MB"`, `"1MiB"`, `"65536"`); zero is refused.
pub fn parse_size(field: &'static str, text: &str) -> Result<u64, LimitsError> {
    let err = |reason: String| LimitsError {
        field,
        value: text.to_owned(),
        reason,
    };
    let size: bytesize::ByteSize = text.trim().parse().map_err(|e: String| err(e))?;
    if size.as_u64() == 0 {
        return Err(err("must be greater than zero".into()));
    }
    Ok(size.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_examples() {
        let spec = LimitsSpec {
            timeout: Some("3s".into()),
            memory: Some("16MB".into()),
        };
        assert_eq!(
            spec.parse().unwrap(),
            ParsedLimits {
                timeout: Some(Duration::from_secs(3)),
                memory_bytes: Some(16_000_000),
            }
        );
        assert_eq!(parse_size("memory", "1MiB").unwrap(), 1 << 20);
        assert_eq!(
            parse_duration("timeout", "250ms").unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn refuses_garbage_and_zero() {
        assert!(parse_duration("timeout", "soon").is_err());
        assert!(parse_duration("timeout", "0s").is_err());
        assert!(parse_size("memory", "lots").is_err());
        assert!(parse_size("memory", "0").is_err());
    }
}
