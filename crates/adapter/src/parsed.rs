//! What an adapter returns for one request.

use serde::Serialize;
use serde_json::Value;
use tributary_core::{Secret, event::Event};

use crate::{AdapterError, ItemError, VerificationOutcome};

/// The result of parsing one request: one entry per item (a single-event
/// body has one), so a batch with a bad element still delivers the good ones.
#[derive(Debug)]
pub struct Parsed {
    /// Per item, in body order: the normalized event or what is wrong with it.
    pub items: Vec<Result<Event, ItemError>>,
    /// What verification made of the request (recorded on every event).
    pub verification: VerificationOutcome,
    /// Problems that did not reject anything (an unparsable timestamp
    /// replaced by the receipt time, an event-type path that found nothing).
    pub notes: Vec<Note>,
    /// A `writeKey` found in the body (envelope first, else the first item
    /// carrying one), for Segment-compatible API authentication. Removed
    /// from the stored events.
    pub body_write_key: Option<Secret>,
}

impl Parsed {
    /// The accepted events.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.items.iter().filter_map(|r| r.as_ref().ok())
    }

    /// The rejected items.
    pub fn errors(&self) -> impl Iterator<Item = &ItemError> {
        self.items.iter().filter_map(|r| r.as_ref().err())
    }
}

/// A non-fatal problem with one item, for the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Position in the batch.
    pub index: usize,
    /// JSON pointer from the body's root.
    pub field: String,
    /// What was done about it.
    pub message: String,
}

/// Parses a whole body as JSON. serde_json's recursion limit (128) stays on,
/// so deep nesting is an error, never a stack overflow.
pub fn parse_json(body: &[u8]) -> Result<Value, AdapterError> {
    serde_json::from_slice(body).map_err(|e| AdapterError::from_json(&e))
}
