//! Secrets: tokens, write keys, signing secrets, API keys.
//!
//! A [`Secret`] never shows its value through `Debug`, `Display` or `Serialize`,
//! so it cannot leak into a log line or an admin answer by accident, and it
//! compares in constant time.

use std::fmt;

use serde::{Serialize, Serializer};
use subtle::ConstantTimeEq;

/// A credential. Read it only with [`Secret::expose`], where it is used.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (an HMAC key, an outgoing header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value. The length may leak;
    /// the content does not.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("whsec_abc");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    }

    #[test]
    fn compares_by_content() {
        let s = Secret::new("key-1");
        assert!(s.matches(b"key-1"));
        assert!(!s.matches(b"key-2"));
        assert!(!s.matches(b"key-"));
        assert!(!s.matches(b""));
    }
}
