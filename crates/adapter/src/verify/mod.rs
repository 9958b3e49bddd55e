//! Request verification: every scheme of [`VerificationScheme`], checked over
//! the decoded body bytes before any parsing, compared in constant time.
//!
//! [`verify`] gives the outcome; [`enforce`] turns an enforced failure into a
//! 401-category [`AdapterError`] and lets everything else through, to be
//! recorded on the events (Knock's `verification_status`).

mod segment;
mod signature;
mod standard_webhooks;
mod timestamped;
mod token;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tributary_core::config::{Verification, VerificationScheme};

use crate::{AdapterError, RawRequest};

pub use standard_webhooks::standard_webhooks_key;
pub use timestamped::{TimestampUnit, verify_timestamped};

/// Why a check failed. Never carries a secret or a presented signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum VerificationFailure {
    /// The header carrying the credential is absent.
    MissingHeader {
        /// Its name.
        header: String,
    },
    /// The header is there but cannot be read (bad hex, no `t=`, ...).
    Malformed {
        /// Its name.
        header: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Well-formed, but not the right signature or token.
    Mismatch,
    /// The signed timestamp is outside the tolerance.
    OutsideTolerance {
        /// Seconds between the signed time and receipt (negative: in the future).
        skew_secs: i64,
        /// The tolerance in seconds.
        tolerance_secs: u64,
    },
}

impl VerificationFailure {
    /// Machine-readable code for logs and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader { .. } => "signature_missing",
            Self::Malformed { .. } => "signature_malformed",
            Self::Mismatch => "signature_mismatch",
            Self::OutsideTolerance { .. } => "timestamp_outside_tolerance",
        }
    }
}

impl fmt::Display for VerificationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader { header } => write!(f, "header `{header}` is missing"),
            Self::Malformed { header, reason } => {
                write!(f, "header `{header}` is malformed: {reason}")
            }
            Self::Mismatch => f.write_str("the signature does not match"),
            Self::OutsideTolerance {
                skew_secs,
                tolerance_secs,
            } => write!(
                f,
                "the signed timestamp is {skew_secs} s from receipt; at most {tolerance_secs} s is allowed"
            ),
        }
    }
}

/// What verification made of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VerificationOutcome {
    /// The source environment has no verification configured.
    NotConfigured,
    /// The check passed.
    Verified {
        /// Scheme name as in the config.
        scheme: String,
        /// Whether failures would have been rejected.
        enforced: bool,
    },
    /// The check failed. Only ever returned by [`enforce`] when not enforced.
    Failed {
        /// Scheme name as in the config.
        scheme: String,
        /// Whether the failure is enforced (rejected).
        enforced: bool,
        /// Why.
        failure: VerificationFailure,
    },
}

impl VerificationOutcome {
    /// A short label for the event log: `enforced:verified`,
    /// `unenforced:failed`, `not_configured`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Verified { enforced: true, .. } => "enforced:verified",
            Self::Verified {
                enforced: false, ..
            } => "unenforced:verified",
            Self::Failed { enforced: true, .. } => "enforced:failed",
            Self::Failed {
                enforced: false, ..
            } => "unenforced:failed",
        }
    }

    /// True unless the check ran and failed.
    pub fn passed(&self) -> bool {
        !matches!(self, Self::Failed { .. })
    }
}

/// Runs the configured check over `body` (the decoded body bytes), using
/// the request's receipt time as the clock.
pub fn verify(
    verification: Option<&Verification>,
    req: &RawRequest,
    body: &[u8],
) -> VerificationOutcome {
    let Some(verification) = verification else {
        return VerificationOutcome::NotConfigured;
    };
    let scheme = verification.scheme.name().to_owned();
    let enforced = verification.enforce;
    match check(&verification.scheme, req, body, req.received_at) {
        Ok(()) => VerificationOutcome::Verified { scheme, enforced },
        Err(failure) => VerificationOutcome::Failed {
            scheme,
            enforced,
            failure,
        },
    }
}

/// [`verify`], rejecting an enforced failure with an `Unauthorized` error;
/// the request's `prior_verification` when it has one.
pub fn enforce(
    verification: Option<&Verification>,
    req: &RawRequest,
    body: &[u8],
) -> Result<VerificationOutcome, AdapterError> {
    if let Some(prior) = &req.prior_verification {
        return Ok(prior.clone());
    }
    match verify(verification, req, body) {
        VerificationOutcome::Failed {
            scheme,
            enforced: true,
            failure,
        } => Err(AdapterError::Unauthorized {
            code: failure.code(),
            message: format!("{scheme} verification failed: {failure}"),
        }),
        outcome => Ok(outcome),
    }
}

/// The raw check for one scheme at time `now`.
pub fn check(
    scheme: &VerificationScheme,
    req: &RawRequest,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), VerificationFailure> {
    match scheme {
        VerificationScheme::SegmentSignature {
            secret,
            signed_part,
        } => segment::check(secret, *signed_part, req, body),
        VerificationScheme::HmacSha256 {
            secret,
            header,
            encoding,
            prefix,
        } => signature::check_header(secret, req, header, *encoding, prefix.as_deref(), body),
        VerificationScheme::Timestamped {
            secret,
            header,
            encoding,
            tolerance,
        } => timestamped::check(secret, req, header, *encoding, *tolerance, body, now),
        VerificationScheme::SharedSecret { secret, header } => {
            token::check_shared_secret(secret, req, header)
        }
        VerificationScheme::Bearer { token } => token::check_bearer(token, req),
        VerificationScheme::StandardWebhooks { secret, tolerance } => {
            standard_webhooks::check(secret, req, *tolerance, body, now)
        }
    }
}

/// A header value or a `MissingHeader` failure.
fn required_header<'r>(req: &'r RawRequest, name: &str) -> Result<&'r str, VerificationFailure> {
    req.header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| VerificationFailure::MissingHeader {
            header: name.to_owned(),
        })
}

/// Checks `|now - signed| <= tolerance`.
fn within_tolerance(
    signed: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance: std::time::Duration,
) -> Result<(), VerificationFailure> {
    let skew = now - signed;
    if u128::from(skew.num_milliseconds().unsigned_abs()) > tolerance.as_millis() {
        let skew_secs = skew.num_seconds();
        return Err(VerificationFailure::OutsideTolerance {
            skew_secs,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}
