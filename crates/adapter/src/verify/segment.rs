//! Segment's `X-Signature`: hex HMAC-SHA1 of the body with the shared secret.
//!
//! The whole body is checked unless the source environment opts in to
//! [`SignedPart::FirstElement`]. For a batched delivery (a bare JSON array)
//! Segment signs only `JSON.stringify(payload[0])`, which is exactly the
//! first element's bytes in the body it sends; in that mode the MAC runs over
//! that raw slice, never over a re-serialisation. The rest of such a batch is
//! not covered: a signature captured from any one-event request verifies that
//! event with anything appended after it, which is why the mode is opt-in
//! (docs/security.md).

use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use sha1::Sha1;
use tributary_core::{Secret, config::SignedPart};

use super::{VerificationFailure, required_header};
use crate::RawRequest;

/// The header Segment signs with.
pub(super) const HEADER: &str = "x-signature";

pub(super) fn check(
    secret: &Secret,
    signed_part: SignedPart,
    req: &RawRequest,
    body: &[u8],
) -> Result<(), VerificationFailure> {
    let value = required_header(req, HEADER)?;
    let presented = hex::decode(value).map_err(|e| VerificationFailure::Malformed {
        header: HEADER.to_owned(),
        reason: format!("not hex: {e}"),
    })?;
    let signed = match signed_part {
        SignedPart::Body => body,
        SignedPart::FirstElement => first_element(body),
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()) else {
        return Err(VerificationFailure::Mismatch);
    };
    mac.update(signed);
    mac.verify_slice(&presented)
        .map_err(|_| VerificationFailure::Mismatch)
}

/// The bytes Segment signs for a batch: the first element of an array body,
/// else the whole body. An array whose first element does not parse is checked as a
/// whole (and so fails), which keeps "bad signature" ahead of "bad JSON" for
/// callers that enforce verification.
fn first_element(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    if body.get(start) != Some(&b'[') {
        return body;
    }
    // Read only the first element: a 4 MB batch is not scanned twice.
    // Objects end themselves, so the `,` after one is left for a later read
    // that never happens.
    let rest = &body[start + 1..];
    match serde_json::Deserializer::from_slice(rest)
        .into_iter::<&RawValue>()
        .next()
    {
        Some(Ok(first)) => first.get().as_bytes(),
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_element_is_signed_for_arrays() {
        let body = br#" [ {"a":1, "b":[2]} ,{"c":3}]"#;
        assert_eq!(first_element(body), br#"{"a":1, "b":[2]}"#);
        assert_eq!(first_element(br#"{"a":1}"#), br#"{"a":1}"#);
        assert_eq!(first_element(b"[]"), b"[]");
        assert_eq!(first_element(b"[{"), b"[{");
        assert_eq!(first_element(b"[\n  {\"a\":1}\n,"), br#"{"a":1}"#);
        assert_eq!(first_element(b"[1,2]"), b"1");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let deep = vec![b'['; 1 << 20];
        assert_eq!(first_element(&deep).len(), deep.len());
        let mut closed = vec![b'['; 100_000];
        closed.extend(vec![b']'; 100_000]);
        let _ = first_element(&closed);
    }
}
