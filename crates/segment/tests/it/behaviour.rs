//! Behaviour beyond the fixtures: verification on real deliveries, gzip,
//! limits, the Tracking API and write keys, the Jitsu and Freshpaint kinds.

use std::io::Write;

use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};
use tributary_adapter::{
    ErrorCategory, IdSource, Parsed, RawRequest,
    testing::{received_at, source_environment},
};
use tributary_core::{
    Secret,
    config::{
        SignatureEncoding, SignedPart, SourceEnvironment, SourceKind, Verification,
        VerificationScheme,
    },
    event::EventKind,
    path::DataAlias,
};
use tributary_segment::{MAX_BATCH_ITEMS, SegmentAdapter, TrackingCall, authenticate_write_key};

/// Signed by Segment's scheme over the first element only; the signature was
/// computed with Python's `hmac` (HMAC-SHA1, key `seg-shared-secret`) over
/// `{"type":"track","event":"A","userId":"u1"}`.
const SIGNED_BATCH: &[u8] =
    br#"[{"type":"track","event":"A","userId":"u1"},{"type":"identify","userId":"u2"}]"#;
const SIGNED_BATCH_SIG: &str = "c35da05c6540499bb178e330276c582c2197bec6";

fn settings() -> SourceEnvironment {
    source_environment(DataAlias::EventData)
}

/// Segment's batched deliveries sign the first element only: these sources opt in.
fn with_verification(secret: &str, enforce: bool) -> SourceEnvironment {
    let mut s = settings();
    s.verification = Some(Verification {
        scheme: VerificationScheme::SegmentSignature {
            secret: Secret::new(secret),
            signed_part: SignedPart::FirstElement,
        },
        enforce,
    });
    s
}

fn request(body: &[u8]) -> RawRequest {
    RawRequest::new("seg", "production", body.to_vec(), received_at())
        .with_ids(IdSource::sequential(0))
}

fn segment() -> SegmentAdapter {
    SegmentAdapter::new(SourceKind::Segment)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn events_json(parsed: &Parsed) -> Value {
    serde_json::to_value(parsed.events().collect::<Vec<_>>()).unwrap()
}

#[test]
fn a_signed_batch_is_verified_over_its_first_element() {
    let req = request(SIGNED_BATCH).with_header("X-Signature", SIGNED_BATCH_SIG);
    let parsed = segment()
        .parse(&req, &with_verification("seg-shared-secret", true))
        .unwrap();
    assert_eq!(parsed.verification.label(), "enforced:verified");
    assert_eq!(parsed.events().count(), 2);
    // The signature header is never stored.
    assert!(
        parsed
            .events()
            .all(|e| !e.headers.contains_key("x-signature"))
    );
}

#[test]
fn a_wrong_secret_is_rejected_when_enforced_and_recorded_when_not() {
    let req = request(SIGNED_BATCH).with_header("X-Signature", SIGNED_BATCH_SIG);
    let err = segment()
        .parse(&req, &with_verification("wrong-secret", true))
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unauthorized);
    assert_eq!(err.code(), "signature_mismatch");

    let parsed = segment()
        .parse(&req, &with_verification("wrong-secret", false))
        .unwrap();
    assert_eq!(parsed.verification.label(), "unenforced:failed");
    assert_eq!(parsed.events().count(), 2);
}

#[test]
fn verification_runs_before_parsing() {
    // Garbage with no signature: an enforced source answers 401, not 400.
    let err = segment()
        .parse(&request(b"[{not json"), &with_verification("s", true))
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unauthorized);
    assert_eq!(err.code(), "signature_missing");
}

