//! Polytomic's webhook sync on a receive URL: `{"event": "sync.records",
//! "object": {"id", "name", "records": [{"hash", "fields"}]}}`, with
//! `Authorization: Bearer` (the source environment's `bearer` verification)
//! and a `Polytomic-Signature-Timestamp` that must be fresh.
//!
//! One event per record, `data` = its fields, deduplicated on its hash
//! (`raw.messageId`). Any other `event` value is acknowledged and logged as
//! one event of that type with no records, never refused: Polytomic asks
//! receivers to ignore what they do not know.

use chrono::TimeDelta;
use serde_json::{Map, Value, json};
use tributary_adapter::{
    AdapterError, ItemError, Note, Parsed, RawRequest, decode_body, parse_json, parse_timestamp,
    verify,
};
use tributary_core::{
    config::SourceEnvironment,
    event::{Event, EventKind},
    json::json_type,
};

use crate::rows::{MAX_ROWS, RowParts, row_event};

/// The event Polytomic sends for synced records.
pub const SYNC_RECORDS: &str = "sync.records";

/// How far `Polytomic-Signature-Timestamp` may be from the receipt time.
pub const TIMESTAMP_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// The adapter for the `polytomic` kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct PolytomicAdapter;

impl PolytomicAdapter {
    /// The adapter.
    pub fn new() -> Self {
        Self
    }

