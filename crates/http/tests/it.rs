//! The custom HTTP adapter: golden fixtures with configured paths, header
//! and JSONPath type paths, verification schemes on real payloads, and
//! properties.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;
use tributary_adapter::{
    ErrorCategory, IdSource, RawRequest,
    testing::{compile, fixture_request, fixtures, received_at, render, source_environment},
};
use tributary_core::{
    Secret,
    config::{SignatureEncoding, SourceEnvironment, Verification, VerificationScheme},
    event::EventKind,
    path::DataAlias,
};
use tributary_http::HttpAdapter;

/// Stripe-like settings: type at `body.type` (the default), time at
/// `body.created`, dedup key at `body.id`.
fn settings() -> SourceEnvironment {
    let mut s = source_environment(DataAlias::Literal);
    s.timestamp_path = Some(compile("body.created", DataAlias::Literal));
    s.dedup.key_path = compile("body.id", DataAlias::Literal);
    s
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/http")
        .join(name)
}

#[test]
fn fixtures_normalize_to_their_snapshots() {
    let files = fixtures(&fixture(""));
    assert!(files.len() >= 10);
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let result = HttpAdapter::new().parse(&fixture_request(&path), &settings());
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, render(&result));
        });
    }
}

#[test]
fn the_type_can_come_from_a_header_and_shopify_hmac_verifies() {
    let mut s = settings();
    s.event_type_path = Some(compile("headers.x-shopify-topic", DataAlias::Literal));
    s.verification = Some(Verification {
        scheme: VerificationScheme::HmacSha256 {
            secret: Secret::new("shpss_test_secret"),
            header: "x-shopify-hmac-sha256".to_owned(),
            encoding: SignatureEncoding::Base64,
            prefix: None,
        },
        enforce: true,
    });
    let req = fixture_request(&fixture("shopify_order.json"));
    let parsed = HttpAdapter::new().parse(&req, &s).unwrap();
    assert_eq!(parsed.verification.label(), "enforced:verified");
    let e = parsed.events().next().unwrap();
    assert_eq!(
        (e.kind, e.event.as_str()),
        (EventKind::Webhook, "orders/create")
    );
    assert!(!e.headers.contains_key("x-shopify-hmac-sha256"));
    assert_eq!(e.headers["x-shopify-shop-domain"], "example.myshopify.com");
    // A numeric id is not a dedup key (docs/product-decisions.md, "Dedup").
    assert_eq!(e.message_id, None);

    // One changed byte and the enforced check fails with 401.
    let mut tampered = fixture_request(&fixture("shopify_order.json"));
    tampered.body[10] ^= 1;
    let err = HttpAdapter::new().parse(&tampered, &s).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unauthorized);
}

#[test]
fn jsonpath_type_paths_and_bearer_tokens() {
    let mut s = settings();
    s.event_type_path = Some(compile("$.meta.kind", DataAlias::Literal));
    s.verification = Some(Verification {
        scheme: VerificationScheme::Bearer {
            token: Secret::new("clay-secret"),
        },
        enforce: true,
    });
    let body = br#"{"meta":{"kind":"lead.enriched"},"email":"a@example.org"}"#;
    let req = RawRequest::new("clay", "production", body.to_vec(), received_at())
        .with_header("Authorization", "Bearer clay-secret");
    let parsed = HttpAdapter::new().parse(&req, &s).unwrap();
    let e = parsed.events().next().unwrap();
    assert_eq!(e.event, "lead.enriched");
    assert_eq!(
        e.data,
        json!({"meta": {"kind": "lead.enriched"}, "email": "a@example.org"})
    );
    assert!(!e.headers.contains_key("authorization"));
    let req = RawRequest::new("clay", "production", body.to_vec(), received_at());
    assert_eq!(
        HttpAdapter::new().parse(&req, &s).unwrap_err().code(),
        "signature_missing"
    );
}

#[test]
fn a_shared_secret_header_by_default_name() {
    let mut s = settings();
    s.verification = Some(Verification {
        scheme: VerificationScheme::SharedSecret {
            secret: Secret::new("hunter2"),
            header: tributary_core::config::DEFAULT_SHARED_SECRET_HEADER.to_owned(),
        },
        enforce: false,
    });
    let req = RawRequest::new("x", "e", br#"{"type":"t"}"#.to_vec(), received_at())
        .with_header("x-webhook-secret", "hunter3");
    let parsed = HttpAdapter::new().parse(&req, &s).unwrap();
    assert_eq!(parsed.verification.label(), "unenforced:failed");
    assert_eq!(parsed.events().count(), 1);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_parsing_is_deterministic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let run = || {
            let req = RawRequest::new("h", "e", body.clone(), received_at()).with_ids(IdSource::sequential(0));
            render(&HttpAdapter::new().parse(&req, &settings()))
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn any_object_is_accepted(
        t in prop_oneof![Just(json!("a.b")), Just(json!(1)), Just(json!(null)), Just(json!([1])), Just(json!({}))],
        created in prop_oneof![Just(json!(1_740_823_200)), Just(json!(-1)), Just(json!(1e300)), Just(json!("2025-03-01")), Just(json!("x")), Just(json!(true))],
        id in prop_oneof![Just(json!("k")), Just(json!("")), Just(json!(5)), Just(json!(null))],
    ) {
        let body = json!({"type": t, "created": created, "id": id});
        let req = RawRequest::new("h", "e", serde_json::to_vec(&body).unwrap(), received_at());
        let parsed = HttpAdapter::new().parse(&req, &settings()).unwrap();
        let e = parsed.events().next().unwrap();
        prop_assert_eq!(&e.raw, &body);
        prop_assert!(e.message_id.is_none() || e.message_id.as_deref() == Some("k"));
    }
}
