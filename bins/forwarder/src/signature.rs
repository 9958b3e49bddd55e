//! The product's webhook signature: `x-knock-signature: t=<ms>,s=<base64>`,
//! where the signature is HMAC-SHA256 over `"<ms>.<raw body>"` with the
//! webhook's signing secret. Compared in constant time (`Mac::verify_slice`).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tributary_adapter::{
    VerificationFailure,
    verify::{TimestampUnit, verify_timestamped},
};
use tributary_core::{Secret, config::SignatureEncoding};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-knock-signature";

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// No header.
    Missing,
    /// The header is not `t=<ms>,s=<base64>`.
    Malformed,
    /// The timestamp is outside the tolerance.
    Stale,
    /// No signature matches.
    Mismatch,
}

impl SignatureError {
    /// Error code for the JSON error body.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed => "malformed_signature",
            Self::Stale => "stale_signature",
            Self::Mismatch => "invalid_signature",
        }
    }

    /// Human-readable message.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "the x-knock-signature header is required",
            Self::Malformed => "x-knock-signature must look like t=<milliseconds>,s=<base64>",
            Self::Stale => "the signature's timestamp is outside the allowed tolerance",
            Self::Mismatch => "the signature does not match the body",
        }
    }
}

/// Signs a body as the product does (for tests and tools).
pub fn sign(secret: &Secret, timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac = mac(secret, timestamp_ms);
    mac.update(body);
    format!(
        "t={timestamp_ms},s={}",
        STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn mac(secret: &Secret, timestamp_ms: i64) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac
}

/// Verifies a header value against the body with the one implementation of
/// the timestamped scheme (`tributary_adapter::verify::verify_timestamped`,
/// timestamps in milliseconds). Several `s=` values are allowed (any may
/// match), as during a secret rotation.
pub fn verify(
    secret: &Secret,
    header: Option<&str>,
    body: &[u8],
    now_ms: i64,
    tolerance_ms: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let now = chrono::DateTime::from_timestamp_millis(now_ms).ok_or(SignatureError::Stale)?;
    verify_timestamped(
        secret,
        SIGNATURE_HEADER,
        header,
        SignatureEncoding::Base64,
        TimestampUnit::Millis,
        std::time::Duration::from_millis(tolerance_ms.unsigned_abs()),
        body,
        now,
    )
    .map_err(|failure| match failure {
        VerificationFailure::MissingHeader { .. } => SignatureError::Missing,
        VerificationFailure::Malformed { .. } => SignatureError::Malformed,
        VerificationFailure::Mismatch => SignatureError::Mismatch,
        VerificationFailure::OutsideTolerance { .. } => SignatureError::Stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_772_359_200_000;
    const TOL: i64 = 300_000;

    #[test]
    fn round_trip_and_tolerance() {
        let secret = Secret::new("whsec_test");
        let body = br#"{"type":"message.sent"}"#;
        let header = sign(&secret, NOW, body);
        assert_eq!(verify(&secret, Some(&header), body, NOW, TOL), Ok(()));
        assert_eq!(verify(&secret, Some(&header), body, NOW + TOL, TOL), Ok(()));
        assert_eq!(
            verify(&secret, Some(&header), body, NOW + TOL + 1, TOL),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&secret, Some(&header), body, NOW - TOL - 1, TOL),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&Secret::new("other"), Some(&header), body, NOW, TOL),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret, Some(&header), b"{}", NOW, TOL),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        let secret = Secret::new("k");
        for h in [
            "",
            "t=",
            "t=abc,s=AAAA",
            "s=AAAA",
            "t=1",
            "t=1,s=!!!",
            "garbage",
            "t=1,t=2,s=AAAA",
            "t=-5,s=AAAA",
        ] {
            assert_eq!(
                verify(&secret, Some(h), b"", NOW, TOL),
                Err(SignatureError::Malformed),
                "{h:?}"
            );
        }
        assert_eq!(
            verify(&secret, None, b"", NOW, TOL),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let secret = Secret::new("k");
        let good = sign(&secret, NOW, b"x");
        let s = good.split_once(",s=").unwrap().1;
        let header = format!("t={NOW},s=AAAA,s={s}");
        assert_eq!(verify(&secret, Some(&header), b"x", NOW, TOL), Ok(()));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn verify_never_panics_on_any_header(
            header in ".{0,80}",
            body in prop::collection::vec(any::<u8>(), 0..64),
            now in any::<i64>(),
            tolerance in any::<i64>(),
        ) {
            let _ = verify(&Secret::new("k"), Some(&header), &body, now, tolerance);
        }

        #[test]
        fn structured_but_wrong_headers_never_verify(
            t in "[0-9]{0,20}",
            s in "[A-Za-z0-9+/=]{0,60}",
            body in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let header = format!("t={t},s={s}");
            prop_assert!(verify(&Secret::new("k"), Some(&header), &body, 0, i64::MAX).is_err());
        }

        #[test]
        fn what_is_signed_verifies_and_nothing_else(
            secret in "[ -~]{1,40}",
            body in prop::collection::vec(any::<u8>(), 0..256),
            at in 0i64..4_000_000_000_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let secret = Secret::new(secret);
            let header = sign(&secret, at, &body);
            prop_assert_eq!(verify(&secret, Some(&header), &body, at, 300_000), Ok(()));
            if !body.is_empty() {
                let mut tampered = body;
                let i = flip.index(tampered.len());
                tampered[i] ^= 0x01;
                prop_assert_eq!(
                    verify(&secret, Some(&header), &tampered, at, 300_000),
                    Err(SignatureError::Mismatch)
                );
            }
        }
    }
}
