//! Delivery settings (batching, sending, retrying) with their defaults, and
//! Segment's limits they are checked against.
//!
//! They deserialize from TOML (or any serde format) with every key optional,
//! so a service can embed them in its own configuration file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    OutboundError,
    batch::{BatchLimits, ENVELOPE_BYTES},
};

/// Segment's US endpoint (the default host).
pub const SEGMENT_US_HOST: &str = "https://api.segment.io";
/// Segment's EU endpoint.
pub const SEGMENT_EU_HOST: &str = "https://events.eu1.segmentapis.com";
/// Hard limit on events per batch request (Segment silently drops the rest).
pub const SEGMENT_MAX_BATCH_EVENTS: usize = 2_500;
/// Hard limit on one batch request's body, envelope included.
pub const SEGMENT_MAX_BATCH_BYTES: usize = 500_000;

/// How messages are batched, sent and retried.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Base URL without `/v1` (US default, EU, or any Segment-compatible
    /// endpoint such as a RudderStack data plane).
    pub host: String,
    /// Gzip request bodies (limits apply to the uncompressed JSON).
    pub gzip: bool,
    /// Events per request (default 500, at most 2,500).
    pub max_batch_events: usize,
    /// Bytes per request including the envelope (at most 500,000).
    pub max_batch_bytes: usize,
    /// Bytes per serialized event; larger events go to the dead letters.
    pub max_event_bytes: usize,
    /// A partial batch is sent once its oldest event is this old.
    pub flush_interval_ms: u64,
    /// Whole-request timeout (a hanging Segment counts as a network error).
    pub request_timeout_ms: u64,
    /// First backoff ceiling; each retry doubles it (full jitter below it).
    pub backoff_initial_ms: u64,
    /// Largest backoff ceiling.
    pub backoff_max_ms: u64,
    /// Longest pause a `Retry-After` can impose.
    pub max_retry_after_ms: u64,
    /// On shutdown, how long to keep flushing before leaving the rest queued.
    pub shutdown_grace_ms: u64,
    /// Requests in flight per environment. 1 keeps delivery in queue order;
    /// more keeps throughput up when Segment's round trip is long (one
    /// 500-event batch per 100 ms round trip is 5,000 events/s).
    pub max_in_flight: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            host: SEGMENT_US_HOST.to_owned(),
            gzip: false,
            max_batch_events: 500,
            // 25 KB under Segment's limit, as the official Python client does,
            // in case an intermediary adds to the body.
            max_batch_bytes: 475_000,
            // Segment says "32 KB"; clients disagree on the unit, so use the
            // stricter decimal reading.
            max_event_bytes: 32_000,
            flush_interval_ms: 1_000,
            request_timeout_ms: 10_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 60_000,
            max_retry_after_ms: 300_000,
            shutdown_grace_ms: 5_000,
            max_in_flight: 4,
        }
    }
}

impl DeliverySettings {
    /// Rejects settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), OutboundError> {
        let bad = |key: &str, problem: String| {
            Err(OutboundError::InvalidSetting {
                key: key.to_owned(),
                problem,
            })
        };
        if !(self.host.starts_with("http://") || self.host.starts_with("https://")) {
            return bad("host", format!("{:?} is not an http(s) URL", self.host));
        }
        if self.max_batch_events == 0 || self.max_batch_events > SEGMENT_MAX_BATCH_EVENTS {
            return bad(
                "max_batch_events",
                format!("must be between 1 and {SEGMENT_MAX_BATCH_EVENTS}"),
            );
        }
        if self.max_batch_bytes > SEGMENT_MAX_BATCH_BYTES || self.max_batch_bytes < 1_024 {
            return bad(
                "max_batch_bytes",
                format!("must be between 1024 and {SEGMENT_MAX_BATCH_BYTES}"),
            );
        }
        if self.max_event_bytes == 0 || self.max_event_bytes + ENVELOPE_BYTES > self.max_batch_bytes
        {
            return bad(
                "max_event_bytes",
                "must be positive and leave room for the envelope within max_batch_bytes"
                    .to_owned(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return bad(
                "backoff_initial_ms",
                "must be positive and at most backoff_max_ms".to_owned(),
            );
        }
        if self.max_in_flight == 0 || self.max_in_flight > 64 {
            return bad("max_in_flight", "must be between 1 and 64".to_owned());
        }
        if self.request_timeout_ms == 0 {
            return bad("request_timeout_ms", "must be positive".to_owned());
        }
        Ok(())
    }

    /// [`Self::flush_interval_ms`] as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// [`Self::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`Self::shutdown_grace_ms`] as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

impl From<&DeliverySettings> for BatchLimits {
    fn from(s: &DeliverySettings) -> Self {
        Self {
            max_events: s.max_batch_events,
            max_bytes: s.max_batch_bytes,
            max_event_bytes: s.max_event_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_within_segment_limits() {
        let d = DeliverySettings::default();
        d.validate().unwrap();
        assert!(d.max_batch_bytes <= SEGMENT_MAX_BATCH_BYTES);
        assert!(d.max_batch_events <= SEGMENT_MAX_BATCH_EVENTS);
    }

    #[test]
    fn rejects_over_limit_settings_by_key() {
        let d = DeliverySettings {
            max_batch_events: 3_000,
            ..Default::default()
        };
        assert!(
            matches!(d.validate(), Err(OutboundError::InvalidSetting { key, .. }) if key == "max_batch_events")
        );
        let d = DeliverySettings {
            host: "api.segment.io".into(),
            ..Default::default()
        };
        assert!(
            matches!(d.validate(), Err(OutboundError::InvalidSetting { key, .. }) if key == "host")
        );
    }
}
