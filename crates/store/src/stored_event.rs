//! The event as stored in `events.event_json`: the event's JSON, except
//! that `data` is left out when it is a copy of part of `raw`, and a
//! request's headers are written once, with its first event.
//!
//! Every event of a batch carries the request's headers. Written with each,
//! a 4,000-event batch wrote its headers 4,000 times, and the store's cost of
//! a batch grew with headers x events instead of with the body. The first
//! event of a request (of an append) keeps them; the others say whose they
//! are (`headers_of`), and reads fill them back in
//! ([`crate::rows::fill_shared_headers`]).
//!
//! Most adapters take `data` straight from the event (a track call's
//! `properties`, an identify's `traits`, a custom source's whole body), so
//! the event's JSON held its largest part twice. Leaving the copy out saves
//! the serializing and, at about 400 of 2,000 bytes for a typical Segment
//! track event, a fifth of the event log's bytes (docs/store.md). A row
//! that leaves it out says where it is instead (`data_at`); a row that has
//! `data` (any row written before this form, or data that differs from every
//! candidate) is read as it is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};
use tributary_core::event::{Event, EventId, EventKind, Headers};

use crate::Provenance;

/// Where in `raw` a stored event's `data` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DataAt {
    /// The whole of `raw` (custom sources).
    Raw,
    /// `raw.properties` (track, page, screen).
    Properties,
    /// `raw.traits` (identify, group).
    Traits,
}

impl DataAt {
    fn find(self, raw: &Value) -> Option<&Value> {
        match self {
            Self::Raw => Some(raw),
            Self::Properties => raw.get("properties"),
            Self::Traits => raw.get("traits"),
        }
    }

    /// A copy of the data this names in `raw`; naming nothing there is an
    /// error, never a guess.
    fn copy_from(self, raw: Option<&Value>) -> Result<Value, serde_json::Error> {
        raw.and_then(|raw| self.find(raw)).cloned().ok_or_else(|| {
            serde::de::Error::custom(format!("data_at {self:?} names nothing in raw"))
        })
    }

    /// Where `data` is found in `raw`, if it is a copy of part of it.
    fn of(data: &Value, raw: &Value) -> Option<Self> {
        [Self::Properties, Self::Traits, Self::Raw]
            .into_iter()
            .find(|at| at.find(raw) == Some(data))
    }
}

/// [`Event`]'s fields by reference, in its order and with its encodings,
/// plus `data_at`.
#[derive(Serialize)]
struct StoredEvent<'a> {
    id: &'a EventId,
    environment: &'a str,
    source: &'a str,
    kind: &'a EventKind,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_at: Option<DataAt>,
    #[serde(serialize_with = "rfc3339")]
    timestamp: &'a DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    received_at: &'a DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a String>,
    raw: StoredRaw<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<&'a Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers_of: Option<&'a EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preprocess: Option<&'a Value>,
    #[serde(flatten)]
    provenance: &'a Provenance,
}

/// `raw`, with the data at `data_at` written from its JSON when the caller
/// has that already: the same text as serializing the value, written once
/// for the event and for what else stores the data (a workflow run).
struct StoredRaw<'a> {
    raw: &'a Value,
    data: Option<(DataAt, &'a RawValue)>,
}

impl Serialize for StoredRaw<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, json) = match self.data {
            None => return self.raw.serialize(s),
            Some((DataAt::Raw, json)) => return json.serialize(s),
            Some((DataAt::Properties, json)) => ("properties", json),
            Some((DataAt::Traits, json)) => ("traits", json),
        };
        let Value::Object(map) = self.raw else {
            return self.raw.serialize(s);
        };
        // As serde_json writes an object: its entries in the map's order.
        let mut out = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            if k == key {
                out.serialize_entry(k, json)?;
            } else {
                out.serialize_entry(k, v)?;
            }
        }
        out.end()
    }
}

