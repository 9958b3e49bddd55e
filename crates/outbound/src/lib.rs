//! Reliable delivery of Segment messages, usable by any Rust service.
//!
//! - [`Message`] and friends: typed Segment calls (track, identify, page,
//!   screen, group, alias), validated before anything is queued, because
//!   Segment answers 200 to invalid events and then drops them.
//! - [`Transform`]: the product's message lifecycle webhooks as Segment
//!   `track` events (docs/product-decisions.md, "Forwarding out"), with a
//!   deterministic `messageId`.
//! - [`DurableQueue`]: SQLite (WAL, `synchronous=FULL`, group commit); an
//!   entry is acknowledged only once it is on disk. Dead letters live beside
//!   it, listable and re-drivable; [`Pruner`] applies a
//!   [`RetentionPolicy`] (age and count) to them in bounded batches, and
//!   moves entries of environments no longer forwarded ([`Forwarding`]) to
//!   the dead letters. A repeat of a message queued or accepted within a
//!   [`RedeliveryWindow`] is dropped at enqueue ([`Submitted::Duplicate`]).
//! - [`Batcher`] and [`encode_batch`]: request bodies within Segment's limits.
//! - [`SegmentClient`] and [`classify_status`]: `POST {host}/v1/batch` with Basic auth,
//!   optional gzip, `sentAt` per send; retry classes and full-jitter backoff.
//! - [`Dispatcher`]: the loop that ties them together, one task per
//!   environment, a 429 pausing only the write key that got it.
//!
//! ```
//! use tributary_outbound::{TransformOutcome, Transform, TransformSettings, parse_envelope};
//!
//! let body = br#"{"__typename":"Event","type":"message.read",
//!   "created_at":"2026-03-01T10:00:00.000Z",
//!   "data":{"id":"2w3YUpTTOxuDvZFji8OMsKrG176","recipient":"user-1",
//!           "channel":{"id":"ch-1","type":"in_app_feed","provider":"knock"},
//!           "source":{"key":"welcome","step_ref":"feed_1"}},
//!   "event_data":null}"#;
//! let transform = Transform::new(TransformSettings::default())?;
//! let envelope = parse_envelope(body)?;
//! let TransformOutcome::Forward(message) = transform.apply(&envelope, "production")? else {
//!     unreachable!("a read event is forwarded");
//! };
//! let encoded = message.encode()?;
//! let json: serde_json::Value = serde_json::from_slice(&encoded.json)?;
//! assert_eq!(json["event"], "Notification Read");
//! assert_eq!(json["userId"], "user-1");
//! assert_eq!(json["properties"]["workflowKey"], "welcome");
//! // The same webhook always gets the same Segment messageId.
//! assert_eq!(encoded.message_id, transform
//!     .apply(&parse_envelope(body)?, "production")?
//!     .into_message().unwrap().message_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod client;
mod config;
mod dead_letter;
mod dispatcher;
mod error;
#[cfg(feature = "fake-segment")]
pub mod fake_segment;
mod forwarding;
mod message;
mod queue;
mod redelivery;
mod retention;
mod retry;
mod transform;
mod unix_ms;

// Every item has one public path: these re-exports; the modules are private.
pub use batch::{BatchLimits, Batcher, Push, encode_batch, envelope_len};
pub use client::{SegmentClient, SendOutcome};
pub use config::{
    DeliverySettings, SEGMENT_EU_HOST, SEGMENT_MAX_BATCH_BYTES, SEGMENT_MAX_BATCH_EVENTS,
    SEGMENT_US_HOST,
};
pub use dead_letter::{Burial, DeadLetter, DeadLetterFilter, Pruned, STEP_BYTES};
pub use dispatcher::{Destination, Dispatcher, PauseBoard};
pub use error::{OutboundError, QueueFailure};
pub use forwarding::{Forwarding, NOT_FORWARDED, NotForwarded};
pub use message::{
    Alias, Common, EncodedMessage, Group, Identify, Identity, MAX_MESSAGE_ID_CHARS, Message, Page,
    Screen, Track, format_timestamp, random_message_id, validate_json,
};
pub use queue::{DurableQueue, Entry, Forgotten, NewEntry, QueueStats, REDRIVE_BATCH, Submitted};
pub use redelivery::{FirstCopy, Redelivery, RedeliveryWindow};
pub use retention::{Pruner, RetentionPolicy, RetentionReport};
pub use retry::{Backoff, StatusClass, classify_status, parse_retry_after};
pub use transform::{
    LifecycleEvent, NameStyle, ObjectRecipients, Transform, TransformOutcome, TransformSettings,
    TransformSkip, UnmappedEvents, WebhookEnvelope, derive_message_id, envelope_from_value,
    parse_envelope,
};

impl TransformOutcome {
    /// The message, when the outcome is to forward.
    pub fn into_message(self) -> Option<Message> {
        match self {
            Self::Forward(m) => Some(m),
            Self::Skip(_) => None,
        }
    }
}
