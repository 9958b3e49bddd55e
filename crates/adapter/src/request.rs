//! The adapter input: one HTTP request, already read off the wire, with no
//! HTTP types in sight.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use tributary_core::{
    config::{DEFAULT_MAX_BODY_BYTES, Verification},
    event::{EventId, Headers},
};

use crate::VerificationOutcome;

/// Where event ids come from.
///
/// The service uses [`IdSource::random`]; tests and replays use
/// [`IdSource::sequential`] so that normalizing the same request twice yields
/// the same events.
#[derive(Debug, Default)]
pub struct IdSource {
    // `None`: random ids. An atomic rather than a `Cell` so a `RawRequest`
    // can be shared across threads.
    next: Option<AtomicU64>,
}

impl IdSource {
    /// Fresh random ids ([`EventId::generate`]).
    pub fn random() -> Self {
        Self { next: None }
    }

    /// Ids whose random part counts up from `start`: deterministic.
    pub fn sequential(start: u64) -> Self {
        Self {
            next: Some(AtomicU64::new(start)),
        }
    }

    /// The next id for an event received at `received_at`.
    pub fn next_id(&self, received_at: DateTime<Utc>) -> EventId {
        match &self.next {
            None => EventId::generate(received_at),
            Some(counter) => {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let ms = u64::try_from(received_at.timestamp_millis()).unwrap_or(0);
                EventId::from_parts(ms, u128::from(n))
            }
        }
    }
}

/// One request as the adapters see it: headers, the body bytes exactly as
/// received (possibly gzip-compressed), and where and when it arrived.
#[derive(Debug)]
pub struct RawRequest {
    /// Header name/value pairs in arrival order; names in any case.
    pub headers: Vec<(String, String)>,
    /// The body as received, before any decompression.
    pub body: Vec<u8>,
    /// Receipt time: the event time fallback and the verification clock.
    pub received_at: DateTime<Utc>,
    /// The source key.
    pub source: String,
    /// The environment slug.
    pub environment: String,
    /// The largest body accepted after decompression.
    pub max_body_bytes: usize,
    /// Where event ids come from.
    pub ids: IdSource,
    /// What verification made of the request as received, when `body` is
    /// no longer it (a preprocess script put a body of its own in its
    /// place): the adapters' verification returns this instead of checking
    /// a body the sender never signed.
    pub prior_verification: Option<VerificationOutcome>,
}

impl RawRequest {
    /// A request with no headers, random ids and the default 4 MiB body cap.
    pub fn new(
        source: impl Into<String>,
        environment: impl Into<String>,
        body: impl Into<Vec<u8>>,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            headers: Vec::new(),
            body: body.into(),
            received_at,
            source: source.into(),
            environment: environment.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            ids: IdSource::random(),
            prior_verification: None,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the id source.
    #[must_use]
    pub fn with_ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    /// Sets the decompressed body cap.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers to store with events (bounded, credentials removed: core's
    /// rule plus the header the source environment's verification scheme
    /// reads, if any). Call once per request: its events share the copy.
    pub fn stored_headers(&self, verification: Option<&Verification>) -> Headers {
        let extra = verification.and_then(|v| v.scheme.secret_header());
        Headers::stored(
            self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            extra.as_slice(),
        )
    }

    /// The next event id.
    pub fn next_id(&self) -> EventId {
        self.ids.next_id(self.received_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_repeat_for_the_same_start() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let a = IdSource::sequential(7);
        let b = IdSource::sequential(7);
        assert_eq!(a.next_id(t), b.next_id(t));
        assert_eq!(a.next_id(t), b.next_id(t));
        assert_ne!(a.next_id(t), IdSource::sequential(7).next_id(t));
    }

    #[test]
    fn headers_are_found_in_any_case_and_secrets_are_not_stored() {
        let t = DateTime::from_timestamp_millis(0).unwrap();
        let r = RawRequest::new("s", "e", b"{}".to_vec(), t)
            .with_header("Content-Type", "application/json")
            .with_header("X-Signature", "abc")
            .with_header("X-My-Sig", "def");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-signature"), Some("abc"));
        let verification = Verification {
            scheme: tributary_core::config::VerificationScheme::SharedSecret {
                secret: tributary_core::Secret::new("s"),
                header: "x-my-sig".to_owned(),
            },
            enforce: true,
        };
        let stored = r.stored_headers(Some(&verification));
        assert_eq!(stored.keys().collect::<Vec<_>>(), ["content-type"]);
    }
}
