//! Secrets as the management layer shows and makes them: never in full on
//! a read, only a masked form and a fingerprint to tell two apart.

use rand::{Rng, distr::Alphanumeric};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a read shows of a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MaskedSecret {
    /// The first four characters, then an ellipsis.
    pub masked: String,
    /// `sha256:` and the first 12 hex digits of the secret's SHA-256.
    pub fingerprint: String,
}

impl MaskedSecret {
    /// The masked form of `secret`.
    pub fn of(secret: &str) -> Self {
        Self {
            masked: format!("{}…", secret.chars().take(4).collect::<String>()),
            fingerprint: fingerprint(secret),
        }
    }
}

/// `sha256:` and the first 12 hex digits of the secret's SHA-256: enough to
/// tell keys apart, nothing to guess one from.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

/// A fresh secret: `prefix_` and 24 base62 characters (142 random bits),
/// which also satisfies the receive-token rule.
pub fn generate(prefix: &str) -> String {
    let body: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_form_shows_four_characters_and_a_stable_fingerprint() {
        let m = MaskedSecret::of("tok_abcdefghijklmnopqrstuvwxyz");
        assert_eq!(m.masked, "tok_…");
        assert_eq!(
            m.fingerprint,
            MaskedSecret::of("tok_abcdefghijklmnopqrstuvwxyz").fingerprint
        );
        assert_ne!(
            m.fingerprint,
            MaskedSecret::of("tok_abcdefghijklmnopqrstuvwxyZ").fingerprint
        );
        assert_eq!(m.fingerprint.len(), "sha256:".len() + 12);
    }

    #[test]
    fn generated_secrets_are_distinct_and_url_safe() {
        let a = generate("tok");
        assert_ne!(a, generate("tok"));
        assert!(a.len() >= tributary_core::config::MIN_TOKEN_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
