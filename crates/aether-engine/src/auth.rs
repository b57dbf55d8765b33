//! Token checks for the control plane's calls to this edge.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Compares tokens in constant time. Both are hashed first, so neither the
/// contents nor the length of the expected token leaks through timing.
pub fn token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_exact_token_matches() {
        assert!(super::token_matches("s3cret", "s3cret"));
        assert!(!super::token_matches("s3cre", "s3cret"));
        assert!(!super::token_matches("", "s3cret"));
        assert!(!super::token_matches(&"x".repeat(100_000), "s3cret"));
    }
}
