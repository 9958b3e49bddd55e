//! The body shapes a Segment-spec sender uses, and how a batch envelope's
//! fields reach its items.

use serde_json::{Map, Value};
use tributary_adapter::AdapterError;
use tributary_core::json::json_type;

/// Webhooks (Actions) batches hold at most 4,000 events (Segment's docs);
/// anything longer is refused rather than half-processed.
pub const MAX_BATCH_ITEMS: usize = 4_000;

/// A body, split into items.
pub(crate) struct Items {
    /// The items in body order.
    pub(crate) items: Vec<Value>,
    /// The JSON pointer of the items' array (`""`, `"/batch"`), or `None`
    /// for a single-event body (the item is the body).
    pub(crate) prefix: Option<&'static str>,
    /// The batch envelope's other fields, applied to object items.
    pub(crate) envelope: Option<Map<String, Value>>,
    /// A single-event body: an item's problem is the request's problem.
    pub(crate) single: bool,
}

/// Splits a parsed body: a bare array (Webhooks (Actions) batching), a
/// `{batch: [...], context, integrations, sentAt, writeKey}` envelope, or
/// one event. `batch_only` is the Tracking API's `/v1/batch`.
pub(crate) fn split(body: Value, batch_only: bool) -> Result<Items, AdapterError> {
    let items = match body {
        Value::Array(items) => {
            check_count(items.len(), "")?;
            Items {
                items,
                prefix: Some(""),
                envelope: None,
                single: false,
            }
        }
        Value::Object(mut map) if map.contains_key("batch") || batch_only => {
            let batch = match map.remove("batch") {
                Some(Value::Array(items)) => items,
                None => {
                    return Err(AdapterError::schema(
                        "missing_field",
                        "/batch",
                        "a batch body needs a `batch` array",
                    ));
                }
                Some(other) => {
                    return Err(AdapterError::schema(
                        "invalid_type",
                        "/batch",
                        format!("`batch` must be an array, not {}", json_type(&other)),
                    ));
                }
            };
            check_count(batch.len(), "/batch")?;
            Items {
                items: batch,
                prefix: Some("/batch"),
                envelope: Some(map),
                single: false,
            }
        }
        Value::Object(map) => Items {
            items: vec![Value::Object(map)],
            prefix: None,
            envelope: None,
            single: true,
        },
        other => {
            return Err(AdapterError::schema(
                "not_an_object",
                "",
                format!(
                    "the body must be an event object, a batch envelope or an array of events, not {}",
                    json_type(&other)
                ),
            ));
        }
    };
    Ok(items)
}

fn check_count(n: usize, at: &str) -> Result<(), AdapterError> {
    if n > MAX_BATCH_ITEMS {
        return Err(AdapterError::TooLarge {
            code: "batch_too_large",
            message: format!(
                "the batch{at} holds {n} events; at most {MAX_BATCH_ITEMS} are accepted"
            ),
        });
    }
    Ok(())
}

/// Where an item sits in the body, formatted only when an error or note
/// needs it (no allocation per accepted item).
#[derive(Clone, Copy)]
pub(crate) struct ItemPointer {
    pub(crate) prefix: Option<&'static str>,
    pub(crate) index: usize,
}

impl std::fmt::Display for ItemPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix {
            Some(prefix) => write!(f, "{prefix}/{}", self.index),
            None => Ok(()),
        }
    }
}

/// Applies the envelope as Segment does: `context` and `integrations` are
/// merged key by key into the item's (the item's keys win), and `sentAt`
/// fills an item without one. The envelope's `messageId` (analytics-go's
/// batch id) and `timestamp` (legacy analytics-node) describe the request,
/// not the events, and are not copied.
pub(crate) fn apply(envelope: &Map<String, Value>, item: &mut Map<String, Value>) {
    for key in ["context", "integrations"] {
        let Some(Value::Object(outer)) = envelope.get(key) else {
            continue;
        };
        match item.get_mut(key) {
            None | Some(Value::Null) => {
                item.insert(key.to_owned(), Value::Object(outer.clone()));
            }
            Some(Value::Object(inner)) => {
                for (k, v) in outer {
                    inner.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            // A non-object is the item's own (broken) value; keep it as sent.
            Some(_) => {}
        }
    }
    if let Some(sent_at) = envelope.get("sentAt")
        && !matches!(item.get("sentAt"), Some(v) if !v.is_null())
    {
        item.insert("sentAt".to_owned(), sent_at.clone());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelope_fields_merge_with_item_keys_winning() {
        let env = json!({"context": {"library": {"name": "py"}, "ip": "1.1.1.1"},
                         "integrations": {"All": false}, "sentAt": "2025-03-01T10:00:00Z",
                         "messageId": "batch-1"});
        let mut item = json!({"context": {"ip": "2.2.2.2"}, "sentAt": null});
        apply(env.as_object().unwrap(), item.as_object_mut().unwrap());
        assert_eq!(
            item,
            json!({"context": {"library": {"name": "py"}, "ip": "2.2.2.2"},
                   "integrations": {"All": false}, "sentAt": "2025-03-01T10:00:00Z"})
        );
    }

    #[test]
    fn shapes() {
        assert!(split(json!({"type": "track"}), false).unwrap().single);
        let s = split(json!([{}, 1]), false).unwrap();
        let at = |s: &Items, index| {
            ItemPointer {
                prefix: s.prefix,
                index,
            }
            .to_string()
        };
        assert_eq!(at(&s, 1), "/1");
        let s = split(json!({"batch": [{}], "sentAt": "x"}), false).unwrap();
        assert_eq!(at(&s, 0), "/batch/0");
        assert!(s.envelope.unwrap().contains_key("sentAt"));
        assert_eq!(
            split(json!({"batch": {}}), false).err().unwrap().field(),
            Some("/batch")
        );
        assert_eq!(
            split(json!({"type": "track"}), true).err().unwrap().code(),
            "missing_field"
        );
        assert_eq!(
            split(json!("x"), false).err().unwrap().code(),
            "not_an_object"
        );
        let many = Value::Array(vec![json!({}); MAX_BATCH_ITEMS + 1]);
        assert_eq!(split(many, false).err().unwrap().code(), "batch_too_large");
    }
}
