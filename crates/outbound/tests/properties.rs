//! Property tests: the envelope parser and the transform never panic on any
//! input, their errors name a field, and batching never breaks a limit.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tributary_outbound::{
    BatchLimits, Batcher, NameStyle, ObjectRecipients, OutboundError, Push, Transform,
    TransformOutcome, TransformSettings, UnmappedEvents, encode_batch, envelope_from_value,
    parse_envelope, validate_json,
};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("message.sent"),
            Just("message.link_clicked"),
            Just("message.bounced"),
            Just("message.delivery_attempted"),
            Just("2026-03-01T10:00:00Z"),
            Just("projects"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("created_at".to_owned()),
                        Just("data".to_owned()),
                        Just("event_data".to_owned()),
                        Just("id".to_owned()),
                        Just("recipient".to_owned()),
                        Just("collection".to_owned()),
                        Just("channel".to_owned()),
                        Just("source".to_owned()),
                        Just("url".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Envelopes that are mostly right, with arbitrary values in every slot.
fn arb_envelope() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!("message.sent")),
            Just(json!("message.link_clicked")),
            Just(json!("message.interacted")),
            Just(json!("message.bounced")),
            Just(json!("message.delivery_attempted")),
            Just(json!("message.undelivered")),
            arb_json()
        ],
        prop_oneof![Just(json!("2026-03-01T10:00:00.123456Z")), arb_json()],
        arb_json(),
        arb_json(),
        arb_json(),
        arb_json(),
        prop_oneof![arb_json(), Just(json!("user-1"))],
    )
        .prop_map(|(ty, at, channel, source, event_data, id, recipient)| {
            json!({"type": ty, "created_at": at, "event_data": event_data,
                   "data": {"id": id, "recipient": recipient, "channel": channel,
                            "source": source, "tenant": "t"}})
        })
}

fn transforms() -> Vec<Transform> {
    [NameStyle::Title, NameStyle::Snake]
        .into_iter()
        .flat_map(|style| {
            [
                ObjectRecipients::Skip,
                ObjectRecipients::PrefixedUserId,
                ObjectRecipients::AnonymousId,
            ]
            .into_iter()
            .map(move |objects| {
                Transform::new(TransformSettings {
                    name_style: style,
                    object_recipients: objects,
                    unmapped_events: UnmappedEvents::Forward,
                    events: None,
                })
                .unwrap()
            })
        })
        .collect()
}

fn check(value: Value) {
    let bytes = serde_json::to_vec(&value).unwrap();
    match parse_envelope(&bytes) {
        Ok(envelope) => {
            for t in transforms() {
                match t.apply(&envelope, "production") {
                    Ok(TransformOutcome::Forward(message)) => {
                        // Whatever is forwarded is a valid Segment message.
                        let encoded = message.encode().unwrap();
                        validate_json(&encoded.json).unwrap();
                        assert!(encoded.message_id.len() <= 100);
                    }
                    Ok(TransformOutcome::Skip(_)) => {}
                    Err(e) => assert!(e.field().is_some(), "{e}"),
                }
            }
        }
        Err(OutboundError::MalformedJson(_)) => panic!("valid JSON reported as malformed"),
        Err(e) => assert!(e.field().is_some(), "{e}"),
    }
    // The value path agrees with the bytes path.
    assert_eq!(
        envelope_from_value(value).is_ok(),
        parse_envelope(&bytes).is_ok()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_envelope(&bytes);
        let _ = validate_json(&bytes);
        for t in transforms() {
            let _ = t.apply_to_body(&bytes, "p");
        }
    }

    #[test]
    fn transform_of_fixture_variants_forwards_or_names_the_field(
        drop in prop::sample::subsequence(
            vec!["id", "recipient", "channel", "channel_id", "source", "workflow", "tenant"], 0..4),
        recipient in prop_oneof![Just(json!("u")), Just(json!(null)), Just(json!({"id": "p", "collection": "c"})), arb_json()],
        ty in prop_oneof![Just("message.sent"), Just("message.link_clicked"), Just("message.bounced"), Just("workflow.updated")],
        event_data in prop_oneof![Just(json!(null)), Just(json!({"url": "https://x"})), arb_json()],
    ) {
        let mut v: Value = serde_json::from_slice(include_bytes!(
            "../../../fixtures/outbound/webhooks/message.sent.json")).unwrap();
        v["type"] = json!(ty);
        v["event_data"] = event_data;
        v["data"]["recipient"] = recipient;
        for key in drop {
            v["data"].as_object_mut().unwrap().remove(key);
        }
        check(v);
    }

    #[test]
    fn parser_and_transform_never_panic_on_any_json(value in arb_json()) {
        check(value);
    }

    #[test]
    fn parser_and_transform_never_panic_on_near_envelopes(value in arb_envelope()) {
        check(value);
    }

    #[test]
    fn batching_never_exceeds_limits(
        sizes in prop::collection::vec(8usize..3_000, 0..200),
        max_events in 1usize..50,
        max_bytes in 1_024usize..20_000,
        max_event_bytes in 8usize..4_000,
    ) {
        let limits = BatchLimits { max_events, max_bytes, max_event_bytes };
        let events: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| format!(r#"{{"p":"{}"}}"#, "x".repeat(n - 8)).into_bytes())
            .collect();
        let mut batches: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut refused = 0;
        let mut batcher = Batcher::new(limits);
        for e in events.iter().cloned() {
            let mut item = e;
            loop {
                match batcher.push(item) {
                    Push::Added => break,
                    Push::TooLarge(e) => {
                        prop_assert!(e.len() > max_event_bytes
                            || e.len() + tributary_outbound::envelope_len() > max_bytes);
                        refused += 1;
                        break;
                    }
                    Push::Full(e) => {
                        prop_assert!(!batcher.is_empty(), "an empty batch refused an event that fits");
                        batches.push(batcher.take());
                        item = e;
                    }
                }
            }
        }
        if !batcher.is_empty() {
            batches.push(batcher.take());
        }
        let mut total = 0;
        for b in &batches {
            let body = encode_batch(b, &chrono::Utc::now());
            prop_assert!(body.len() <= max_bytes, "{} > {}", body.len(), max_bytes);
            prop_assert!(b.len() <= max_events);
            prop_assert!(!b.is_empty());
            prop_assert!(b.iter().all(|e| e.len() <= max_event_bytes));
            let v: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(v["batch"].as_array().unwrap().len(), b.len());
            total += b.len();
        }
        // Nothing lost, nothing duplicated, order kept.
        prop_assert_eq!(total + refused, events.len());
        let flat: Vec<_> = batches.into_iter().flatten().collect();
        let expected: Vec<_> = events
            .into_iter()
            .filter(|e| e.len() <= max_event_bytes
                && e.len() + tributary_outbound::envelope_len() <= max_bytes)
            .collect();
        prop_assert_eq!(flat, expected);
    }
}
