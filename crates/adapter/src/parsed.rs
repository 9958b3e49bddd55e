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
///
/// The body is checked as UTF-8 once, whole, and parsed as a `str`: parsed
/// as bytes, serde_json checks every string it meets on its own, which costs
/// more than the one pass (docs/PERFORMANCE.md). A body that is not UTF-8 is
/// parsed as bytes, so that the error says where the bad byte is.
pub fn parse_json(body: &[u8]) -> Result<Value, AdapterError> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(|e| AdapterError::from_json(&e))
}

/// A body that is one object or an array of them, as items each with its JSON
/// pointer (`""` for a lone object, `/3` for the fourth element). More than
/// `max_items` elements is `TooLarge` (counted as `noun`, e.g. "rows"); any
/// other JSON is a schema error saying the body must be `expected`.
pub fn object_or_array(
    value: Value,
    max_items: usize,
    noun: &str,
    expected: &str,
) -> Result<Vec<(String, Value)>, AdapterError> {
    match value {
        Value::Object(_) => Ok(vec![(String::new(), value)]),
        Value::Array(items) if items.len() > max_items => Err(AdapterError::TooLarge {
            code: "batch_too_large",
            message: format!(
                "the array holds {} {noun}; at most {max_items} are accepted",
                items.len()
            ),
        }),
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("/{i}"), v))
            .collect()),
        other => Err(AdapterError::schema(
            "not_an_object",
            "",
            format!(
                "the body must be {expected}, not {}",
                tributary_core::json::json_type(&other)
            ),
        )),
    }
}
