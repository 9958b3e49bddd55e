//! What one attempt at an action came to, and how an HTTP answer maps to it
//! (docs/product-decisions.md, "Guarantees"): 2xx succeeds; 408, 409, 429, 5xx
//! and network errors are retried, honouring `Retry-After`; any other answer
//! fails for good.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The result of one attempt, as recorded in the action log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Done; the effect happened (or had already happened).
    Succeeded {
        /// HTTP status, for sinks that speak HTTP.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// A short, bounded summary of the answer.
        summary: String,
    },
    /// Failed in a way that may pass later: try again.
    Retry {
        /// HTTP status, when there was an answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// The receiver's `Retry-After`, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
        retry_after: Option<Duration>,
    },
    /// Failed for good: retrying cannot help.
    Failed {
        /// HTTP status, when there was an answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64))
    }
}

/// The most of a response body kept in the action log.
pub const SUMMARY_LIMIT: usize = 512;

/// Cuts `text` to [`SUMMARY_LIMIT`] bytes on a character boundary.
pub fn bounded(text: &str) -> String {
    if text.len() <= SUMMARY_LIMIT {
        return text.to_owned();
    }
    let mut end = SUMMARY_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Maps an HTTP answer to an outcome.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let summary = bounded(body);
    match status {
        200..=299 => Outcome::Succeeded {
            status: Some(status),
            summary,
        },
        408 | 409 | 429 | 500..=599 => Outcome::Retry {
            status: Some(status),
            error: format!("HTTP {status}: {summary}"),
            retry_after,
        },
        _ => Outcome::Failed {
            status: Some(status),
            error: format!("HTTP {status}: {summary}"),
        },
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date relative to `now`.
/// A date in the past means "now"; nonsense means no hint.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_contract() {
        assert!(matches!(classify(200, None, ""), Outcome::Succeeded { .. }));
        assert!(matches!(classify(204, None, ""), Outcome::Succeeded { .. }));
        for retried in [408, 409, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(retried, None, ""), Outcome::Retry { .. }),
                "{retried}"
            );
        }
        for permanent in [301, 400, 401, 403, 404, 413, 422] {
            assert!(
                matches!(classify(permanent, None, ""), Outcome::Failed { .. }),
                "{permanent}"
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn summaries_are_bounded_on_char_boundaries() {
        let long = "é".repeat(1000);
        let cut = bounded(&long);
        assert!(cut.len() <= SUMMARY_LIMIT + "…".len());
        assert!(cut.ends_with('…'));
    }
}
