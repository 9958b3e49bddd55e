//! Standard Webhooks (Svix): `webhook-id`, `webhook-timestamp` (seconds) and
//! `webhook-signature`, a space-separated list of `v1,<base64>` entries, each
//! the HMAC-SHA256 of `"<id>.<timestamp>.<body>"` keyed with the base64
//! secret after its `whsec_` prefix. Svix's own `svix-*` header names are
//! read when the `webhook-*` ones are absent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tributary_core::Secret;

use super::{VerificationFailure, required_header, signature, within_tolerance};
use crate::RawRequest;

pub(super) fn check(
    secret: &Secret,
    req: &RawRequest,
    tolerance: Duration,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), VerificationFailure> {
    let header = |name: &str| {
        required_header(req, &format!("webhook-{name}"))
            .or_else(|e| required_header(req, &format!("svix-{name}")).map_err(|_| e))
    };
    let id = header("id")?;
    let timestamp = header("timestamp")?;
    let signatures = header("signature")?;
    let signed_at = timestamp
        .parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| VerificationFailure::Malformed {
            header: "webhook-timestamp".to_owned(),
            reason: "not a Unix time in seconds".to_owned(),
        })?;
    let key = standard_webhooks_key(secret);
    let mut any_v1 = false;
    let mut matched = false;
    for entry in signatures.split_ascii_whitespace() {
        let Some(("v1", sig)) = entry.split_once(',') else {
            continue;
        };
        let Some(presented) = signature::decode_base64(sig) else {
            continue;
        };
        any_v1 = true;
        matched |= signature::hmac_sha256_matches(
            &key,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
            &presented,
        );
    }
    if !any_v1 {
        return Err(VerificationFailure::Malformed {
            header: "webhook-signature".to_owned(),
            reason: "no `v1,<base64>` entry".to_owned(),
        });
    }
    if !matched {
        return Err(VerificationFailure::Mismatch);
    }
    within_tolerance(signed_at, now, tolerance)
}

/// The HMAC key of a Standard Webhooks secret: the base64 after the optional
/// `whsec_` prefix. A secret that is not base64 is used as its bytes (after
/// the prefix): some senders document their secret as an opaque string. The
/// webhook sink signs with the same key, so what Tributary sends verifies here.
pub fn standard_webhooks_key(secret: &Secret) -> Vec<u8> {
    let raw = secret.expose();
    let encoded = raw.strip_prefix("whsec_").unwrap_or(raw);
    signature::decode_base64(encoded).unwrap_or_else(|| encoded.as_bytes().to_vec())
}
