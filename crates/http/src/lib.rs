//! The custom HTTP source (`http`): any JSON object from any service.
//!
//! The event type is read at the source environment's `event_type_path`
//! (default `body.type`; `headers.x-name` reads a header, e.g. Shopify's
//! topic), the event time at `timestamp_path` (ISO-8601 or Unix seconds or
//! milliseconds; default the receipt time), and `message_id` at the dedup
//! key path when that finds a valid key (a string of 1 to 255 characters).
//! `data` and `raw` are the whole body. A top-level array is taken as a
//! batch: each object in it is one event.
//!
//! ```
//! use chrono::Utc;
//! use tributary_adapter::RawRequest;
//! use tributary_http::HttpAdapter;
//! use tributary_core::{FieldPath, path::DataAlias};
//! # use tributary_core::{Secret, config::*};
//! # let mut settings = SourceEnvironment {
//! #     token: Secret::new("t"), write_key: None, api_key: None, verification: None, preprocess: None,
//! #     retired_tokens: Vec::new(),
//! #     identify: false, event_type: None, event_type_path: None, timestamp_path: None, mappings: vec![],
//! #     dedup: DedupSettings { enabled: true, window: DEFAULT_DEDUP_WINDOW,
//! #         key_path: FieldPath::compile("messageId", DataAlias::Literal).unwrap() },
//! # };
//! settings.event_type_path = Some(FieldPath::compile("body.event_type", DataAlias::Literal).unwrap());
//! settings.dedup.key_path = FieldPath::compile("body.id", DataAlias::Literal).unwrap();
//!
//! let body = br#"{"id":"evt_9","event_type":"task.assigned","data":{"task_id":"t1"}}"#;
//! let req = RawRequest::new("tasks", "production", body.to_vec(), Utc::now());
//! let parsed = HttpAdapter::new().parse(&req, &settings)?;
//! let event = parsed.items[0].as_ref().unwrap();
//! assert_eq!(event.event, "task.assigned");
//! assert_eq!(event.message_id.as_deref(), Some("evt_9"));
//! assert_eq!(event.data["data"]["task_id"], "t1");
//! # Ok::<(), tributary_adapter::AdapterError>(())
//! ```

use std::sync::LazyLock;

use serde_json::{Map, Value};
use tributary_adapter::{
    AdapterError, ItemError, Note, Parsed, RawRequest, decode_body, object_or_array, parse_json,
    timestamp_from_json, verify,
};
use tributary_core::{
    FieldPath,
    config::SourceEnvironment,
    dedup::validate_key,
    event::{Event, EventKind, Headers},
    json::json_type,
    path::{DataAlias, PathInput},
};

/// The default event-type path of the custom source.
pub const DEFAULT_EVENT_TYPE_PATH: &str = "body.type";

/// A top-level array holds at most this many events.
pub const MAX_BATCH_ITEMS: usize = 4_000;

/// The default type path, compiled once per process.
static DEFAULT_TYPE_PATH: LazyLock<FieldPath> = LazyLock::new(|| {
    FieldPath::compile(DEFAULT_EVENT_TYPE_PATH, DataAlias::Literal)
        .unwrap_or_else(|_| unreachable!("the default path is a valid dot path"))
});

/// The adapter for the `http` kind. Free to construct per request.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpAdapter;

impl HttpAdapter {
    /// The adapter.
    pub fn new() -> Self {
        Self
    }

    /// Verifies and normalizes one request.
    pub fn parse(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        let body = decode_body(req)?;
        let verification = verify::enforce(settings.verification.as_ref(), req, &body)?;
        let value = parse_json(&body)?;
        drop(body);
        let single = value.is_object();
        let items = object_or_array(value, MAX_BATCH_ITEMS, "events", "a JSON object")?;
        let headers = req.stored_headers(settings.verification.as_ref());
        let mut notes = Vec::new();
        let items = items
            .into_iter()
            .enumerate()
            .map(|(index, (pointer, item))| match item {
                Value::Object(map) => {
                    Ok(self.normalize(req, settings, &headers, index, &pointer, map, &mut notes))
                }
                other => Err(ItemError::new(
                    index,
                    "not_an_object",
                    pointer,
                    format!("each event must be an object, not {}", json_type(&other)),
                )),
            })
            .collect::<Vec<_>>();
        debug_assert!(!single || items.len() == 1);
        Ok(Parsed {
            items,
            verification,
            notes,
            body_write_key: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn normalize(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
        headers: &Headers,
        index: usize,
        pointer: &str,
        map: Map<String, Value>,
        notes: &mut Vec<Note>,
    ) -> Event {
        let body = Value::Object(map);
        let input = PathInput {
            body: &body,
            data: &body,
            headers,
            preprocess: None,
        };
        let mut note = |path: &FieldPath, message: String| {
            notes.push(Note {
                index,
                field: pointer.to_owned(),
                message: format!("`{}`: {message}", path.as_str()),
            });
        };
        let type_path = settings
            .event_type_path
            .as_ref()
            .unwrap_or(&DEFAULT_TYPE_PATH);
        // The configured `event_type` is the fallback when the path finds no usable type.
        let fallback = settings.event_type.clone().unwrap_or_default();
        let outcome = if fallback.is_empty() {
            "the event has no type".to_owned()
        } else {
            format!("the event type is `{fallback}`")
        };
        let event = match type_path.resolve(input).as_deref() {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            Some(other) => {
                note(
                    type_path,
                    format!(
                        "the event type path found {}, not a string; {outcome}",
                        json_type(other)
                    ),
                );
                fallback
            }
            None => {
                note(
                    type_path,
                    format!("the event type path found nothing; {outcome}"),
                );
                fallback
            }
        };
        let timestamp = match &settings.timestamp_path {
            None => req.received_at,
            Some(path) => match path.resolve(input) {
                None => req.received_at,
                Some(v) => timestamp_from_json(&v, true).unwrap_or_else(|| {
                    note(
                        path,
                        "not an ISO-8601 time or Unix epoch; the receipt time is used".to_owned(),
                    );
                    req.received_at
                }),
            },
        };
        let message_id = settings
            .dedup
            .key_path
            .resolve(input)
            .and_then(|v| validate_key(&v).ok().map(str::to_owned));
        Event {
            id: req.next_id(),
            environment: req.environment.clone(),
            source: req.source.clone(),
            kind: EventKind::Webhook,
            event,
            user_id: None,
            anonymous_id: None,
            data: body.clone(),
            timestamp,
            received_at: req.received_at,
            message_id,
            raw: body,
            headers: headers.clone(),
            preprocess: None,
        }
    }
}
