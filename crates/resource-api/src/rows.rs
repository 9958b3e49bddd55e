//! Warehouse rows posted to a receive URL by Hightouch's or Census's HTTP
//! Request destination: one row (a JSON object) or an array of rows, each
//! row one event.
//!
//! - Event type: the source environment's `event_type_path` when one is
//!   configured and finds a string, else its `event_type`, else
//!   [`DEFAULT_ROW_EVENT_TYPE`].
//! - Dedup key: the configured key path when it finds a value on the row,
//!   else a SHA-256 of the row. The hash is written into the stored row as
//!   `messageId` (unless the row has that column), so the standard key path
//!   finds it: an identical row re-sent within the window is a duplicate, a
//!   changed row is not. Keying on an `id` column instead would drop every
//!   "row changed" delivery within the window.
//! - `data` is the row as received; `user_id` its `user_id`, `userId` or `id`
//!   column.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tributary_adapter::{
    AdapterError, ItemError, Note, Parsed, RawRequest, decode_body, object_or_array, parse_json,
    verify,
};
use tributary_core::{
    config::SourceEnvironment,
    dedup::validate_key,
    event::{Event, EventKind, Headers, coerce_id},
    json::json_type,
    path::PathInput,
};

/// The event type of a row when none is configured.
pub const DEFAULT_ROW_EVENT_TYPE: &str = "row.added";

/// Rows per request. Census batches at most 1,000 and Hightouch less.
pub const MAX_ROWS: usize = 5_000;

/// The row-webhook adapter for the `hightouch` and `census` kinds.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowAdapter;

impl RowAdapter {
    /// The adapter.
    pub fn new() -> Self {
        Self
    }

    /// Verifies and normalizes one delivery of rows.
    pub fn parse(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        let body = decode_body(req)?;
        let verification = verify::enforce(settings.verification.as_ref(), req, &body)?;
        let value = parse_json(&body)?;
        drop(body);
        let rows = object_or_array(
            value,
            MAX_ROWS,
            "rows",
            "a row (an object) or an array of rows",
        )?;
        let headers = req.stored_headers(settings.verification.as_ref());
        let mut notes = Vec::new();
        let items = rows
            .into_iter()
            .enumerate()
            .map(|(index, (pointer, row))| match row {
                Value::Object(map) => Ok(row_event(
                    req,
                    settings,
                    &headers,
                    RowParts {
                        index,
                        pointer: &pointer,
                        row: map,
                        default_type: settings
                            .event_type
                            .as_deref()
                            .unwrap_or(DEFAULT_ROW_EVENT_TYPE),
                        envelope: None,
                    },
                    &mut notes,
                )),
                other => Err(ItemError::new(
                    index,
                    "not_an_object",
                    pointer,
                    format!("each row must be an object, not {}", json_type(&other)),
                )),
            })
            .collect();
        Ok(Parsed {
            items,
            verification,
            notes,
            body_write_key: None,
        })
    }
}

/// One row's pieces for [`row_event`].
pub(crate) struct RowParts<'a> {
    pub(crate) index: usize,
    pub(crate) pointer: &'a str,
    /// The row's columns: the event's `data`.
    pub(crate) row: Map<String, Value>,
    pub(crate) default_type: &'a str,
    /// For enveloped rows (Polytomic): the stored `raw`, with the row inside
    /// and a precomputed hash.
    pub(crate) envelope: Option<(Map<String, Value>, Option<String>)>,
}

