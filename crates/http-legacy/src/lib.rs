//! The legacy HTTP source (`http-legacy`), exactly as the product defines
//! it: one JSON object per request, `type` must be `track`, `event` is
//! required and non-empty, and optionally `properties` (an object),
//! `userId`, `messageId` (a string) and `timestamp` (ISO-8601, default the
//! receipt time). Anything else is a typed error naming the field; the
//! service answers `204` with no body on success.
//!
//! Unknown fields are kept in `raw`. `null` for an optional field reads as
//! absent. `userId` may be a number (coerced to a string,
//! docs/product-decisions.md, "The normalized event").
//!
//! ```
//! use chrono::Utc;
//! use tributary_adapter::{ErrorCategory, RawRequest};
//! use tributary_http_legacy::HttpLegacyAdapter;
//! # use tributary_core::{FieldPath, Secret, config::*, path::DataAlias};
//! # let settings = SourceEnvironment {
//! #     token: Secret::new("t"), write_key: None, api_key: None, verification: None, preprocess: None,
//! #     retired_tokens: Vec::new(),
//! #     identify: false, event_type: None, event_type_path: None, timestamp_path: None, mappings: vec![],
//! #     dedup: DedupSettings { enabled: true, window: DEFAULT_DEDUP_WINDOW,
//! #         key_path: FieldPath::compile("messageId", DataAlias::EventData).unwrap() },
//! # };
//! let adapter = HttpLegacyAdapter::new();
//! let ok = RawRequest::new("http", "production",
//!     br#"{"type":"track","event":"My event","properties":{"foo":"bar"}}"#.to_vec(), Utc::now());
//! let parsed = adapter.parse(&ok, &settings)?;
//! assert_eq!(parsed.items.len(), 1);
//! assert_eq!(parsed.items[0].as_ref().unwrap().event, "My event");
//!
//! let identify = RawRequest::new("http", "production",
//!     br#"{"type":"identify","userId":"u1"}"#.to_vec(), Utc::now());
//! let err = adapter.parse(&identify, &settings).unwrap_err();
//! assert_eq!((err.category(), err.field()), (ErrorCategory::Schema, Some("/type")));
//! # Ok::<(), tributary_adapter::AdapterError>(())
//! ```

use serde_json::{Map, Value};
use tributary_adapter::{
    AdapterError, Parsed, RawRequest, decode_body, parse_json, parse_timestamp, verify,
};
use tributary_core::{
    config::SourceEnvironment,
    event::{Event, EventKind, coerce_id},
    json::json_type,
};

/// The adapter for the `http-legacy` kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpLegacyAdapter;

impl HttpLegacyAdapter {
    /// The adapter.
    pub fn new() -> Self {
        Self
    }

    /// Parses one legacy request. There is no batch form: the request is
    /// accepted whole (a [`Parsed`] with exactly one `Ok` item, the same
    /// shape every adapter returns) or rejected whole.
    pub fn parse(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        let body = decode_body(req)?;
        let verification = verify::enforce(settings.verification.as_ref(), req, &body)?;
        let value = parse_json(&body)?;
        let Value::Object(map) = value else {
            return Err(AdapterError::schema(
                "not_an_object",
                "",
                format!(
                    "the legacy HTTP source takes one event object per request, not {}",
                    json_type(&value)
                ),
            ));
        };
        let headers = req.stored_headers(settings.verification.as_ref());
        let event = normalize(req, map, headers)?;
        Ok(Parsed {
            items: vec![Ok(event)],
            verification,
            notes: Vec::new(),
            body_write_key: None,
        })
    }
}

fn normalize(
    req: &RawRequest,
    map: Map<String, Value>,
    headers: tributary_core::event::Headers,
) -> Result<Event, AdapterError> {
    match map.get("type") {
        Some(Value::String(t)) if t == "track" => {}
        None | Some(Value::Null) => {
            return Err(AdapterError::schema(
                "missing_field",
                "/type",
                "`type` is required and must be `track`",
            ));
        }
        Some(Value::String(t)) => {
            return Err(AdapterError::schema(
                "invalid_value",
                "/type",
                format!(
                    "`type` must be `track`; the legacy HTTP source does not accept `{t}` (use the users API or a custom source)"
                ),
            ));
        }
        Some(other) => return Err(wrong_type("type", "a string", other)),
    }
    let event = match map.get("event") {
        Some(Value::String(e)) if !e.trim().is_empty() => e.clone(),
        Some(Value::String(_)) => {
            return Err(AdapterError::schema(
                "empty_value",
                "/event",
                "`event` must not be empty",
            ));
        }
        None | Some(Value::Null) => {
            return Err(AdapterError::schema(
                "missing_field",
                "/event",
                "`event` is required",
            ));
        }
        Some(other) => return Err(wrong_type("event", "a string", other)),
    };
    let data = match map.get("properties") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(other) => return Err(wrong_type("properties", "an object", other)),
    };
    let user_id = match map.get("userId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => coerce_id(v),
        Some(other) => return Err(wrong_type("userId", "a string or a number", other)),
    };
    let anonymous_id = match map.get("anonymousId") {
        Some(v @ (Value::String(_) | Value::Number(_))) => coerce_id(v).filter(|s| !s.is_empty()),
        _ => None,
    };
    let message_id = match map.get("messageId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(other) => return Err(wrong_type("messageId", "a string", other)),
    };
    let timestamp = match map.get("timestamp") {
        None | Some(Value::Null) => req.received_at,
        Some(Value::String(s)) => parse_timestamp(s).ok_or_else(|| {
            AdapterError::schema(
                "invalid_timestamp",
                "/timestamp",
                format!("`timestamp` `{s}` is not an ISO-8601 time"),
            )
        })?,
        Some(other) => return Err(wrong_type("timestamp", "an ISO-8601 string", other)),
    };
    Ok(Event {
        id: req.next_id(),
        environment: req.environment.clone(),
        source: req.source.clone(),
        kind: EventKind::Track,
        event,
        user_id,
        anonymous_id,
        data,
        timestamp,
        received_at: req.received_at,
        message_id,
        raw: Value::Object(map),
        headers,
        preprocess: None,
    })
}

fn wrong_type(field: &str, want: &str, found: &Value) -> AdapterError {
    AdapterError::schema(
        "invalid_type",
        format!("/{field}"),
        format!("`{field}` must be {want}, not {}", json_type(found)),
    )
}
