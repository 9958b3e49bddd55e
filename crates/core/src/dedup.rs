//! Dedup key extraction and validation (docs/product-decisions.md, "Dedup"), as
//! pure functions.
//!
//! The time window and the "already seen?" question belong to the store,
//! which enforces them with a unique index so they hold across processes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{config::DedupSettings, event::Event, json::json_type, path::PathInput};

/// The longest key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// What dedup makes of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "dedup", rename_all = "snake_case")]
pub enum DedupDecision {
    /// Dedup is off for this source environment.
    Disabled,
    /// The event has no key: it runs normally.
    NoKey,
    /// The key was not usable: it is dropped and the event runs non-idempotently.
    Dropped {
        /// Why.
        reason: InvalidKey,
    },
    /// Check this scope against the store within the window.
    Check(DedupScope),
}

/// Why a key was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum InvalidKey {
    /// A number, object, array, boolean or null.
    #[error("dedup key is not a string (found {found})")]
    NotAString {
        /// The JSON type found.
        found: String,
    },
    /// Longer than [`MAX_KEY_CHARS`].
    #[error("dedup key has {chars} characters; at most 255 are allowed")]
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// The empty string.
    #[error("dedup key is empty")]
    Empty,
}

/// The scope a key is unique in: key + event type + source + environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DedupScope {
    /// The key.
    pub key: String,
    /// The event type.
    pub event_type: String,
    /// Source key.
    pub source: String,
    /// Environment slug.
    pub environment: String,
    /// How long the key blocks repeats.
    #[serde(with = "window_secs")]
    pub window: Duration,
}

mod window_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Validates a candidate key.
pub fn validate_key(value: &Value) -> Result<&str, InvalidKey> {
    let Value::String(key) = value else {
        return Err(InvalidKey::NotAString {
            found: json_type(value).to_owned(),
        });
    };
    if key.is_empty() {
        return Err(InvalidKey::Empty);
    }
    // Count characters only when the byte length could exceed the limit.
    if key.len() > MAX_KEY_CHARS {
        let chars = key.chars().count();
        if chars > MAX_KEY_CHARS {
            return Err(InvalidKey::TooLong { chars });
        }
    }
    Ok(key)
}

/// Decides what dedup does with `event` under `settings`.
pub fn decide(event: &Event, settings: &DedupSettings) -> DedupDecision {
    if !settings.enabled {
        return DedupDecision::Disabled;
    }
    let Some(value) = settings.key_path.resolve(PathInput::of(event)) else {
        return DedupDecision::NoKey;
    };
    if value.is_null() {
        return DedupDecision::NoKey;
    }
    match validate_key(&value) {
        Ok(key) => DedupDecision::Check(DedupScope {
            key: key.to_owned(),
            event_type: event.event.clone(),
            source: event.source.clone(),
            environment: event.environment.clone(),
            window: settings.window,
        }),
        Err(reason) => DedupDecision::Dropped { reason },
    }
}

/// [`decide`], then records the outcome on the event: `message_id` becomes
/// the checked key, or is cleared when the key was dropped (a dropped key does
/// not appear in the event log).
pub fn apply(event: &mut Event, settings: &DedupSettings) -> DedupDecision {
    let decision = decide(event, settings);
    match &decision {
        DedupDecision::Check(scope) => event.message_id = Some(scope.key.clone()),
        DedupDecision::Dropped { .. } => event.message_id = None,
        DedupDecision::Disabled | DedupDecision::NoKey => {}
    }
    decision
}
