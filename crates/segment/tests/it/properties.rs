//! Properties: no byte string or JSON value panics the adapter, every
//! failure is typed, and normalizing is deterministic.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tributary_adapter::{
    IdSource, RawRequest,
    testing::{received_at, render, source_environment},
};
use tributary_core::{config::SourceKind, path::DataAlias};
use tributary_segment::{SegmentAdapter, TrackingCall};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("track"),
            Just("identify"),
            Just("page"),
            Just("screen"),
            Just("group"),
            Just("alias"),
            Just("delete"),
            Just("merge"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
        Just(json!("2025-03-01T10:00:00.123456789+02:00")),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("event".to_owned()),
                    Just("userId".to_owned()),
                    Just("anonymousId".to_owned()),
                    Just("properties".to_owned()),
                    Just("traits".to_owned()),
                    Just("context".to_owned()),
                    Just("batch".to_owned()),
                    Just("sentAt".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("originalTimestamp".to_owned()),
                    Just("receivedAt".to_owned()),
                    Just("writeKey".to_owned()),
                    Just("messageId".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn parse_all(body: &[u8]) {
    let settings = source_environment(DataAlias::EventData);
    let req = RawRequest::new("s", "e", body.to_vec(), received_at());
    let adapter = SegmentAdapter::new(SourceKind::Segment);
    // The same bytes claimed to be gzip: a decoding error, never a panic.
    let zipped = RawRequest::new("s", "e", body.to_vec(), received_at())
        .with_header("Content-Encoding", "gzip");
    let results = [
        adapter.parse(&req, &settings),
        adapter.parse(&zipped, &settings),
        adapter.parse_tracking_api(TrackingCall::Track, &req, &settings),
        adapter.parse_tracking_api(TrackingCall::Batch, &req, &settings),
    ];
    for result in results {
        match result {
            Ok(parsed) => {
                for problem in parsed.errors() {
                    assert!(problem.field.starts_with('/'));
                    assert!(!problem.code.is_empty());
                }
            }
            Err(e) => {
                assert!(!e.code().is_empty());
                let _ = e.to_body();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_all(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        parse_all(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn normalizing_is_deterministic(value in arb_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        let settings = source_environment(DataAlias::EventData);
        let adapter = SegmentAdapter::new(SourceKind::Segment);
        let run = || {
            let req = RawRequest::new("s", "e", body.clone(), received_at())
                .with_ids(IdSource::sequential(0))
                .with_header("Content-Type", "application/json");
            render(&adapter.parse(&req, &settings))
        };
        prop_assert_eq!(run(), run());
    }
}
