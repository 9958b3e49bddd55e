//! The timestamped scheme: a header `t=<unix time>,s=<signature>` where the
//! signature is the HMAC-SHA256 of `"<t>.<body>"` (the product's own
//! `x-knock-signature`; Stripe's `t=...,v1=...` reads the same way).
//!
//! `t` is in seconds, or in milliseconds when larger than 10^11 (the product
//! signs with milliseconds). Several `s=`/`v1=` entries are allowed (secret
//! rotation); any match passes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tributary_core::{Secret, config::SignatureEncoding};

use super::{VerificationFailure, required_header, signature, within_tolerance};
use crate::RawRequest;

/// What a `t=` value counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampUnit {
    /// Seconds, or milliseconds when larger than 10^11 (senders differ).
    SecondsOrMillis,
    /// Always milliseconds (the product's `x-knock-signature`).
    Millis,
}

pub(super) fn check(
    secret: &Secret,
    req: &RawRequest,
    header: &str,
    encoding: SignatureEncoding,
    tolerance: Duration,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), VerificationFailure> {
    let value = required_header(req, header)?;
    verify_timestamped(
        secret,
        header,
        value,
        encoding,
        TimestampUnit::SecondsOrMillis,
        tolerance,
        body,
        now,
    )
}

/// Checks a `t=<time>,s=<signature>` header value (named `header` in
/// errors) against `body`: the HMAC-SHA256 of `"<t>.<body>"`, any of several
/// `s=`/`v1=` entries, then the time within `tolerance` of `now`. The one
/// implementation of the scheme, for inbound sources and the forwarder alike.
#[allow(clippy::too_many_arguments)]
pub fn verify_timestamped(
    secret: &Secret,
    header: &str,
    value: &str,
    encoding: SignatureEncoding,
    unit: TimestampUnit,
    tolerance: Duration,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), VerificationFailure> {
    let malformed = |reason: &str| VerificationFailure::Malformed {
        header: header.to_owned(),
        reason: reason.to_owned(),
    };
    let mut t = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if t.is_some() => return Err(malformed("more than one `t=` part")),
            "t" => t = Some(val.trim()),
            "s" | "v1" => signatures.push(val.trim()),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| malformed("no `t=` part"))?;
    if signatures.is_empty() {
        return Err(malformed("no `s=` part"));
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("`t` is not a Unix time"));
    }
    let n: i64 = t.parse().map_err(|_| malformed("`t` is out of range"))?;
    let millis = match unit {
        TimestampUnit::Millis => true,
        TimestampUnit::SecondsOrMillis => n > 100_000_000_000,
    };
    let signed_at = if millis {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
    .ok_or_else(|| malformed("`t` is out of range"))?;
    // The signature is checked before the clock so a stale but genuine
    // request reports staleness, and a forged one reports a mismatch.
    let mut matched = false;
    for sig in signatures {
        let presented = signature::decode(encoding, sig)
            .map_err(|_| malformed("a signature cannot be decoded"))?;
        matched |= signature::hmac_sha256_matches(
            secret.expose().as_bytes(),
            &[t.as_bytes(), b".", body],
            &presented,
        );
    }
    if !matched {
        return Err(VerificationFailure::Mismatch);
    }
    within_tolerance(signed_at, now, tolerance)
}
