//! What to do with each answer from Segment, and how long to wait.
//!
//! Retried: network errors and timeouts, 5xx except 501/505, 408, 429, and 3xx
//! (a misconfigured host must not drop data). 429 pauses the write key for
//! `Retry-After` (or `X-RateLimit-Reset`) seconds. 400 and 413 are never
//! retried as a whole: the batch is split and re-validated, and what still
//! fails alone is dead-lettered. Other 4xx (and 501/505) are permanent.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How a response status is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: delivered.
    Delivered,
    /// Try the same batch again after a backoff.
    Retry,
    /// 429: pause this write key, then try again.
    RateLimited,
    /// 400/413: split the batch, re-validate, dead-letter single failures.
    Split,
    /// Permanent failure: dead-letter the batch.
    Reject,
}

/// Classifies an HTTP status from Segment.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Delivered,
        429 => StatusClass::RateLimited,
        400 | 413 => StatusClass::Split,
        408 => StatusClass::Retry,
        501 | 505 => StatusClass::Reject,
        500..=599 | 300..=399 => StatusClass::Retry,
        _ => StatusClass::Reject,
    }
}

/// Parses `Retry-After` (delta-seconds or an HTTP date) or
/// `X-RateLimit-Reset` (seconds) into a wait from `now`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds.min(1e9)));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Exponential backoff with full jitter: the wait before retry `n` is uniform
/// in `[0, min(max, initial * 2^n)]`, which spreads retries of many senders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first ceiling.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling for retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A jittered wait for retry number `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_contract() {
        assert_eq!(classify_status(200), StatusClass::Delivered);
        assert_eq!(classify_status(204), StatusClass::Delivered);
        for s in [500, 502, 503, 504, 408, 307] {
            assert_eq!(classify_status(s), StatusClass::Retry, "{s}");
        }
        for s in [501, 505, 401, 403, 404, 422] {
            assert_eq!(classify_status(s), StatusClass::Reject, "{s}");
        }
        assert_eq!(classify_status(400), StatusClass::Split);
        assert_eq!(classify_status(413), StatusClass::Split);
        assert_eq!(classify_status(429), StatusClass::RateLimited);
    }

    #[test]
    fn retry_after_forms() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 00:00:30 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitters_below_it() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(40), Duration::from_secs(10));
        for attempt in 0..50 {
            assert!(b.delay(attempt) <= b.ceiling(attempt));
        }
    }
}