#[test]
fn gzip_bodies_normalize_like_plain_ones_and_verify_decompressed() {
    let plain = request(SIGNED_BATCH).with_header("X-Signature", SIGNED_BATCH_SIG);
    let zipped = request(&gzip(SIGNED_BATCH))
        .with_header("X-Signature", SIGNED_BATCH_SIG)
        .with_header("Content-Encoding", "gzip");
    let s = with_verification("seg-shared-secret", true);
    let a = segment().parse(&plain, &s).unwrap();
    let b = segment().parse(&zipped, &s).unwrap();
    // Only the stored headers differ (`content-encoding`).
    let without_headers = |parsed: &Parsed| {
        let mut events = events_json(parsed);
        for e in events.as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("headers");
        }
        events
    };
    assert_eq!(
        b.events().next().unwrap().headers["content-encoding"],
        "gzip"
    );
    assert_eq!(without_headers(&a), without_headers(&b));
}

#[test]
fn a_gzip_bomb_is_too_large_not_an_oom() {
    let mut bomb = b"[".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 16 << 20));
    let req = request(&gzip(&bomb)).with_header("content-encoding", "gzip");
    let err = segment().parse(&req, &settings()).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::TooLarge);
}

#[test]
fn batches_over_the_limit_are_refused() {
    let item = json!({"type": "track", "event": "E", "userId": "u"});
    let ok = Value::Array(vec![item.clone(); MAX_BATCH_ITEMS]);
    let parsed = segment()
        .parse(&request(&serde_json::to_vec(&ok).unwrap()), &settings())
        .unwrap();
    assert_eq!(parsed.events().count(), MAX_BATCH_ITEMS);
    let too_many = Value::Array(vec![item; MAX_BATCH_ITEMS + 1]);
    let err = segment()
        .parse(
            &request(&serde_json::to_vec(&too_many).unwrap()),
            &settings(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "batch_too_large");
}

#[test]
fn the_tracking_api_path_implies_the_type() {
    let body = br#"{"event":"Signed Up","userId":"u1","writeKey":"wk_1","timestamp":"2025-03-01T10:00:00Z","sentAt":"2025-03-01T10:00:00Z"}"#;
    let parsed = segment()
        .parse_tracking_api(TrackingCall::Track, &request(body), &settings())
        .unwrap();
    let event = parsed.events().next().unwrap();
    assert_eq!(event.kind, EventKind::Track);
    assert_eq!(event.event, "Signed Up");
    assert_eq!(event.raw["type"], "track");
    // The write key authenticates the call and is not stored.
    assert!(event.raw.get("writeKey").is_none());
    assert_eq!(parsed.body_write_key.as_ref().unwrap().expose(), "wk_1");
    assert_eq!(parsed.verification.label(), "not_configured");

    // The path wins over a conflicting body type.
    let body = br#"{"type":"track","userId":"u1","traits":{"plan":"pro"}}"#;
    let parsed = segment()
        .parse_tracking_api(TrackingCall::Identify, &request(body), &settings())
        .unwrap();
    let event = parsed.events().next().unwrap();
    assert_eq!(
        (event.kind, event.event.as_str()),
        (EventKind::Identify, "identify")
    );
    assert_eq!(event.data, json!({"plan": "pro"}));
}

#[test]
fn the_tracking_api_batch_and_single_shapes_are_not_mixed() {
    let envelope = br#"{"batch":[{"type":"page","userId":"u1"}],"writeKey":"wk_1"}"#;
    let parsed = segment()
        .parse_tracking_api(TrackingCall::Batch, &request(envelope), &settings())
        .unwrap();
    assert_eq!(parsed.events().next().unwrap().kind, EventKind::Page);
    let err = segment()
        .parse_tracking_api(TrackingCall::Track, &request(envelope), &settings())
        .unwrap_err();
    assert_eq!(err.field(), Some("/batch"));
    let err = segment()
        .parse_tracking_api(
            TrackingCall::Batch,
            &request(br#"{"type":"track"}"#),
            &settings(),
        )
        .unwrap_err();
    assert_eq!((err.code(), err.field()), ("missing_field", Some("/batch")));
    let err = segment()
        .parse_tracking_api(TrackingCall::Track, &request(b"[]"), &settings())
        .unwrap_err();
    assert_eq!(err.code(), "not_an_object");
}

#[test]
fn write_keys_are_accepted_from_basic_header_or_body() {
    let mut s = settings();
    s.write_key = Some(Secret::new("wk_123"));
    let body = br#"{"event":"E","userId":"u1"}"#;
    // base64("wk_123:") and base64("wk_123")
    for (name, value) in [
        ("Authorization", "Basic d2tfMTIzOg=="),
        ("authorization", "Basic d2tfMTIz"),
        ("X-Write-Key", "wk_123"),
    ] {
        let req = request(body).with_header(name, value);
        let parsed = segment()
            .parse_tracking_api(TrackingCall::Track, &req, &s)
            .unwrap();
        authenticate_write_key(&req, parsed.body_write_key.as_ref(), &s).unwrap();
    }
    let req = request(br#"{"event":"E","userId":"u1","writeKey":"wk_123"}"#);
    let parsed = segment()
        .parse_tracking_api(TrackingCall::Track, &req, &s)
        .unwrap();
    authenticate_write_key(&req, parsed.body_write_key.as_ref(), &s).unwrap();

    let req = request(body).with_header("X-Write-Key", "wk_999");
    let err = authenticate_write_key(&req, None, &s).unwrap_err();
    assert_eq!(
        (err.category(), err.code()),
        (ErrorCategory::Unauthorized, "write_key_mismatch")
    );
    let err = authenticate_write_key(&request(body), None, &s).unwrap_err();
    assert_eq!(err.code(), "write_key_missing");
    let err = authenticate_write_key(&req, None, &settings()).unwrap_err();
    assert_eq!(err.code(), "write_key_not_configured");
}

#[test]
fn jitsu_and_freshpaint_read_like_segment() {
    let body =
        br#"{"type":"track","event":"Booked","userId":"p1","timestamp":"2025-03-01T10:00:00Z"}"#;
    let reference = events_json(&segment().parse(&request(body), &settings()).unwrap());
    for kind in [SourceKind::Jitsu, SourceKind::Freshpaint] {
        // Freshpaint sends no Content-Type at all.
        let parsed = SegmentAdapter::new(kind)
            .parse(&request(body), &settings())
            .unwrap();
        assert_eq!(events_json(&parsed), reference, "{kind}");
    }
}

#[test]
fn a_configured_signature_header_is_not_stored() {
    let mut s = settings();
    s.verification = Some(Verification {
        scheme: VerificationScheme::HmacSha256 {
            secret: Secret::new("k"),
            header: "x-custom-sig".to_owned(),
            encoding: SignatureEncoding::Hex,
            prefix: None,
        },
        enforce: false,
    });
    let req = request(br#"{"type":"page","userId":"u"}"#)
        .with_header("X-Custom-Sig", "00")
        .with_header("X-Request-Id", "r1");
    let parsed = segment().parse(&req, &s).unwrap();
    let headers = &parsed.events().next().unwrap().headers;
    assert_eq!(headers.keys().collect::<Vec<_>>(), ["x-request-id"]);
    assert_eq!(parsed.verification.label(), "unenforced:failed");
}

#[test]
fn unparsable_timestamps_are_noted_not_fatal() {
    let body = br#"[{"type":"track","event":"E","userId":"u","timestamp":"soon"}]"#;
    let parsed = segment().parse(&request(body), &settings()).unwrap();
    assert_eq!(parsed.events().next().unwrap().timestamp, received_at());
    assert_eq!(parsed.notes[0].field, "/0/timestamp");
}

#[test]
fn very_deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let mut body = br#"{"type":"track","event":"E","properties":{"x":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.extend(b"}}");
    let err = segment()
        .parse(&request(&body), &with_verification("k", false))
        .unwrap_err();
    assert_eq!(
        (err.category(), err.code()),
        (ErrorCategory::Schema, "nesting_too_deep")
    );
    // The same as a batch: the signature reader must not recurse either.
    let mut batch = b"[".to_vec();
    batch.extend(&body);
    batch.push(b']');
    let req = request(&batch).with_header("X-Signature", "00");
    let err = segment()
        .parse(&req, &with_verification("k", true))
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unauthorized);
}