/// The text chrono's own `Serialize` writes (RFC 3339, UTC as `Z`, as many
/// fractional digits as the time needs), as one string: chrono's writes it
/// through `collect_str`, which serde_json escapes one character at a time.
fn rfc3339<S: serde::Serializer>(at: &&DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The stored JSON of `e`; with `headers_of`, its headers are left out as
/// those of the event with that id, stored in the same append. `data_json`,
/// when given, is `e.data` serialized: where `raw` holds the data, it is
/// written from that text.
pub(crate) fn to_json(
    e: &Event,
    headers_of: Option<&EventId>,
    provenance: &Provenance,
    data_json: Option<&RawValue>,
) -> Result<String, serde_json::Error> {
    // Destructured without `..`, so a field added to `Event` fails to compile
    // here instead of silently going unstored.
    let Event {
        id,
        environment,
        source,
        kind,
        event,
        user_id,
        anonymous_id,
        data,
        timestamp,
        received_at,
        message_id,
        raw,
        headers,
        preprocess,
    } = e;
    let data_at = DataAt::of(data, raw);
    let stored = StoredEvent {
        id,
        environment,
        source,
        kind,
        event,
        user_id: user_id.as_ref(),
        anonymous_id: anonymous_id.as_ref(),
        data: if data_at.is_some() { None } else { Some(data) },
        data_at,
        timestamp,
        received_at,
        message_id: message_id.as_ref(),
        raw: StoredRaw {
            raw,
            data: data_at.zip(data_json),
        },
        headers: (headers_of.is_none() && !headers.is_empty()).then_some(headers),
        headers_of,
        preprocess: preprocess.as_ref(),
        provenance,
    };
    // Sized for the raw event twice over, its usual share of the whole.
    crate::rows::json_sized(&stored, 2_048)
}

/// The event stored as `json` (any form), the event whose headers it
/// shares, if they were left out (its headers are then empty until filled
/// in), and how it was planned.
pub(crate) fn from_json(
    json: &str,
) -> Result<(Event, Option<EventId>, Provenance), serde_json::Error> {
    let mut value: Value = serde_json::from_str(json)?;
    let headers_of = match value.as_object_mut().and_then(|o| o.remove("headers_of")) {
        Some(id) => Some(serde_json::from_value(id)?),
        None => None,
    };
    let mut provenance = Map::new();
    if let Some(obj) = value.as_object_mut() {
        for key in PROVENANCE_KEYS {
            if let Some(v) = obj.remove(key) {
                provenance.insert(key.to_owned(), v);
            }
        }
    }
    let provenance: Provenance = serde_json::from_value(Value::Object(provenance))?;
    if let Some(obj) = value.as_object_mut()
        && !obj.contains_key("data")
        && let Some(at) = obj.remove("data_at")
    {
        let at: DataAt = serde_json::from_value(at)?;
        let data = at.copy_from(obj.get("raw"))?;
        obj.insert("data".to_owned(), data);
    }
    Ok((serde_json::from_value(value)?, headers_of, provenance))
}

/// Only the `data` of a stored event (any form), for a plan that left its
/// trigger data to the event (`crate::rows::StoredPlan`).
pub(crate) fn data_from_json(json: &str) -> Result<Value, serde_json::Error> {
    // A `null` is a value here: `Option<Value>` alone would read it as absent.
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }
    #[derive(Deserialize)]
    struct OnlyData {
        #[serde(default, deserialize_with = "present")]
        data: Option<Value>,
        data_at: Option<DataAt>,
        #[serde(default, deserialize_with = "present")]
        raw: Option<Value>,
    }
    let stored: OnlyData = serde_json::from_str(json)?;
    if let Some(data) = stored.data {
        return Ok(data);
    }
    let at = stored
        .data_at
        .ok_or_else(|| serde::de::Error::missing_field("data"))?;
    at.copy_from(stored.raw.as_ref())
}

/// The stored event's members that are [`Provenance`]'s, not the event's.
const PROVENANCE_KEYS: [&str; 3] = ["config_revision", "verification", "replay_of"];

