//! The event time of a Segment-spec event, with skew correction.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tributary_adapter::parse_timestamp;

use crate::Dialect;

/// The four timestamps an event may carry, parsed. Unparsable ones are
/// `None` and listed in `unparsable` (by field name) for the notes.
pub(crate) struct Timestamps {
    timestamp: Option<DateTime<Utc>>,
    original: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    pub(crate) unparsable: Vec<&'static str>,
}

impl Timestamps {
    pub(crate) fn read(item: &Map<String, Value>) -> Self {
        let mut unparsable = Vec::new();
        let mut get = |key: &'static str| match item.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let t = v.as_str().and_then(parse_timestamp);
                if t.is_none() {
                    unparsable.push(key);
                }
                t
            }
        };
        Self {
            timestamp: get("timestamp"),
            original: get("originalTimestamp"),
            sent_at: get("sentAt"),
            received_at: get("receivedAt"),
            unparsable,
        }
    }

    /// The event time under `dialect`'s rule; `now` is our receipt time.
    pub(crate) fn event_time(&self, dialect: Dialect, now: DateTime<Utc>) -> DateTime<Utc> {
        // An event Segment (or RudderStack) already processed carries its
        // own `receivedAt`; correcting against that reproduces the platform's
        // `timestamp` even when the delivery itself was retried hours later.
        let base = self.received_at.unwrap_or(now);
        match dialect {
            Dialect::Segment => {
                // As Segment: a caller-set `timestamp` on an unprocessed event
                // is the device time, i.e. the original timestamp.
                let original = self.original.or(if self.received_at.is_none() {
                    self.timestamp
                } else {
                    None
                });
                match (self.sent_at, original) {
                    (Some(sent), Some(original)) => corrected(base, sent, original)
                        .or(self.timestamp)
                        .unwrap_or(now),
                    _ => self.timestamp.or(original).unwrap_or(now),
                }
            }
            Dialect::Rudderstack => {
                // As rudder-server: only when the event has no `timestamp`,
                // with a missing `sentAt` or `originalTimestamp` read as
                // `receivedAt`.
                if let Some(t) = self.timestamp {
                    return t;
                }
                corrected(
                    base,
                    self.sent_at.unwrap_or(base),
                    self.original.unwrap_or(base),
                )
                .unwrap_or(now)
            }
        }
    }
}

/// `received - (sent - original)`, or `None` on overflow.
fn corrected(
    received: DateTime<Utc>,
    sent: DateTime<Utc>,
    original: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let skew = sent.signed_duration_since(original);
    received.checked_sub_signed(skew)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    fn time(item: Value, dialect: Dialect, now: &str) -> DateTime<Utc> {
        Timestamps::read(item.as_object().unwrap()).event_time(dialect, t(now))
    }

    #[test]
    fn the_worked_example_of_the_spec() {
        // docs/platform-payloads.md, "Timestamps and clock skew": device clock
        // ~1m57.75s fast.
        let item = json!({"originalTimestamp": "2025-03-01T10:00:00.000Z",
                          "sentAt": "2025-03-01T10:00:05.000Z"});
        assert_eq!(
            time(item, Dialect::Segment, "2025-03-01T09:58:07.250Z"),
            t("2025-03-01T09:58:02.250Z")
        );
    }

    #[test]
    fn a_delivered_event_keeps_the_platforms_time() {
        let item = json!({"originalTimestamp": "2025-03-01T10:00:00.000Z",
                          "sentAt": "2025-03-01T10:00:01.200Z",
                          "receivedAt": "2025-03-01T10:00:01.350Z",
                          "timestamp": "2025-03-01T10:00:00.150Z"});
        // Delivered four hours later: the time is still Segment's.
        assert_eq!(
            time(item, Dialect::Segment, "2025-03-01T14:00:00Z"),
            t("2025-03-01T10:00:00.150Z")
        );
    }

    #[test]
    fn an_sdk_timestamp_with_sent_at_is_corrected() {
        let item = json!({"timestamp": "2025-03-01T10:00:00Z", "sentAt": "2025-03-01T10:00:10Z"});
        assert_eq!(
            time(item, Dialect::Segment, "2025-03-01T09:00:10Z"),
            t("2025-03-01T09:00:00Z")
        );
    }

    #[test]
    fn fallbacks() {
        let now = "2025-03-01T12:00:00Z";
        assert_eq!(time(json!({}), Dialect::Segment, now), t(now));
        assert_eq!(
            time(
                json!({"timestamp": "2025-03-01T10:00:00+02:00"}),
                Dialect::Segment,
                now
            ),
            t("2025-03-01T08:00:00Z")
        );
        let item = json!({"timestamp": "garbage", "sentAt": 5});
        let ts = Timestamps::read(item.as_object().unwrap());
        assert_eq!(ts.unparsable, ["timestamp", "sentAt"]);
        assert_eq!(ts.event_time(Dialect::Segment, t(now)), t(now));
    }

    #[test]
    fn rudderstack_corrects_only_without_a_timestamp() {
        let now = "2025-03-01T12:00:00Z";
        let item = json!({"timestamp": "2025-03-01T10:00:00Z",
                          "originalTimestamp": "2025-03-01T10:00:00Z", "sentAt": "2025-03-01T10:05:00Z"});
        assert_eq!(
            time(item, Dialect::Rudderstack, now),
            t("2025-03-01T10:00:00Z")
        );
        let item =
            json!({"originalTimestamp": "2025-03-01T10:00:00Z", "sentAt": "2025-03-01T10:05:00Z"});
        assert_eq!(
            time(item, Dialect::Rudderstack, now),
            t("2025-03-01T11:55:00Z")
        );
        assert_eq!(
            time(
                json!({"sentAt": "2025-03-01T10:05:00Z"}),
                Dialect::Rudderstack,
                now
            ),
            t("2025-03-01T13:55:00Z")
        );
    }
}
