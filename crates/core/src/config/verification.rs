//! Request verification settings, per source environment. The checks
//! themselves live with the adapters (`tributary_adapter::verify`); this is
//! the configuration they read.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// How a source environment authenticates requests, and whether failures are enforced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verification {
    /// The scheme and its secret.
    pub scheme: VerificationScheme,
    /// Reject (401) on failure; when off, the result is only recorded on the event.
    pub enforce: bool,
}

/// Encoding of a signature in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lowercase or uppercase hex.
    #[default]
    Hex,
    /// Standard base64 (padded or not).
    Base64,
}

/// What of the body a `segment-signature` must cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SignedPart {
    /// The whole body, as received: nothing unsigned is accepted.
    #[default]
    Body,
    /// For a bare array, its first element only (Segment's batched
    /// deliveries); the other elements are not covered by the signature, so
    /// only the secrecy of the receive URL keeps anyone from appending to a
    /// captured request. Opt-in, per source environment.
    FirstElement,
}

impl SignedPart {
    /// The name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::FirstElement => "first-element",
        }
    }
}

/// The verification schemes Tributary checks, all over the raw body bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum VerificationScheme {
    /// Segment's `X-Signature`: hex HMAC-SHA1 of the whole body, or, where
    /// the source environment opts in, of a bare array batch's first element
    /// (what Segment signs for a batched delivery).
    SegmentSignature {
        /// The shared secret entered in Segment.
        secret: Secret,
        /// What the signature must cover.
        signed_part: SignedPart,
    },
    /// HMAC-SHA256 of the body in a configurable header (Shopify-style).
    HmacSha256 {
        /// Signing secret.
        secret: Secret,
        /// Header carrying the signature (lowercase).
        header: String,
        /// Hex or base64.
        encoding: SignatureEncoding,
        /// A prefix to strip before decoding (e.g. `sha256=`).
        prefix: Option<String>,
    },
    /// `t=<unix ts>,s=<signature>` over `"<ts>.<body>"` (HMAC-SHA256), rejected
    /// when the timestamp is outside the tolerance.
    Timestamped {
        /// Signing secret.
        secret: Secret,
        /// Header carrying `t=...,s=...` (lowercase).
        header: String,
        /// Hex or base64 for `s`.
        encoding: SignatureEncoding,
        /// Maximum clock difference.
        #[serde(with = "crate::config::duration_secs")]
        tolerance: Duration,
    },
    /// A static shared secret compared with a header (`x-webhook-secret` by default).
    SharedSecret {
        /// The expected value.
        secret: Secret,
        /// Header carrying it (lowercase).
        header: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The expected token.
        token: Secret,
    },
    /// Standard Webhooks / Svix: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.ts.body">`).
    StandardWebhooks {
        /// `whsec_<base64>` secret (the prefix is optional).
        secret: Secret,
        /// Maximum clock difference.
        #[serde(with = "crate::config::duration_secs")]
        tolerance: Duration,
    },
}

/// A verification scheme by its name alone, as a config's `scheme` key
/// holds it, before its settings are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemeKind {
    /// `segment-signature`.
    SegmentSignature,
    /// `hmac-sha256`.
    HmacSha256,
    /// `timestamped`.
    Timestamped,
    /// `shared-secret`.
    SharedSecret,
    /// `bearer`.
    Bearer,
    /// `standard-webhooks`.
    StandardWebhooks,
}

impl SchemeKind {
    /// Every scheme, in the order messages list them.
    pub const ALL: [Self; 6] = [
        Self::SegmentSignature,
        Self::HmacSha256,
        Self::Timestamped,
        Self::SharedSecret,
        Self::Bearer,
        Self::StandardWebhooks,
    ];

    /// The name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::SegmentSignature => "segment-signature",
            Self::HmacSha256 => "hmac-sha256",
            Self::Timestamped => "timestamped",
            Self::SharedSecret => "shared-secret",
            Self::Bearer => "bearer",
            Self::StandardWebhooks => "standard-webhooks",
        }
    }

    /// The scheme written as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every name, for a message: `a, b, ... or f`.
    pub(crate) fn names() -> String {
        let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

impl VerificationScheme {
    /// Which scheme this is.
    pub fn kind(&self) -> SchemeKind {
        match self {
            Self::SegmentSignature { .. } => SchemeKind::SegmentSignature,
            Self::HmacSha256 { .. } => SchemeKind::HmacSha256,
            Self::Timestamped { .. } => SchemeKind::Timestamped,
            Self::SharedSecret { .. } => SchemeKind::SharedSecret,
            Self::Bearer { .. } => SchemeKind::Bearer,
            Self::StandardWebhooks { .. } => SchemeKind::StandardWebhooks,
        }
    }

    /// The scheme's name as written in the config.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Headers that carry the credential, so the event log never stores them.
    pub fn secret_header(&self) -> Option<&str> {
        match self {
            Self::HmacSha256 { header, .. }
            | Self::Timestamped { header, .. }
            | Self::SharedSecret { header, .. } => Some(header),
            _ => None,
        }
    }
}

/// Default header for [`VerificationScheme::SharedSecret`].
pub const DEFAULT_SHARED_SECRET_HEADER: &str = "x-webhook-secret";
/// Default tolerance for timestamped schemes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