/// Only the headers of a stored event, for filling in those of the events
/// that share them.
pub(crate) fn headers_from_json(json: &str) -> Result<Headers, serde_json::Error> {
    #[derive(Deserialize)]
    struct OnlyHeaders {
        #[serde(default)]
        headers: Headers,
    }
    Ok(serde_json::from_str::<OnlyHeaders>(json)?.headers)
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A track event with `data` and `raw`.
    pub(crate) fn event(data: Value, raw: Value) -> Event {
        let at = "2026-11-24T10:00:00Z".parse().unwrap();
        Event {
            id: EventId::generate(at),
            environment: "production".into(),
            source: "segment".into(),
            kind: EventKind::Track,
            event: "Order Completed".into(),
            user_id: Some("u1".into()),
            anonymous_id: None,
            data,
            timestamp: at,
            received_at: at,
            message_id: Some("m1".into()),
            raw,
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            preprocess: None,
        }
    }

    #[test]
    fn a_copy_of_raw_is_stored_once_and_read_back() {
        let props = json!({"total": 129.5, "items": [{"sku": "a"}]});
        let traits = json!({"email": "a@example.org"});
        let custom = json!({"order": 1});
        for (data, raw, at) in [
            (
                props.clone(),
                json!({"type": "track", "properties": props}),
                "properties",
            ),
            (
                traits.clone(),
                json!({"type": "identify", "traits": traits}),
                "traits",
            ),
            (custom.clone(), custom, "raw"),
        ] {
            let e = event(data, raw);
            let stored = to_json(&e, None, &Provenance::default(), None).unwrap();
            let v: Value = serde_json::from_str(&stored).unwrap();
            assert!(v.get("data").is_none(), "{stored}");
            assert_eq!(v["data_at"], at);
            assert_eq!(data_from_json(&stored).unwrap(), e.data);
            assert_eq!(
                from_json(&stored).unwrap(),
                (e, None, Provenance::default())
            );
        }
    }

    #[test]
    fn data_that_is_not_a_copy_is_stored_as_it_is() {
        let e = event(
            json!({"mapped": true}),
            json!({"type": "track", "properties": {"total": 1}}),
        );
        let stored = to_json(&e, None, &Provenance::default(), None).unwrap();
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["data"], json!({"mapped": true}));
        assert!(v.get("data_at").is_none());
        assert_eq!(data_from_json(&stored).unwrap(), e.data);
        assert_eq!(
            from_json(&stored).unwrap(),
            (e, None, Provenance::default())
        );
    }

    #[test]
    fn rows_written_before_this_form_read_as_they_did() {
        let e = event(
            json!({"total": 1}),
            json!({"type": "track", "properties": {"total": 1}}),
        );
        let old = serde_json::to_string(&e).unwrap();
        assert_eq!(from_json(&old).unwrap(), (e, None, Provenance::default()));
    }

    #[test]
    fn a_row_pointing_at_nothing_is_an_error_not_a_guess() {
        let e = event(json!({}), json!({"type": "track"}));
        let mut v: Value = serde_json::to_value(&e).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("data");
        obj.insert("data_at".into(), json!("traits"));
        let err = from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("names nothing"), "{err}");
    }

    #[test]
    fn shared_headers_are_left_out_and_named() {
        let first = event(json!({}), json!({"type": "track"}));
        let mut second = event(json!({}), json!({"type": "track"}));
        second.headers = first.headers.clone();
        let stored = to_json(&second, Some(&first.id), &Provenance::default(), None).unwrap();
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert!(v.get("headers").is_none(), "{stored}");
        let (read, of, _) = from_json(&stored).unwrap();
        assert_eq!(of, Some(first.id));
        assert!(read.headers.is_empty());
        let first_stored = to_json(&first, None, &Provenance::default(), None).unwrap();
        assert_eq!(headers_from_json(&first_stored).unwrap(), first.headers);
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            r#"[a-z"\\\x00-\x1fé]{0,8}"#.prop_map(Value::from),
        ]
    }

    /// Any JSON value, of a few levels, with strings that need escaping.
    pub(crate) fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the data and raw event, reading the stored form gives
        /// back the event exactly.
        #[test]
        fn the_stored_form_reads_back_as_the_event(
            raw in value(),
            data in value(),
            copy_of in 0..4u8,
        ) {
            let data = match (copy_of, &raw) {
                (0, r) => r.clone(),
                (1, r) => r.get("properties").cloned().unwrap_or(data),
                (2, r) => r.get("traits").cloned().unwrap_or(data),
                _ => data,
            };
            let e = event(data, raw);
            let stored = to_json(&e, None, &Provenance::default(), None).unwrap();
            // Written from the data's JSON, the text is the same.
            let data_json = serde_json::value::to_raw_value(&e.data).unwrap();
            prop_assert_eq!(
                &to_json(&e, None, &Provenance::default(), Some(&data_json)).unwrap(),
                &stored
            );
            prop_assert_eq!(&data_from_json(&stored).unwrap(), &e.data);
            prop_assert_eq!(from_json(&stored).unwrap(), (e, None, Provenance::default()));
        }

        /// The stored times are chrono's own text for them, for any time
        /// chrono holds and any fraction of a second.
        #[test]
        fn times_are_stored_as_chrono_writes_them(
            seconds in prop_oneof![
                -62_135_596_800i64..253_402_300_800,
                -8_000_000_000_000i64..8_000_000_000_000,
            ],
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1_000).prop_map(|ms| ms * 1_000_000),
                (0u32..1_000_000).prop_map(|us| us * 1_000),
                0u32..1_000_000_000,
            ],
        ) {
            let at = DateTime::from_timestamp(seconds, nanos);
            prop_assume!(at.is_some());
            let at = at.unwrap();
            let mut e = event(json!({}), json!({}));
            e.timestamp = at;
            e.received_at = at - chrono::Duration::nanoseconds(1);
            let stored: Value =
                serde_json::from_str(&to_json(&e, None, &Provenance::default(), None).unwrap()).unwrap();
            prop_assert_eq!(&stored["timestamp"], &serde_json::to_value(e.timestamp).unwrap());
            prop_assert_eq!(&stored["received_at"], &serde_json::to_value(e.received_at).unwrap());
        }

        /// Any text in the column gives an event or an error, never a panic.
        #[test]
        fn any_stored_text_decodes_or_errs(text in "\\PC{0,200}") {
            let _ = from_json(&text);
            let _ = data_from_json(&text);
        }
    }
}
