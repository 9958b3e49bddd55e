//! What of a request's headers Tributary keeps, and how credentials are kept
//! out of everything it stores.
//!
//! Headers arrive from the open internet: any number, any size, any name.
//! [`Headers::stored`] keeps a bounded, credential-free copy that every event
//! of the request shares (one allocation however large the batch), and
//! [`redact_excerpt`] takes credentials out of the body excerpt kept for a
//! rejected request. Both decide "is this a credential?" with one rule,
//! [`is_credential_name`]: a fixed deny-list plus name patterns, so a header
//! nobody listed (`X-Api-Token`, `X-Auth-Token`, `X-Session-Id`) is still
//! recognised by its name.

use std::{
    collections::BTreeMap,
    ops::Deref,
    sync::{Arc, LazyLock},
};

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

/// At most this many headers are stored for a request.
pub const STORED_HEADERS_MAX_COUNT: usize = 64;
/// A header whose value is longer than this is not stored (dropped whole,
/// never cut: a mapping path reading it finds nothing rather than a wrong value).
pub const STORED_HEADER_VALUE_MAX_BYTES: usize = 1_024;
/// At most this many bytes (names plus values) are stored for a request.
pub const STORED_HEADERS_MAX_BYTES: usize = 8 * 1_024;
/// The header added to the stored set when some headers were not stored, saying
/// how many and why. A header of this name sent by a client is never stored.
pub const DROPPED_HEADERS_NOTE: &str = "tributary-dropped-headers";

/// Header names whose values are credentials, whatever the source.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-write-key",
    "x-api-key",
    "x-webhook-secret",
    "x-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-shopify-hmac-sha256",
    "x-knock-signature",
    "webhook-signature",
    "svix-signature",
    "stripe-signature",
];

/// Parts of a name that mark a credential wherever they appear in it
/// (`x-api-token`, `x-auth-token`, `writeKey`, `client_secret`, ...).
pub const CREDENTIAL_NAME_PARTS: &[&str] = &[
    "token",
    "key",
    "secret",
    "signature",
    "auth",
    "cookie",
    "session",
    "password",
    "passwd",
    "hmac",
];

/// Names that contain a credential part but name no credential, and which
/// custom sources commonly read (`dedup.key_path = "headers.idempotency-key"`).
const NOT_CREDENTIALS: &[&str] = &["idempotency-key", "x-idempotency-key", "idempotency_key"];

/// Whether a header or JSON key of this name holds a credential, in any case.
/// A name ending in `timestamp` never does (`polytomic-signature-timestamp`,
/// `webhook-timestamp` are kept: when a request was signed is not a secret).
pub fn is_credential_name(name: &str) -> bool {
    // Every stored event asks this about each of its request's headers, so
    // the parts are found in one pass over the name, in any case, without a
    // lowercase copy; a substring search per part sets itself up each time
    // (docs/PERFORMANCE.md, the sixteenth step).
    static PARTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(CREDENTIAL_NAME_PARTS)
            .expect("the credential name parts are a handful of short words")
    });
    let named = |list: &[&str]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    let timestamp =
        name.len() >= 9 && name.as_bytes()[name.len() - 9..].eq_ignore_ascii_case(b"timestamp");
    if timestamp || named(NOT_CREDENTIALS) {
        return false;
    }
    PARTS.is_match(name) || named(SECRET_HEADERS)
}

/// Request headers kept with an event: lowercase names, credentials removed,
/// bounded (see [`Headers::stored`]). Cloning shares one copy, so the events
/// of a 4,000-item batch hold one set between them. A `BTreeMap` inside so
/// the stored form is stable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Headers(Arc<BTreeMap<String, String>>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are none (also for `skip_serializing_if`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `a` and `b` are one shared copy (clones of each other), which
    /// the store uses to write a request's headers once.
    pub fn same_copy(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The headers to store for a request: names lowercased; credentials
    /// ([`is_credential_name`], plus `extra`, e.g. a source's configured
    /// signature header) removed; at most [`STORED_HEADERS_MAX_COUNT`] headers
    /// and [`STORED_HEADERS_MAX_BYTES`] bytes, each value at most
    /// [`STORED_HEADER_VALUE_MAX_BYTES`], kept in arrival order until a limit
    /// is reached. What did not fit is counted under [`DROPPED_HEADERS_NOTE`].
    pub fn stored<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        extra: &[&str],
    ) -> Self {
        let mut kept = BTreeMap::new();
        let (mut bytes, mut dropped, mut dropped_bytes) = (0usize, 0usize, 0usize);
        for (name, value) in headers {
            if is_credential_name(name)
                || extra.iter().any(|e| e.eq_ignore_ascii_case(name))
                || name.eq_ignore_ascii_case(DROPPED_HEADERS_NOTE)
            {
                continue;
            }
            let size = name.len() + value.len();
            if value.len() > STORED_HEADER_VALUE_MAX_BYTES
                || kept.len() >= STORED_HEADERS_MAX_COUNT
                || bytes + size > STORED_HEADERS_MAX_BYTES
            {
                dropped += 1;
                dropped_bytes = dropped_bytes.saturating_add(size);
                continue;
            }
            // A repeated name keeps its last value, as before; its bytes were counted.
            bytes += size;
            kept.insert(name.to_ascii_lowercase(), value.to_owned());
        }
        if dropped > 0 {
            kept.insert(
                DROPPED_HEADERS_NOTE.to_owned(),
                format!("{dropped} headers ({dropped_bytes} bytes) over the stored-header limits"),
            );
        }
        Self(Arc::new(kept))
    }
}

