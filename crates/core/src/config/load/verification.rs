//! A source environment's `verification` table.

use super::Cx;
use crate::config::{raw::*, verification::*};

impl Cx<'_> {
    pub(super) fn verification(
        &mut self,
        raw: &S<RawVerification>,
        field: &str,
    ) -> Option<Verification> {
        let span = raw.span();
        let raw = raw.get_ref();
        let Some(written) = &raw.scheme else {
            self.error(
                span,
                format!("{field}.scheme"),
                format!("is required: {}", SchemeKind::names()),
            );
            return None;
        };
        let Some(kind) = SchemeKind::from_name(written.get_ref()) else {
            self.error(
                written.span(),
                format!("{field}.scheme"),
                format!(
                    "unknown scheme `{}`; expected {}",
                    written.get_ref(),
                    SchemeKind::names()
                ),
            );
            return None;
        };
        let allowed = settings_of(kind);
        let present = [
            ("header", raw.header.as_ref().map(|h| h.span())),
            ("encoding", raw.encoding.as_ref().map(|h| h.span())),
            ("prefix", raw.prefix.as_ref().map(|h| h.span())),
            ("tolerance", raw.tolerance.as_ref().map(|h| h.span())),
            ("signed_part", raw.signed_part.as_ref().map(|h| h.span())),
        ];
        for (name, at) in present {
            if let Some(at) = at
                && !allowed.contains(&name)
            {
                self.error(
                    at,
                    format!("{field}.{name}"),
                    format!("`{name}` does not apply to the `{}` scheme", kind.name()),
                );
            }
        }
        let secret = match &raw.secret {
            Some(s) => self.secret(s, &format!("{field}.secret")),
            None => {
                self.error(span.clone(), format!("{field}.secret"), "is required");
                None
            }
        };
        let header = |default: Option<&str>, cx: &mut Self| -> Option<String> {
            match (&raw.header, default) {
                (Some(h), _) => Some(h.get_ref().to_ascii_lowercase()),
                (None, Some(d)) => Some(d.to_owned()),
                (None, None) => {
                    cx.error(
                        span.clone(),
                        format!("{field}.header"),
                        "is required for this scheme",
                    );
                    None
                }
            }
        };
        let encoding = |cx: &mut Self, default: SignatureEncoding| match &raw.encoding {
            None => Some(default),
            Some(e) => match e.get_ref().as_str() {
                "hex" => Some(SignatureEncoding::Hex),
                "base64" => Some(SignatureEncoding::Base64),
                other => {
                    cx.error(
                        e.span(),
                        format!("{field}.encoding"),
                        format!("unknown encoding `{other}`; expected `hex` or `base64`"),
                    );
                    None
                }
            },
        };
        let tolerance = |cx: &mut Self| match &raw.tolerance {
            None => Some(DEFAULT_TOLERANCE),
            Some(t) => cx.duration(t, &format!("{field}.tolerance")),
        };
        let scheme = match kind {
            SchemeKind::SegmentSignature => {
                let signed_part = match &raw.signed_part {
                    None => Some(SignedPart::Body),
                    Some(p) => match p.get_ref().as_str() {
                        "body" => Some(SignedPart::Body),
                        "first-element" => Some(SignedPart::FirstElement),
                        other => {
                            self.error(
                                p.span(),
                                format!("{field}.signed_part"),
                                format!(
                                    "unknown value `{other}`; expected `body` or `first-element`"
                                ),
                            );
                            None
                        }
                    },
                };
                VerificationScheme::SegmentSignature {
                    secret: secret?,
                    signed_part: signed_part?,
                }
            }
            SchemeKind::Bearer => VerificationScheme::Bearer { token: secret? },
            SchemeKind::HmacSha256 => {
                let header = header(None, self);
                let encoding = encoding(self, SignatureEncoding::Hex);
                VerificationScheme::HmacSha256 {
                    secret: secret?,
                    header: header?,
                    encoding: encoding?,
                    prefix: raw.prefix.as_ref().map(|p| p.get_ref().clone()),
                }
            }
            SchemeKind::Timestamped => {
                let header = header(None, self);
                let encoding = encoding(self, SignatureEncoding::Base64);
                let tolerance = tolerance(self);
                VerificationScheme::Timestamped {
                    secret: secret?,
                    header: header?,
                    encoding: encoding?,
                    tolerance: tolerance?,
                }
            }
            SchemeKind::SharedSecret => VerificationScheme::SharedSecret {
                secret: secret?,
                header: header(Some(DEFAULT_SHARED_SECRET_HEADER), self)?,
            },
            SchemeKind::StandardWebhooks => {
                let tolerance = tolerance(self);
                VerificationScheme::StandardWebhooks {
                    secret: secret?,
                    tolerance: tolerance?,
                }
            }
        };
        Some(Verification {
            scheme,
            enforce: raw.enforce.as_ref().is_none_or(|e| *e.get_ref()),
        })
    }
}

/// The keys of a `verification` table each scheme reads besides `scheme`
/// and `enforce`.
fn settings_of(kind: SchemeKind) -> &'static [&'static str] {
    match kind {
        SchemeKind::SegmentSignature => &["secret", "signed_part"],
        SchemeKind::HmacSha256 => &["secret", "header", "encoding", "prefix"],
        SchemeKind::Timestamped => &["secret", "header", "encoding", "tolerance"],
        SchemeKind::SharedSecret => &["secret", "header"],
        SchemeKind::Bearer => &["secret"],
        SchemeKind::StandardWebhooks => &["secret", "tolerance"],
    }
}