/// Builds the event for one row: type, dedup key, user id.
pub(crate) fn row_event(
    req: &RawRequest,
    settings: &SourceEnvironment,
    headers: &Headers,
    parts: RowParts<'_>,
    notes: &mut Vec<Note>,
) -> Event {
    let RowParts {
        index,
        pointer,
        row,
        default_type,
        envelope,
    } = parts;
    let data = Value::Object(row);
    let (mut raw, given_hash) = match envelope {
        Some((raw, hash)) => (raw, hash),
        None => (
            match &data {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            },
            None,
        ),
    };
    let raw_value = Value::Object(std::mem::take(&mut raw));
    let input = PathInput {
        body: &raw_value,
        data: &data,
        headers,
        preprocess: None,
    };
    let event = match settings.event_type_path.as_ref() {
        None => default_type.to_owned(),
        Some(path) => match path.resolve(input).as_deref() {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                notes.push(Note {
                    index,
                    field: pointer.to_owned(),
                    message: format!(
                        "`{}` found no event type; `{default_type}` is used",
                        path.as_str()
                    ),
                });
                default_type.to_owned()
            }
        },
    };
    let configured = settings
        .dedup
        .key_path
        .resolve(input)
        .and_then(|v| validate_key(&v).ok().map(str::to_owned));
    let message_id = configured.or(given_hash).unwrap_or_else(|| row_hash(&data));
    let Value::Object(mut raw) = raw_value else {
        unreachable!("raw was built as an object")
    };
    raw.entry("messageId")
        .or_insert_with(|| Value::String(message_id.clone()));
    let user_id = ["user_id", "userId", "id"]
        .iter()
        .find_map(|k| data.get(*k).and_then(coerce_id));
    Event {
        id: req.next_id(),
        environment: req.environment.clone(),
        source: req.source.clone(),
        kind: EventKind::Webhook,
        event,
        user_id,
        anonymous_id: None,
        data,
        timestamp: req.received_at,
        received_at: req.received_at,
        message_id: Some(message_id),
        raw: Value::Object(raw),
        headers: headers.clone(),
        preprocess: None,
    }
}

/// SHA-256 of the row's JSON, hex, first 32 characters (128 bits).
pub fn row_hash(row: &Value) -> String {
    let bytes = serde_json::to_vec(row).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use tributary_adapter::testing;
    use tributary_core::path::DataAlias;

    use super::*;

    fn parse(body: &str) -> Parsed {
        let settings = testing::source_environment(DataAlias::Literal);
        let req = RawRequest::new(
            "ht",
            "production",
            body.as_bytes().to_vec(),
            testing::received_at(),
        );
        RowAdapter::new().parse(&req, &settings).unwrap()
    }

    #[test]
    fn the_configured_event_type_names_rows() {
        let mut settings = testing::source_environment(DataAlias::Literal);
        settings.event_type = Some("user.changed".to_owned());
        let req = RawRequest::new(
            "ht",
            "production",
            br#"{"id":"u1"}"#.to_vec(),
            testing::received_at(),
        );
        let p = RowAdapter::new().parse(&req, &settings).unwrap();
        assert_eq!(p.events().next().unwrap().event, "user.changed");
    }

    #[test]
    fn each_row_is_one_event_keyed_by_its_hash() {
        let p = parse(
            r#"[{"user_id":"u1","plan":"pro"},{"user_id":"u1","plan":"pro"},{"user_id":"u2"},7]"#,
        );
        let events: Vec<&Event> = p.events().collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event, DEFAULT_ROW_EVENT_TYPE);
        assert_eq!(events[0].user_id.as_deref(), Some("u1"));
        assert_eq!(events[0].message_id, events[1].message_id);
        assert_ne!(events[0].message_id, events[2].message_id);
        assert_eq!(
            events[0].raw["messageId"],
            events[0].message_id.clone().unwrap().as_str()
        );
        assert!(events[0].data.get("messageId").is_none());
        assert_eq!(p.errors().next().unwrap().field, "/3");
    }

    #[test]
    fn a_row_with_its_own_message_id_keeps_it() {
        let p = parse(r#"{"messageId":"m-1","id":5}"#);
        let e = p.events().next().unwrap();
        assert_eq!(e.message_id.as_deref(), Some("m-1"));
        assert_eq!(e.user_id.as_deref(), Some("5"));
    }
}