impl Deref for Headers {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<BTreeMap<String, String>> for Headers {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(Arc::new(map))
    }
}

impl<const N: usize> From<[(String, String); N]> for Headers {
    fn from(pairs: [(String, String); N]) -> Self {
        Self(Arc::new(pairs.into()))
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(Arc::new(iter.into_iter().collect()))
    }
}

/// What replaces a credential's value in a stored excerpt.
pub const REDACTED: &str = "[redacted]";

/// A body excerpt with the value of every JSON string member whose key is a
/// credential name ([`is_credential_name`]: `writeKey`, `api_key`,
/// `secret`, ...) replaced by [`REDACTED`]. Works on a cut excerpt, which is
/// rarely valid JSON: it scans for `"key" : "value"` without parsing, and a
/// value cut off by the excerpt's end is redacted to the end. Bytes that are
/// not UTF-8 are replaced, as for any stored excerpt.
pub fn redact_excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let s = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // `copied` is the end of what has been copied to `out`; `i` scans for strings.
    let (mut copied, mut i) = (0, 0);
    while i < s.len() {
        if s[i] != b'"' {
            i += 1;
            continue;
        }
        let key_end = string_end(s, i + 1);
        let Some(key_end) = key_end else { break };
        let key = &text[i + 1..key_end];
        let mut j = key_end + 1;
        while j < s.len() && s[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < s.len() && s[j] == b':' && is_credential_name(key) {
            j += 1;
            while j < s.len() && s[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < s.len() && s[j] == b'"' {
                let value_end = string_end(s, j + 1).unwrap_or(s.len());
                out.push_str(&text[copied..=j]);
                out.push_str(REDACTED);
                copied = value_end;
                i = value_end + 1;
                continue;
            }
        }
        i = key_end + 1;
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

/// The index of the quote that closes a JSON string whose contents start at `from`.
fn string_end(s: &[u8], from: usize) -> Option<usize> {
    let mut k = from;
    while k < s.len() {
        match s[k] {
            b'\\' => k += 2,
            b'"' => return Some(k),
            _ => k += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn credentials_are_recognised_by_list_and_by_name() {
        for name in [
            "Authorization",
            "X-Api-Token",
            "X-Auth-Token",
            "x-session-id",
            "Cookie",
            "writeKey",
            "client_secret",
            "X-Custom-Signature",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "content-type",
            "user-agent",
            "webhook-id",
            "Idempotency-Key",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    proptest! {
        /// The rule as written: the name lowercased, then the exceptions,
        /// the list and the parts, each looked for on its own.
        #[test]
        fn credential_names_follow_the_rule_in_any_case(
            name in prop_oneof![
                "[a-zA-Z_-]{0,24}",
                "\\PC{0,16}",
                prop::sample::select(
                    SECRET_HEADERS.iter().chain(NOT_CREDENTIALS).copied().collect::<Vec<_>>()
                ).prop_map(str::to_owned),
            ],
            upper in any::<u32>(),
            extra in prop::sample::select(vec!["", "-Timestamp", "x-", "Token", "é"]),
        ) {
            // Some letters turned uppercase, and a part or suffix added.
            let name: String = name
                .chars()
                .enumerate()
                .map(|(i, c)| if upper >> (i % 32) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .chain(extra.chars())
                .collect();
            let lower = name.to_ascii_lowercase();
            let expected = !(NOT_CREDENTIALS.contains(&lower.as_str()) || lower.ends_with("timestamp"))
                && (SECRET_HEADERS.contains(&lower.as_str())
                    || CREDENTIAL_NAME_PARTS.iter().any(|p| lower.contains(p)));
            prop_assert_eq!(is_credential_name(&name), expected, "{}", name);
        }
    }

    #[test]
    fn stored_headers_drop_credentials_and_lowercase_names() {
        let h = Headers::stored(
            [
                ("Authorization", "Basic abc"),
                ("Content-Type", "application/json"),
                ("X-Api-Token", "t"),
                ("X-Custom-Sig", "s"),
            ],
            &["x-custom-sig"],
        );
        assert_eq!(h.keys().collect::<Vec<_>>(), ["content-type"]);
    }

    #[test]
    fn stored_headers_are_bounded_and_say_what_was_dropped() {
        let big = "v".repeat(STORED_HEADER_VALUE_MAX_BYTES + 1);
        let many: Vec<(String, String)> = (0..500)
            .map(|i| (format!("x-h{i:03}"), "x".repeat(100)))
            .collect();
        let mut input: Vec<(&str, &str)> = vec![("x-big", big.as_str())];
        input.extend(many.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        input.push((DROPPED_HEADERS_NOTE, "forged"));
        let h = Headers::stored(input, &[]);
        let bytes: usize = h
            .iter()
            .filter(|(n, _)| *n != DROPPED_HEADERS_NOTE)
            .map(|(n, v)| n.len() + v.len())
            .sum();
        assert!(bytes <= STORED_HEADERS_MAX_BYTES, "{bytes}");
        assert!(h.len() <= STORED_HEADERS_MAX_COUNT + 1);
        assert!(!h.contains_key("x-big"));
        assert!(h.contains_key("x-h000"));
        let note = &h[DROPPED_HEADERS_NOTE];
        assert!(
            note.starts_with(&format!("{} headers", 501 - (h.len() - 1))),
            "{note}"
        );
    }

    #[test]
    fn clones_share_one_copy() {
        let h = Headers::stored([("a", "1")], &[]);
        let c = h.clone();
        assert!(Headers::same_copy(&h, &c));
        assert!(!Headers::same_copy(&h, &Headers::stored([("a", "1")], &[])));
        assert_eq!(h, Headers::stored([("a", "1")], &[]));
    }

    #[test]
    fn excerpts_lose_credential_values_only() {
        let body = br#"{"writeKey": "wk_live_123", "event":"A","properties":{"api_key":"k\"1","n":"x"},"token":5}"#;
        assert_eq!(
            redact_excerpt(body),
            r#"{"writeKey": "[redacted]", "event":"A","properties":{"api_key":"[redacted]","n":"x"},"token":5}"#
        );
        // Cut inside the value: redacted to the end.
        assert_eq!(
            redact_excerpt(br#"{"a":1,"writeKey":"wk_li"#),
            r#"{"a":1,"writeKey":"[redacted]"#
        );
        // A credential name as a value is not a key.
        assert_eq!(
            redact_excerpt(br#"["writeKey","x"]"#),
            r#"["writeKey","x"]"#
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_credential_value_never_survives_in_an_excerpt(
            prefix in "[ -~]{0,40}",
            key in "(writeKey|api_key|secret|X-Auth-Token|password)",
            value in "[a-zA-Z0-9_]{8,24}",
            suffix in "[ -~]{0,40}",
            cut in 0usize..200,
        ) {
            let body = format!(r#"{{"p":"{}","{key}" : "{value}","s":"{}"}}"#,
                prefix.replace(['"', '\\'], ""), suffix.replace(['"', '\\'], ""));
            let cut = cut.min(body.len());
            let out = redact_excerpt(&body.as_bytes()[..cut]);
            prop_assert!(!out.contains(&value), "{out}");
        }

        #[test]
        fn excerpts_of_any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = redact_excerpt(&bytes);
        }

        #[test]
        fn stored_headers_stay_within_the_limits(
            headers in proptest::collection::vec(("[a-zA-Z-]{1,20}", 0usize..1_500), 0..120),
        ) {
            let values: Vec<String> = headers.iter().map(|(_, len)| "v".repeat(*len)).collect();
            let h = Headers::stored(headers.iter().zip(&values).map(|((n, _), v)| (n.as_str(), v.as_str())), &[]);
            let bytes: usize = h.iter().filter(|(n, _)| *n != DROPPED_HEADERS_NOTE).map(|(n, v)| n.len() + v.len()).sum();
            prop_assert!(bytes <= STORED_HEADERS_MAX_BYTES);
            prop_assert!(h.len() <= STORED_HEADERS_MAX_COUNT + 1);
            prop_assert!(h.keys().all(|n| n == DROPPED_HEADERS_NOTE || !is_credential_name(n)));
        }
    }
}
