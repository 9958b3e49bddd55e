//! A size-aware batcher and the `/v1/batch` body encoder.
//!
//! Limits (docs/platform-payloads.md, "Segment's Tracking API"): each request's body,
//! envelope included, within `max_batch_bytes` (Segment: 500,000); each event within
//! `max_event_bytes` (Segment: 32 KB) or it is refused here, never sent; at most
//! `max_batch_events` events (Segment: 2,500, silently dropping the rest). Events
//! are kept as their serialized JSON so the body is a concatenation, and `sentAt`
//! can be stamped at each (re)send for free.

use chrono::{DateTime, Utc};

use crate::message::format_timestamp;

const PREFIX: &[u8] = br#"{"batch":["#;
const SENT_AT_OPEN: &[u8] = br#"],"sentAt":""#;
const SENT_AT_LEN: usize = "2026-01-01T00:00:00.000Z".len();
const LIBRARY_NAME: &str = "tributary";

/// An upper bound on the envelope's size, so settings can be checked.
pub(crate) const ENVELOPE_BYTES: usize = 256;

/// The limits one batch respects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Events per batch.
    pub max_events: usize,
    /// Bytes per encoded request body.
    pub max_bytes: usize,
    /// Bytes per event.
    pub max_event_bytes: usize,
}

/// What [`Batcher::push`] did with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Push<T> {
    /// Added to the batch.
    Added,
    /// The batch is full; the event is handed back for the next batch.
    Full(T),
    /// The event alone breaks `max_event_bytes` (or could never fit in a
    /// batch); it must be dead-lettered, not retried.
    TooLarge(T),
}

/// Accumulates serialized events into one batch within [`BatchLimits`].
#[derive(Debug)]
pub struct Batcher<T> {
    limits: BatchLimits,
    items: Vec<T>,
    body_bytes: usize,
}

impl<T: AsRef<[u8]>> Batcher<T> {
    /// An empty batch.
    pub fn new(limits: BatchLimits) -> Self {
        Self {
            limits,
            items: Vec::new(),
            body_bytes: envelope_len(),
        }
    }

    /// Adds an event if the batch has room for it.
    pub fn push(&mut self, item: T) -> Push<T> {
        let len = item.as_ref().len();
        if len > self.limits.max_event_bytes || envelope_len() + len > self.limits.max_bytes {
            return Push::TooLarge(item);
        }
        let separator = usize::from(!self.items.is_empty());
        if self.items.len() >= self.limits.max_events
            || self.body_bytes + separator + len > self.limits.max_bytes
        {
            return Push::Full(item);
        }
        self.body_bytes += separator + len;
        self.items.push(item);
        Push::Added
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no event was added.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The exact size [`encode_batch`] will produce for the current events.
    pub fn encoded_len(&self) -> usize {
        self.body_bytes
    }

    /// Takes the events out, leaving the batcher empty.
    pub fn take(&mut self) -> Vec<T> {
        self.body_bytes = envelope_len();
        std::mem::take(&mut self.items)
    }
}

fn library_suffix() -> String {
    format!(
        r#"","context":{{"library":{{"name":"{LIBRARY_NAME}","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// The size of the envelope around the events.
pub fn envelope_len() -> usize {
    PREFIX.len() + SENT_AT_OPEN.len() + SENT_AT_LEN + library_suffix().len()
}

/// The `/v1/batch` body: `{"batch":[...],"sentAt":"...","context":{"library":...}}`.
///
/// The events must be serialized JSON objects (as [`crate::Message::encode`]
/// makes them); `sent_at` is the time of this send.
pub fn encode_batch<T: AsRef<[u8]>>(items: &[T], sent_at: &DateTime<Utc>) -> Vec<u8> {
    let events: usize = items.iter().map(|i| i.as_ref().len()).sum();
    let mut body = Vec::with_capacity(envelope_len() + events + items.len().saturating_sub(1));
    body.extend_from_slice(PREFIX);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_ref());
    }
    body.extend_from_slice(SENT_AT_OPEN);
    let stamp = format_timestamp(sent_at);
    // A year outside 0000-9999 would change the width; clamp rather than
    // break the size accounting.
    if stamp.len() == SENT_AT_LEN {
        body.extend_from_slice(stamp.as_bytes());
    } else {
        body.extend_from_slice(format_timestamp(&Utc::now()).as_bytes());
    }
    body.extend_from_slice(library_suffix().as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn limits(max_events: usize, max_bytes: usize, max_event_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_events,
            max_bytes,
            max_event_bytes,
        }
    }

    fn event(n: usize) -> Vec<u8> {
        // A JSON object of exactly n bytes (n >= 8).
        format!(r#"{{"p":"{}"}}"#, "x".repeat(n - 8)).into_bytes()
    }

    #[test]
    fn encoded_len_is_exact_and_body_is_json() {
        let mut b = Batcher::new(limits(10, 10_000, 1_000));
        for n in [8, 20, 300] {
            assert_eq!(b.push(event(n)), Push::Added);
        }
        let expected = b.encoded_len();
        let items = b.take();
        let body = encode_batch(&items, &Utc::now());
        assert_eq!(body.len(), expected);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["batch"].as_array().unwrap().len(), 3);
        assert_eq!(v["context"]["library"]["name"], "tributary");
        assert_eq!(v["sentAt"].as_str().unwrap().len(), SENT_AT_LEN);
        assert!(b.is_empty());
        assert_eq!(b.encoded_len(), envelope_len());
    }

    #[test]
    fn full_by_count_and_by_bytes() {
        let mut b = Batcher::new(limits(2, 10_000, 1_000));
        assert_eq!(b.push(event(10)), Push::Added);
        assert_eq!(b.push(event(10)), Push::Added);
        assert_eq!(b.push(event(10)), Push::Full(event(10)));

        let mut b = Batcher::new(limits(100, envelope_len() + 100 + 1 + 99, 1_000));
        assert_eq!(b.push(event(100)), Push::Added);
        assert_eq!(b.push(event(100)), Push::Full(event(100)));
        assert_eq!(b.push(event(99)), Push::Added);
        assert_eq!(b.encoded_len(), envelope_len() + 200);
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut b = Batcher::new(limits(10, 10_000, 100));
        assert_eq!(b.push(event(101)), Push::TooLarge(event(101)));
        assert_eq!(b.push(event(100)), Push::Added);
    }

    #[test]
    fn empty_batch_is_valid_json() {
        let body = encode_batch::<Vec<u8>>(&[], &Utc::now());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["batch"], Value::Array(vec![]));
        assert_eq!(body.len(), envelope_len());
        assert!(envelope_len() <= ENVELOPE_BYTES);
    }
}
