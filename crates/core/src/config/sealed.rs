//! Secrets of a stored source document, sealed with a key kept outside the
//! store (`[store] secrets_key`), so a copy of the database (a backup, a
//! dump, a replica's disk) holds no usable token or key.
//!
//! Each secret string (`token`, `write_key`, `api_key`, a verification
//! `secret`, a retired token's `token`, a preprocess script's `vars`) becomes `sealed:v1:` and the base64
//! of a 12-byte nonce followed by its ChaCha20-Poly1305 ciphertext; the rest
//! of the document stays readable, so the revision log and the console can
//! show what a source is. Sealing takes its nonces from the caller: core
//! has no randomness of its own.

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use serde_json::{Map, Value};

/// The document keys that hold secrets, wherever they appear outside mappings.
pub const SECRET_KEYS: [&str; 4] = ["token", "write_key", "api_key", "secret"];

/// The document keys whose tables hold only secrets, each string member one
/// (a preprocess script's `vars`).
pub const SECRET_TABLES: [&str; 1] = ["vars"];

const PREFIX: &str = "sealed:v1:";
/// Associated data: a sealed value opens only as a source secret.
const CONTEXT: &[u8] = b"tributary source secret v1";

/// A 256-bit key that seals and opens document secrets.
#[derive(Clone)]
pub struct SealingKey(ChaCha20Poly1305);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

impl SealingKey {
    /// A key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "is not base64".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!(
                "must be 32 bytes of base64 (`openssl rand -base64 32`), not {}",
                bytes.len()
            ));
        }
        ChaCha20Poly1305::new_from_slice(&bytes)
            .map(Self)
            .map_err(|_| "is not a key".to_owned())
    }

    /// Seals every secret string of `document` not sealed yet; `nonce`
    /// gives a fresh random nonce each call.
    pub fn seal(&self, document: &mut Map<String, Value>, nonce: &mut dyn FnMut() -> [u8; 12]) {
        walk(document, &mut |value| {
            if value.starts_with(PREFIX) {
                return Ok(());
            }
            let n = nonce();
            let sealed = self
                .0
                .encrypt(
                    Nonce::from_slice(&n),
                    Payload {
                        msg: value.as_bytes(),
                        aad: CONTEXT,
                    },
                )
                .map_err(|_| "cannot seal".to_owned())?;
            let mut bytes = n.to_vec();
            bytes.extend(sealed);
            *value = format!("{PREFIX}{}", STANDARD.encode(bytes));
            Ok(())
        })
        .unwrap_or_else(|e: String| unreachable!("sealing never fails: {e}"));
    }

    /// Opens every sealed secret of `document` in place.
    pub fn open(&self, document: &mut Map<String, Value>) -> Result<(), String> {
        walk(document, &mut |value| {
            let Some(b64) = value.strip_prefix(PREFIX) else {
                return Ok(());
            };
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| "a sealed secret is not base64".to_owned())?;
            if bytes.len() < 12 {
                return Err("a sealed secret is too short".to_owned());
            }
            let (n, ciphertext) = bytes.split_at(12);
            let plain = self
                .0
                .decrypt(
                    Nonce::from_slice(n),
                    Payload {
                        msg: ciphertext,
                        aad: CONTEXT,
                    },
                )
                .map_err(|_| {
                    "a secret is sealed with another key than [store] secrets_key".to_owned()
                })?;
            *value =
                String::from_utf8(plain).map_err(|_| "a sealed secret is not text".to_owned())?;
            Ok(())
        })
    }
}

/// Whether any secret of `document` is sealed (so opening needs a key).
pub fn is_sealed(document: &Map<String, Value>) -> bool {
    let mut found = false;
    let _ = walk(&mut document.clone(), &mut |value| {
        found |= value.starts_with(PREFIX);
        Ok::<(), String>(())
    });
    found
}

/// Calls `f` on every secret string: values under [`SECRET_KEYS`] and the
/// members of [`SECRET_TABLES`] at any depth, except inside `mappings`
/// (parameters are not secrets).
fn walk<E>(
    document: &mut Map<String, Value>,
    f: &mut dyn FnMut(&mut String) -> Result<(), E>,
) -> Result<(), E> {
    for (key, value) in document.iter_mut() {
        if key == "mappings" {
            continue;
        }
        match value {
            Value::String(s) if SECRET_KEYS.contains(&key.as_str()) => f(s)?,
            Value::Object(inner) if SECRET_TABLES.contains(&key.as_str()) => {
                for member in inner.values_mut() {
                    if let Value::String(s) = member {
                        f(s)?;
                    }
                }
            }
            Value::Object(inner) => walk(inner, f)?,
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        walk(inner, f)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> SealingKey {
        SealingKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    fn counter() -> impl FnMut() -> [u8; 12] {
        let mut n = 0u8;
        move || {
            n += 1;
            [n; 12]
        }
    }

    #[test]
    fn secrets_seal_and_open_and_nothing_else_changes() {
        let doc = json!({"key": "web", "name": "token", "environments": {"production": {
            "token": "tok_secret_0123456789abcdefgh", "write_key": "wk_1",
            "verification": {"scheme": "bearer", "secret": "s3cret"},
            "preprocess": {"script": "export function main() {}", "vars": {"HOOK": "v4r"}},
            "retired_tokens": [{"token": "tok_old_0123456789abcdefghij", "until": "2030-01-01T00:00:00Z"}],
            "mappings": [{"event": "E", "action": "identify_user", "token": "path.stays"}]}}});
        let Value::Object(mut sealed) = doc.clone() else {
            panic!()
        };
        key().seal(&mut sealed, &mut counter());
        let text = Value::Object(sealed.clone()).to_string();
        for secret in ["tok_secret", "wk_1", "s3cret", "tok_old", "v4r"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("path.stays"),
            "mapping parameters are not secrets"
        );
        assert!(text.contains("\"name\":\"token\""));
        assert!(
            text.contains("export function main"),
            "a script is not a secret"
        );
        assert!(is_sealed(&sealed));
        key().open(&mut sealed).unwrap();
        assert_eq!(Value::Object(sealed), doc);
    }

    #[test]
    fn another_key_or_a_tampered_value_does_not_open() {
        let Value::Object(mut doc) = json!({"token": "tok_secret"}) else {
            panic!()
        };
        key().seal(&mut doc, &mut counter());
        let other = SealingKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(&mut doc.clone()).is_err());
        let mut tampered = doc.clone();
        let v = tampered["token"].as_str().unwrap().to_owned();
        tampered["token"] = json!(format!("{}A", &v[..v.len() - 1]));
        assert!(key().open(&mut tampered).is_err());
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert!(SealingKey::from_base64("not base64!").is_err());
        assert!(SealingKey::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(format!("{:?}", key()).contains("***"));
    }

    proptest::proptest! {
        #[test]
        fn any_sealed_looking_value_opens_or_fails_without_panicking(tail in ".{0,80}") {
            let Value::Object(mut doc) = json!({"token": format!("{PREFIX}{tail}")}) else { panic!() };
            let _ = key().open(&mut doc);
        }
    }
}
