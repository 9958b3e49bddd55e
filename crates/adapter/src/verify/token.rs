//! Static credentials: a shared-secret header (`x-webhook-secret` by
//! default, the custom source's default script) and `Authorization: Bearer`
//! (Amplitude, Clay). Both compare in constant time.

use tributary_core::Secret;

use super::{VerificationFailure, required_header};
use crate::RawRequest;

pub(super) fn check_shared_secret(
    secret: &Secret,
    req: &RawRequest,
    header: &str,
) -> Result<(), VerificationFailure> {
    let presented = required_header(req, header)?;
    if secret.matches(presented.as_bytes()) {
        Ok(())
    } else {
        Err(VerificationFailure::Mismatch)
    }
}

pub(super) fn check_bearer(token: &Secret, req: &RawRequest) -> Result<(), VerificationFailure> {
    let value = required_header(req, "authorization")?;
    let presented = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(VerificationFailure::Malformed {
                header: "authorization".to_owned(),
                reason: "expected `Bearer <token>`".to_owned(),
            });
        }
    };
    if token.matches(presented.as_bytes()) {
        Ok(())
    } else {
        Err(VerificationFailure::Mismatch)
    }
}
