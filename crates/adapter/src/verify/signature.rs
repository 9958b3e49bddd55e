//! HMAC-SHA256 signatures in a header (Shopify-style), and the decoding and
//! MAC helpers the other schemes share.

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tributary_core::{Secret, config::SignatureEncoding};

use super::{VerificationFailure, required_header};
use crate::RawRequest;

const PADDING_OPTIONAL: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_OPTIONAL);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_OPTIONAL);

/// Decodes a presented signature. Base64 is accepted padded or not, in the
/// standard or the URL-safe alphabet.
pub(super) fn decode(encoding: SignatureEncoding, text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    match encoding {
        SignatureEncoding::Hex => hex::decode(text).map_err(|e| format!("not hex: {e}")),
        SignatureEncoding::Base64 => BASE64_STANDARD
            .decode(text)
            .or_else(|_| BASE64_URL_SAFE.decode(text))
            .map_err(|e| format!("not base64: {e}")),
    }
}

/// Decodes standard base64 with optional padding (Standard Webhooks secrets).
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    BASE64_STANDARD.decode(text.trim()).ok()
}

/// Whether `expected` is the HMAC-SHA256 of the concatenated `parts` under
/// `key`, compared in constant time (a truncated signature fails).
pub(super) fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// The `hmac-sha256` scheme: `header` holds the HMAC-SHA256 of the body,
/// hex or base64, optionally after `prefix` (`sha256=`).
pub(super) fn check_header(
    secret: &Secret,
    req: &RawRequest,
    header: &str,
    encoding: SignatureEncoding,
    prefix: Option<&str>,
    body: &[u8],
) -> Result<(), VerificationFailure> {
    let value = required_header(req, header)?;
    let value = match prefix {
        Some(prefix) => {
            value
                .strip_prefix(prefix)
                .ok_or_else(|| VerificationFailure::Malformed {
                    header: header.to_owned(),
                    reason: format!("expected the prefix `{prefix}`"),
                })?
        }
        None => value,
    };
    let presented = decode(encoding, value).map_err(|reason| VerificationFailure::Malformed {
        header: header.to_owned(),
        reason,
    })?;
    if hmac_sha256_matches(secret.expose().as_bytes(), &[body], &presented) {
        Ok(())
    } else {
        Err(VerificationFailure::Mismatch)
    }
}
