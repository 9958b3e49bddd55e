//! The RudderStack adapter: golden fixtures, dialect rules, verification
//! with a shared-secret header (RudderStack does not sign), and properties.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;
use tributary_adapter::{
    ErrorCategory, IdSource, RawRequest,
    testing::{fixture_request, fixtures, received_at, render, source_environment},
};
use tributary_core::{
    Secret,
    config::{SourceEnvironment, Verification, VerificationScheme},
    event::EventKind,
    path::DataAlias,
};
use tributary_rudderstack::RudderstackAdapter;

fn settings() -> SourceEnvironment {
    source_environment(DataAlias::EventData)
}

#[test]
fn fixtures_normalize_to_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rudderstack");
    let files = fixtures(&dir);
    assert!(files.len() >= 6);
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let rendered =
            render(&RudderstackAdapter::new().parse(&fixture_request(&path), &settings()));
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, rendered);
        });
    }
}

fn parse(body: &serde_json::Value) -> tributary_core::event::Event {
    let req = RawRequest::new(
        "rs",
        "production",
        serde_json::to_vec(body).unwrap(),
        received_at(),
    );
    let parsed = RudderstackAdapter::new().parse(&req, &settings()).unwrap();
    parsed.items.into_iter().next().unwrap().unwrap()
}

#[test]
fn traits_fall_back_to_context_traits_only_when_absent() {
    let e = parse(&json!({"type": "identify", "userId": "u", "context": {"traits": {"a": 1}}}));
    assert_eq!(e.data, json!({"a": 1}));
    let e = parse(
        &json!({"type": "identify", "userId": "u", "traits": {"b": 2}, "context": {"traits": {"a": 1}}}),
    );
    assert_eq!(e.data, json!({"b": 2}));
    // Only identify falls back; a track keeps its properties.
    let e = parse(&json!({"type": "track", "event": "E", "context": {"traits": {"a": 1}}}));
    assert_eq!(e.data, json!({}));
}

#[test]
fn the_event_timestamp_wins_over_correction() {
    // Segment would correct this; rudder-server keeps `timestamp`.
    let e = parse(
        &json!({"type": "track", "event": "E", "timestamp": "2025-03-01T08:00:00Z",
                          "originalTimestamp": "2025-03-01T08:00:00Z", "sentAt": "2025-03-01T09:00:00Z"}),
    );
    assert_eq!(e.timestamp.to_rfc3339(), "2025-03-01T08:00:00+00:00");
}

#[test]
fn merge_is_an_alias_kind_event_named_merge() {
    let e = parse(&json!({"type": "merge", "userId": "u"}));
    assert_eq!((e.kind, e.event.as_str()), (EventKind::Alias, "merge"));
}

#[test]
fn a_shared_secret_header_is_enforced_and_not_stored() {
    let mut s = settings();
    s.verification = Some(Verification {
        scheme: VerificationScheme::SharedSecret {
            secret: Secret::new("rs-shared-secret"),
            header: "x-webhook-secret".to_owned(),
        },
        enforce: true,
    });
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rudderstack/shared_secret.json");
    let parsed = RudderstackAdapter::new()
        .parse(&fixture_request(&path), &s)
        .unwrap();
    assert_eq!(parsed.verification.label(), "enforced:verified");
    let event = parsed.events().next().unwrap();
    assert!(!event.headers.contains_key("x-webhook-secret"));
    assert_eq!(event.headers["user-agent"], "RudderLabs");

    let body = std::fs::read(&path).unwrap();
    let req = RawRequest::new("rs", "production", body, received_at())
        .with_header("X-Webhook-Secret", "guess");
    let err = RudderstackAdapter::new().parse(&req, &s).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unauthorized);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_parsing_is_deterministic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let run = || {
            let req = RawRequest::new("rs", "e", body.clone(), received_at()).with_ids(IdSource::sequential(3));
            render(&RudderstackAdapter::new().parse(&req, &settings()))
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn arbitrary_events_never_panic(
        kind in prop_oneof![Just("track"), Just("identify"), Just("merge"), Just("page"), Just("x")],
        user in prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("u")), Just(json!([1])), Just(json!({}))],
        version in prop_oneof![Just(json!(1)), Just(json!("1.1")), Just(json!(null))],
        traits in prop_oneof![Just(json!(null)), Just(json!({"a": 1})), Just(json!("t"))],
    ) {
        let body = json!({"type": kind, "event": "E", "userId": user, "version": version,
                          "context": {"traits": traits}, "traits": traits});
        let req = RawRequest::new("rs", "e", serde_json::to_vec(&body).unwrap(), received_at());
        match RudderstackAdapter::new().parse(&req, &settings()) {
            Ok(parsed) => prop_assert_eq!(parsed.items.len(), 1),
            Err(e) => prop_assert_eq!(e.category(), ErrorCategory::Schema),
        }
    }
}