    /// Verifies and normalizes one delivery.
    pub fn parse(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        let body = decode_body(req)?;
        let verification = verify::enforce(settings.verification.as_ref(), req, &body)?;
        check_freshness(req)?;
        let value = parse_json(&body)?;
        drop(body);
        let Value::Object(mut envelope) = value else {
            return Err(AdapterError::schema(
                "not_an_object",
                "",
                format!("the body must be a JSON object, not {}", json_type(&value)),
            ));
        };
        let event_name = match envelope.get("event") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) => {
                return Err(AdapterError::schema(
                    "missing_field",
                    "/event",
                    "`event` is required",
                ));
            }
            Some(other) => {
                return Err(AdapterError::schema(
                    "invalid_type",
                    "/event",
                    format!("`event` must be a string, not {}", json_type(other)),
                ));
            }
        };
        let headers = req.stored_headers(settings.verification.as_ref());
        let mut notes = Vec::new();
        if event_name != SYNC_RECORDS {
            notes.push(Note {
                index: 0,
                field: "/event".to_owned(),
                message: format!("unknown Polytomic event `{event_name}` acknowledged and logged"),
            });
            let raw = Value::Object(envelope);
            let event = Event {
                id: req.next_id(),
                environment: req.environment.clone(),
                source: req.source.clone(),
                kind: EventKind::Webhook,
                event: event_name,
                user_id: None,
                anonymous_id: None,
                data: raw.clone(),
                timestamp: req.received_at,
                received_at: req.received_at,
                message_id: None,
                raw,
                headers,
                preprocess: None,
            };
            return Ok(Parsed {
                items: vec![Ok(event)],
                verification,
                notes,
                body_write_key: None,
            });
        }
        let mut object = match envelope.remove("object") {
            Some(Value::Object(o)) => o,
            None | Some(Value::Null) => {
                return Err(AdapterError::schema(
                    "missing_field",
                    "/object",
                    "`object` is required",
                ));
            }
            Some(other) => {
                return Err(AdapterError::schema(
                    "invalid_type",
                    "/object",
                    format!("`object` must be an object, not {}", json_type(&other)),
                ));
            }
        };
        let records = match object.remove("records") {
            Some(Value::Array(r)) if r.len() > MAX_ROWS => {
                return Err(AdapterError::TooLarge {
                    code: "batch_too_large",
                    message: format!(
                        "`object.records` holds {} records; at most {MAX_ROWS} are accepted",
                        r.len()
                    ),
                });
            }
            Some(Value::Array(r)) => r,
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(AdapterError::schema(
                    "invalid_type",
                    "/object/records",
                    format!(
                        "`object.records` must be an array, not {}",
                        json_type(&other)
                    ),
                ));
            }
        };
        let sync = json!({
            "id": object.get("id").cloned().unwrap_or(Value::Null),
            "name": object.get("name").cloned().unwrap_or(Value::Null),
        });
        let items = records
            .into_iter()
            .enumerate()
            .map(|(index, record)| {
                let pointer = format!("/object/records/{index}");
                let Value::Object(mut record) = record else {
                    return Err(ItemError::new(
                        index,
                        "not_an_object",
                        pointer,
                        format!("each record must be an object, not {}", json_type(&record)),
                    ));
                };
                let fields = match record.remove("fields") {
                    Some(Value::Object(f)) => f,
                    None | Some(Value::Null) => {
                        return Err(ItemError::new(
                            index,
                            "missing_field",
                            format!("{pointer}/fields"),
                            "`fields` is required",
                        ));
                    }
                    Some(other) => {
                        return Err(ItemError::new(
                            index,
                            "invalid_type",
                            format!("{pointer}/fields"),
                            format!("`fields` must be an object, not {}", json_type(&other)),
                        ));
                    }
                };
                let hash = match record.get("hash") {
                    Some(Value::String(h)) if !h.is_empty() && h.len() <= 255 => Some(h.clone()),
                    _ => None,
                };
                let mut raw = Map::new();
                raw.insert("event".to_owned(), Value::String(SYNC_RECORDS.to_owned()));
                raw.insert("sync".to_owned(), sync.clone());
                raw.insert(
                    "hash".to_owned(),
                    record.remove("hash").unwrap_or(Value::Null),
                );
                raw.insert("fields".to_owned(), Value::Object(fields.clone()));
                Ok(row_event(
                    req,
                    settings,
                    &headers,
                    RowParts {
                        index,
                        pointer: &pointer,
                        row: fields,
                        default_type: SYNC_RECORDS,
                        envelope: Some((raw, hash)),
                    },
                    &mut notes,
                ))
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

fn check_freshness(req: &RawRequest) -> Result<(), AdapterError> {
    let Some(text) = req.header("polytomic-signature-timestamp") else {
        return Ok(());
    };
    let Some(sent) = parse_timestamp(text) else {
        return Err(AdapterError::Unauthorized {
            code: "invalid_timestamp",
            message: "`Polytomic-Signature-Timestamp` is not an RFC 3339 time".to_owned(),
        });
    };
    if (req.received_at - sent).abs() > TIMESTAMP_TOLERANCE {
        return Err(AdapterError::Unauthorized {
            code: "stale_timestamp",
            message: "`Polytomic-Signature-Timestamp` is more than 5 minutes from now".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tributary_adapter::testing;
    use tributary_core::path::DataAlias;

    use super::*;

    fn req(body: &str, ts: Option<&str>) -> RawRequest {
        let r = RawRequest::new(
            "poly",
            "production",
            body.as_bytes().to_vec(),
            testing::received_at(),
        );
        match ts {
            Some(t) => r.with_header("Polytomic-Signature-Timestamp", t),
            None => r,
        }
    }

    #[test]
    fn one_event_per_record_keyed_by_hash() {
        let settings = testing::source_environment(DataAlias::Literal);
        let body = r#"{"event":"sync.records","object":{"id":"s1","name":"Users","records":[{"hash":"h1","fields":{"user_id":"u1","email":"a@b"}},{"hash":"h2"}]}}"#;
        let p = PolytomicAdapter::new()
            .parse(&req(body, Some("2025-03-01T10:00:00Z")), &settings)
            .unwrap();
        let e = p.events().next().unwrap();
        assert_eq!(e.event, SYNC_RECORDS);
        assert_eq!(e.message_id.as_deref(), Some("h1"));
        assert_eq!(e.data["email"], "a@b");
        assert_eq!(e.raw["sync"]["name"], "Users");
        assert_eq!(p.errors().next().unwrap().field, "/object/records/1/fields");
    }

    #[test]
    fn stale_timestamps_are_refused_and_unknown_events_logged() {
        let settings = testing::source_environment(DataAlias::Literal);
        let e = PolytomicAdapter::new()
            .parse(
                &req(r#"{"event":"sync.records"}"#, Some("2025-03-01T09:00:00Z")),
                &settings,
            )
            .unwrap_err();
        assert_eq!(e.code(), "stale_timestamp");
        let p = PolytomicAdapter::new()
            .parse(
                &req(r#"{"event":"sync.started","object":{}}"#, None),
                &settings,
            )
            .unwrap();
        assert_eq!(p.events().next().unwrap().event, "sync.started");
        assert_eq!(p.notes.len(), 1);
    }
}
