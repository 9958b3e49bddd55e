//! One Segment-spec item to one normalized event.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tributary_adapter::{ItemError, Note, RawRequest};
use tributary_core::{
    event::{Event, EventKind, Headers},
    json::json_type,
};

use crate::{Dialect, clock::Timestamps, envelope::ItemPointer};

/// What every item of one request shares.
pub(crate) struct RequestContext<'a> {
    pub(crate) req: &'a RawRequest,
    pub(crate) dialect: Dialect,
    pub(crate) headers: &'a Headers,
    /// The type implied by a Tracking API path (`/v1/track`).
    pub(crate) implied_type: Option<EventKind>,
}

/// Normalizes `item`, found at `pointer`.
pub(crate) fn normalize(
    cx: &RequestContext<'_>,
    pointer: ItemPointer,
    item: Map<String, Value>,
    notes: &mut Vec<Note>,
) -> Result<Event, ItemError> {
    let index = pointer.index;
    let err = |code: &str, field: &str, message: String| {
        ItemError::new(index, code, format!("{pointer}/{field}"), message)
    };
    let (kind, type_name) = match cx.implied_type {
        Some(kind) => (kind, kind.as_str()),
        None => match item.get("type") {
            None | Some(Value::Null) => {
                return Err(err(
                    "missing_field",
                    "type",
                    "`type` is required (track, identify, page, screen, group, alias)".to_owned(),
                ));
            }
            Some(Value::String(t)) => kind_of(t, cx.dialect).ok_or_else(|| {
                err(
                    "unknown_type",
                    "type",
                    format!("`type` `{t}` is not a Segment call (track, identify, page, screen, group, alias)"),
                )
            })?,
            Some(other) => {
                return Err(err(
                    "invalid_type",
                    "type",
                    format!("`type` must be a string, not {}", json_type(other)),
                ));
            }
        },
    };
    let event = if kind == EventKind::Track {
        match item.get("event") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            Some(Value::String(_)) => {
                return Err(err(
                    "empty_value",
                    "event",
                    "`event` must not be empty".to_owned(),
                ));
            }
            None | Some(Value::Null) => {
                return Err(err(
                    "missing_field",
                    "event",
                    "a track call needs an `event` name".to_owned(),
                ));
            }
            Some(other) => {
                return Err(err(
                    "invalid_type",
                    "event",
                    format!("`event` must be a string, not {}", json_type(other)),
                ));
            }
        }
    } else {
        type_name.to_owned()
    };
    let user_id = id_field(&item, "userId").map_err(|m| err("invalid_type", "userId", m))?;
    let anonymous_id =
        id_field(&item, "anonymousId").map_err(|m| err("invalid_type", "anonymousId", m))?;
    let data = match kind {
        EventKind::Identify | EventKind::Group => {
            let traits =
                object_field(&item, "traits").map_err(|m| err("invalid_type", "traits", m))?;
            // RudderStack and JS SDK v1 put identify traits in `context.traits`
            // only (docs/platform-payloads.md, "RudderStack").
            match traits {
                Some(t) => t.clone(),
                None if kind == EventKind::Identify => item
                    .get("context")
                    .and_then(|c| c.get("traits"))
                    .filter(|t| t.is_object())
                    .cloned()
                    .unwrap_or_else(empty_object),
                None => empty_object(),
            }
        }
        _ => object_field(&item, "properties")
            .map_err(|m| err("invalid_type", "properties", m))?
            .cloned()
            .unwrap_or_else(empty_object),
    };
    let message_id = match item.get("messageId") {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        _ => None,
    };
    let times = Timestamps::read(&item);
    for field in &times.unparsable {
        notes.push(Note {
            index,
            field: format!("{pointer}/{field}"),
            message: format!("`{field}` is not an ISO-8601 time; ignored"),
        });
    }
    let received_at: DateTime<Utc> = cx.req.received_at;
    let timestamp = times.event_time(cx.dialect, received_at);
    let mut raw = item;
    if cx.implied_type.is_some()
        && !matches!(raw.get("type"), Some(Value::String(t)) if t == type_name)
    {
        raw.insert("type".to_owned(), Value::String(type_name.to_owned()));
    }
    Ok(Event {
        id: cx.req.next_id(),
        environment: cx.req.environment.clone(),
        source: cx.req.source.clone(),
        kind,
        event,
        user_id,
        anonymous_id,
        data,
        timestamp,
        received_at,
        message_id,
        raw: Value::Object(raw),
        headers: cx.headers.clone(),
        preprocess: None,
    })
}

/// The kind and the `event` name of a Segment `type`.
fn kind_of(t: &str, dialect: Dialect) -> Option<(EventKind, &'static str)> {
    if let Some(kind) = EventKind::from_segment_type(t) {
        return Some((kind, kind.as_str()));
    }
    // RudderStack's `merge` joins identities, like an alias; core has no
    // kind of its own for it, so it is an alias-kind event named `merge`.
    (dialect == Dialect::Rudderstack && t == "merge").then_some((EventKind::Alias, "merge"))
}

/// An id field: strings as they are (empty is absent), numbers coerced.
fn id_field(item: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(v @ (Value::String(_) | Value::Number(_))) => Ok(tributary_core::event::coerce_id(v)),
        Some(other) => Err(format!(
            "`{key}` must be a string or a number, not {}",
            json_type(other)
        )),
    }
}

/// An optional object field; `null` reads as absent.
fn object_field<'a>(item: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Value>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(other) => Err(format!(
            "`{key}` must be an object, not {}",
            json_type(other)
        )),
    }
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}
