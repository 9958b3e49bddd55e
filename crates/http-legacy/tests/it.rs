//! The legacy HTTP adapter: golden fixtures (accepted and rejected), the
//! exact field rules, and properties.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;
use tributary_adapter::{
    ErrorCategory, IdSource, RawRequest,
    testing::{fixture_request, fixtures, received_at, render, source_environment},
};
use tributary_core::{config::SourceEnvironment, path::DataAlias};
use tributary_http_legacy::HttpLegacyAdapter;

fn settings() -> SourceEnvironment {
    source_environment(DataAlias::EventData)
}

#[test]
fn fixtures_normalize_to_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/http-legacy");
    let files = fixtures(&dir);
    assert!(files.len() >= 14);
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let result = HttpLegacyAdapter::new().parse(&fixture_request(&path), &settings());
        // The fixture's name says whether the product accepts it.
        assert_eq!(result.is_err(), name.ends_with("_rejected"), "{name}");
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, render(&result));
        });
    }
}

fn reject(body: serde_json::Value) -> (ErrorCategory, String, Option<String>) {
    let req = RawRequest::new("h", "e", serde_json::to_vec(&body).unwrap(), received_at());
    let err = HttpLegacyAdapter::new()
        .parse(&req, &settings())
        .unwrap_err();
    (
        err.category(),
        err.code().to_owned(),
        err.field().map(str::to_owned),
    )
}

#[test]
fn each_rule_names_its_field() {
    let schema = ErrorCategory::Schema;
    let f = |s: &str| Some(s.to_owned());
    assert_eq!(
        reject(json!({"type": "page", "event": "E"})),
        (schema, "invalid_value".into(), f("/type"))
    );
    assert_eq!(
        reject(json!({"type": 1, "event": "E"})),
        (schema, "invalid_type".into(), f("/type"))
    );
    assert_eq!(
        reject(json!({"type": "track", "event": 5})),
        (schema, "invalid_type".into(), f("/event"))
    );
    assert_eq!(
        reject(json!({"type": "track", "event": "E", "properties": [1]})),
        (schema, "invalid_type".into(), f("/properties"))
    );
    assert_eq!(
        reject(json!({"type": "track", "event": "E", "timestamp": 1_740_823_200})),
        (schema, "invalid_type".into(), f("/timestamp"))
    );
    assert_eq!(
        reject(json!("track")),
        (schema, "not_an_object".into(), f(""))
    );
}

#[test]
fn the_timestamp_defaults_to_receipt_time() {
    let req = RawRequest::new(
        "h",
        "e",
        br#"{"type":"track","event":"E"}"#.to_vec(),
        received_at(),
    );
    let parsed = HttpLegacyAdapter::new().parse(&req, &settings()).unwrap();
    assert_eq!(parsed.events().next().unwrap().timestamp, received_at());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_parsing_is_deterministic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let run = || {
            let req = RawRequest::new("h", "e", body.clone(), received_at()).with_ids(IdSource::sequential(0));
            render(&HttpLegacyAdapter::new().parse(&req, &settings()))
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn accepted_events_always_have_a_name(
        t in prop_oneof![Just(json!("track")), Just(json!("identify")), Just(json!(null))],
        event in prop_oneof![Just(json!("E")), Just(json!("")), Just(json!(3)), Just(json!(null))],
        props in prop_oneof![Just(json!({"a": 1})), Just(json!([1])), Just(json!(null)), Just(json!("s"))],
        user in prop_oneof![Just(json!("u")), Just(json!(7)), Just(json!(true)), Just(json!(null))],
    ) {
        let body = json!({"type": t, "event": event, "properties": props, "userId": user});
        let req = RawRequest::new("h", "e", serde_json::to_vec(&body).unwrap(), received_at());
        match HttpLegacyAdapter::new().parse(&req, &settings()) {
            Ok(parsed) => {
                let e = parsed.events().next().unwrap();
                prop_assert!(!e.event.is_empty());
                prop_assert!(e.data.is_object());
            }
            Err(err) => {
                prop_assert_eq!(err.category(), ErrorCategory::Schema);
                prop_assert!(err.field().is_some());
            }
        }
    }
}
