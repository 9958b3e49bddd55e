//! The normalized event (docs/product-decisions.md, "The normalized event"): what every
//! adapter produces and what the event log, the dedup index and the mapping engine consume.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ulid::Ulid;

/// An event's id: a ULID assigned on receipt, so ids sort by receipt time and
/// the event log can key its hot table on something sequential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Ulid);

impl EventId {
    /// A fresh id for an event received at `received_at`.
    ///
    /// The random part comes from the thread RNG; the time part from
    /// `received_at`, so ids of a batch sort in receipt order.
    pub fn generate(received_at: DateTime<Utc>) -> Self {
        let ms = u64::try_from(received_at.timestamp_millis()).unwrap_or(0);
        Self(Ulid::from_parts(ms, rand_u128()))
    }

    /// An id from explicit parts: for tests and replays that need stable ids.
    pub fn from_parts(timestamp_ms: u64, random: u128) -> Self {
        Self(Ulid::from_parts(timestamp_ms, random))
    }

    /// The 128-bit value.
    pub fn as_u128(self) -> u128 {
        self.0.0
    }
}

// `ulid`'s own generator needs its `rand` feature; a `RandomState` hasher is
// seeded from the OS once per process and is enough for the 80 random bits
// (uniqueness, not secrecy).
fn rand_u128() -> u128 {
    use std::{
        cell::Cell,
        collections::hash_map::RandomState,
        hash::{BuildHasher, Hasher},
    };
    thread_local! {
        static STATE: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    STATE.with(|(seed, counter)| {
        let n = counter.get().wrapping_add(1);
        counter.set(n);
        let mut a = seed.build_hasher();
        a.write_u64(n);
        let mut b = seed.build_hasher();
        b.write_u64(!n);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    })
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EventId {
    type Err = ulid::DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(s).map(Self)
    }
}

/// What kind of call an event is. Segment's six calls, the classic `delete`,
/// a reverse-ETL resource call, and a custom webhook payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Segment `track`: a named event with properties.
    Track,
    /// Segment `identify`: a user and their traits.
    Identify,
    /// Segment `page`.
    Page,
    /// Segment `screen`.
    Screen,
    /// Segment `group`.
    Group,
    /// Segment `alias`.
    Alias,
    /// Segment's classic `delete` notification (logged, no built-in action).
    Delete,
    /// A call to the product's resource API (reverse ETL), whose action is the call itself.
    Resource,
    /// A payload from a custom HTTP source: any JSON object.
    Webhook,
}

impl EventKind {
    /// The lowercase name used in logs, the store and matching (`identify`, `page`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
            Self::Delete => "delete",
            Self::Resource => "resource",
            Self::Webhook => "webhook",
        }
    }

    /// Parses a Segment `type` value (case-sensitive, as Segment sends it).
    pub fn from_segment_type(s: &str) -> Option<Self> {
        Some(match s {
            "track" => Self::Track,
            "identify" => Self::Identify,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "group" => Self::Group,
            "alias" => Self::Alias,
            "delete" => Self::Delete,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::headers::Headers;

/// One normalized record, stored in the event log whatever happens to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Assigned on receipt.
    pub id: EventId,
    /// Environment slug (`development`, `production`, ...).
    pub environment: String,
    /// Source key.
    pub source: String,
    /// The kind of call.
    pub kind: EventKind,
    /// The type used for matching mappings: the track event name; `identify`,
    /// `page`, ... for the other calls; the configured path's value for custom sources.
    pub event: String,
    /// The user id, numbers coerced to strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Segment's `anonymousId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// Track properties, identify traits, or the whole body for custom sources.
    pub data: Value,
    /// Event time: Segment skew-corrected where possible, else receipt time.
    pub timestamp: DateTime<Utc>,
    /// When Tributary received it.
    pub received_at: DateTime<Utc>,
    /// The dedup key, when the event has a valid one (docs/product-decisions.md, "Dedup").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The original event as received (one item of a batch, envelope fields applied).
    pub raw: Value,
    /// The request headers, secrets removed.
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
    /// What the source environment's preprocess script returned besides
    /// `verified` (the product's `preprocess_output`); mappings read it as
    /// `preprocess.<key>` (docs/preprocess-scripts.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Value>,
}

/// Coerces a JSON id to a string (docs/product-decisions.md, "The normalized event"):
/// strings as they are, integers and floats in their shortest decimal form; anything else
/// is not an id.
pub fn coerce_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_sort_by_receipt_time_and_round_trip() {
        let t0 = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let t1 = DateTime::from_timestamp_millis(1_700_000_000_001).unwrap();
        let a = EventId::generate(t0);
        let b = EventId::generate(t1);
        assert!(a < b);
        assert_ne!(EventId::generate(t0), EventId::generate(t0));
        assert_eq!(a.to_string().parse::<EventId>().unwrap(), a);
    }

    #[test]
    fn numbers_are_coerced_to_string_ids() {
        assert_eq!(coerce_id(&json!(42)).as_deref(), Some("42"));
        assert_eq!(coerce_id(&json!("u1")).as_deref(), Some("u1"));
        assert_eq!(coerce_id(&json!(true)), None);
        assert_eq!(coerce_id(&json!(null)), None);
    }
}
