//! Every verification scheme against known vectors.
//!
//! The expected signatures were computed outside Rust with Python's `hmac`,
//! `hashlib` and `base64` modules and pasted here, so these tests do not
//! check our HMAC code against itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tributary_adapter::{
    ErrorCategory, RawRequest, VerificationFailure, VerificationOutcome,
    verify::{check, enforce, verify},
};
use tributary_core::{
    Secret,
    config::{SignatureEncoding, SignedPart, Verification, VerificationScheme},
};

const SINGLE: &[u8] = br#"{"type":"track","event":"Invoice Paid","userId":"usr_7Qk2"}"#;
const BATCH: &[u8] =
    br#"[{"type":"track","event":"A","userId":"u1"},{"type":"identify","userId":"u2"}]"#;
const HOOK: &[u8] = br#"{"id":"evt_1","topic":"orders/create"}"#;

// python3: hmac.new(b"seg-shared-secret", SINGLE, hashlib.sha1).hexdigest()
const SEG_SINGLE: &str = "95f10063d568435527bdf6cacc1b0b6290ede6fb";
// ... over the first element of BATCH only.
const SEG_FIRST: &str = "c35da05c6540499bb178e330276c582c2197bec6";
// ... over the whole BATCH (what Segment does NOT sign).
const SEG_WHOLE_ARRAY: &str = "5940887e66faf1c9f7b33c1fd61e0b0aea25c725";
// hmac.new(b"shop-secret", HOOK, hashlib.sha256): hex and base64.
const SHA256_HEX: &str = "ef4dc29f4d74c9b0e0697ab4ee3c9a4af8f42e7495fd55d40255d5889ebc5daf";
const SHA256_B64: &str = "703Cn010ybDgaXq07jyaSvj0LnSV/VXUAlXViJ68Xa8=";
// hmac.new(b"ts-secret", b"1740823200." + HOOK, hashlib.sha256).hexdigest()
const TS_HEX: &str = "31cba8bec0e4670fcd462af2772c67ce44342c2caddf3984c6dac5fa0558dc34";
// base64 of hmac.new(b"ts-secret", b"1740823200000." + HOOK, hashlib.sha256)
const TS_MS_B64: &str = "5eXPV8pIp8gNZBUcGrjna9KRkiBYw6CGLopjGqfaISM=";
// key = bytes(range(1, 25)); secret = "whsec_" + base64(key);
// base64 of hmac.new(key, b"msg_2Lb8qd3k.1740823200." + HOOK, hashlib.sha256)
const SW_SECRET: &str = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY";
const SW_SIG: &str = "EXJb3UXuvLm/40Yf1zkTF3uOYLw1xB3S+87UqU0veqw=";

/// 2025-03-01T10:00:00Z, the signed time of the timestamped vectors.
const SIGNED_AT: i64 = 1_740_823_200;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn req(body: &[u8], headers: &[(&str, &str)]) -> RawRequest {
    headers.iter().fold(
        RawRequest::new("src", "production", body.to_vec(), at(SIGNED_AT + 30)),
        |r, (n, v)| r.with_header(*n, *v),
    )
}

fn run(
    scheme: &VerificationScheme,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<(), VerificationFailure> {
    let r = req(body, headers);
    check(scheme, &r, body, r.received_at)
}

fn segment(secret: &str) -> VerificationScheme {
    VerificationScheme::SegmentSignature {
        secret: Secret::new(secret),
        signed_part: SignedPart::Body,
    }
}

fn segment_first_element(secret: &str) -> VerificationScheme {
    VerificationScheme::SegmentSignature {
        secret: Secret::new(secret),
        signed_part: SignedPart::FirstElement,
    }
}

#[test]
fn segment_signature_single_event() {
    let s = segment("seg-shared-secret");
    assert_eq!(run(&s, SINGLE, &[("X-Signature", SEG_SINGLE)]), Ok(()));
    // Uppercase hex is the same signature.
    let upper = SEG_SINGLE.to_uppercase();
    assert_eq!(run(&s, SINGLE, &[("x-signature", &upper)]), Ok(()));
    // Wrong secret.
    assert_eq!(
        run(
            &segment("other-secret"),
            SINGLE,
            &[("X-Signature", SEG_SINGLE)]
        ),
        Err(VerificationFailure::Mismatch)
    );
    // Truncated signature: still hex, but too short.
    assert_eq!(
        run(&s, SINGLE, &[("X-Signature", &SEG_SINGLE[..32])]),
        Err(VerificationFailure::Mismatch)
    );
    // One byte of body changed.
    let mut tampered = SINGLE.to_vec();
    tampered[10] ^= 1;
    assert_eq!(
        run(&s, &tampered, &[("X-Signature", SEG_SINGLE)]),
        Err(VerificationFailure::Mismatch)
    );
    assert_eq!(
        run(&s, SINGLE, &[("X-Signature", "zz")])
            .unwrap_err()
            .code(),
        "signature_malformed"
    );
    assert_eq!(
        run(&s, SINGLE, &[]).unwrap_err().code(),
        "signature_missing"
    );
}

#[test]
fn segment_signature_covers_the_whole_body_by_default() {
    let s = segment("seg-shared-secret");
    assert_eq!(run(&s, BATCH, &[("X-Signature", SEG_WHOLE_ARRAY)]), Ok(()));
    // A signature over the first element does not vouch for the batch.
    assert_eq!(
        run(&s, BATCH, &[("X-Signature", SEG_FIRST)]),
        Err(VerificationFailure::Mismatch)
    );
    // The attack: a signed one-event request with an event appended.
    let appended = br#"[{"type":"track","event":"A","userId":"u1"},{"type":"identify","userId":"u1","traits":{"email":"evil@example.org"}}]"#;
    assert_eq!(
        run(&s, appended, &[("X-Signature", SEG_FIRST)]),
        Err(VerificationFailure::Mismatch)
    );
}

#[test]
fn segment_signature_batch_covers_the_first_element_only_where_opted_in() {
    let s = segment_first_element("seg-shared-secret");
    assert_eq!(run(&s, BATCH, &[("X-Signature", SEG_FIRST)]), Ok(()));
    assert_eq!(
        run(&s, BATCH, &[("X-Signature", SEG_WHOLE_ARRAY)]),
        Err(VerificationFailure::Mismatch)
    );
    // Later elements are not covered: the risk the opt-in accepts.
    let changed =
        br#"[{"type":"track","event":"A","userId":"u1"},{"type":"identify","userId":"EVIL"}]"#;
    assert_eq!(run(&s, changed, &[("X-Signature", SEG_FIRST)]), Ok(()));
}

fn hmac_scheme(encoding: SignatureEncoding, prefix: Option<&str>) -> VerificationScheme {
    VerificationScheme::HmacSha256 {
        secret: Secret::new("shop-secret"),
        header: "x-shopify-hmac-sha256".to_owned(),
        encoding,
        prefix: prefix.map(str::to_owned),
    }
}

#[test]
fn hmac_sha256_hex_and_base64() {
    let hex = hmac_scheme(SignatureEncoding::Hex, None);
    let b64 = hmac_scheme(SignatureEncoding::Base64, None);
    let h = "X-Shopify-Hmac-Sha256";
    assert_eq!(run(&hex, HOOK, &[(h, SHA256_HEX)]), Ok(()));
    assert_eq!(run(&b64, HOOK, &[(h, SHA256_B64)]), Ok(()));
    // Unpadded base64 is accepted.
    assert_eq!(
        run(&b64, HOOK, &[(h, SHA256_B64.trim_end_matches('='))]),
        Ok(())
    );
    let prefixed = hmac_scheme(SignatureEncoding::Hex, Some("sha256="));
    let with_prefix = format!("sha256={SHA256_HEX}");
    assert_eq!(run(&prefixed, HOOK, &[(h, &with_prefix)]), Ok(()));
    assert_eq!(
        run(&prefixed, HOOK, &[(h, SHA256_HEX)]).unwrap_err().code(),
        "signature_malformed"
    );
    // Wrong secret.
    let wrong = VerificationScheme::HmacSha256 {
        secret: Secret::new("not-the-secret"),
        header: "x-shopify-hmac-sha256".to_owned(),
        encoding: SignatureEncoding::Hex,
        prefix: None,
    };
    assert_eq!(
        run(&wrong, HOOK, &[(h, SHA256_HEX)]),
        Err(VerificationFailure::Mismatch)
    );
    // Truncated.
    assert_eq!(
        run(&hex, HOOK, &[(h, &SHA256_HEX[..60])]),
        Err(VerificationFailure::Mismatch)
    );
    assert_eq!(
        run(&b64, HOOK, &[(h, &SHA256_B64[..20])]),
        Err(VerificationFailure::Mismatch)
    );
    // The hex signature read as base64 decodes to other bytes: a mismatch.
    assert_eq!(
        run(&b64, HOOK, &[(h, SHA256_HEX)]),
        Err(VerificationFailure::Mismatch)
    );
}

fn timestamped(encoding: SignatureEncoding, secret: &str) -> VerificationScheme {
    VerificationScheme::Timestamped {
        secret: Secret::new(secret),
        header: "x-knock-signature".to_owned(),
        encoding,
        tolerance: Duration::from_secs(300),
    }
}

#[test]
fn timestamped_signatures_in_seconds_and_milliseconds() {
    let hex = timestamped(SignatureEncoding::Hex, "ts-secret");
    let b64 = timestamped(SignatureEncoding::Base64, "ts-secret");
    let h = "X-Knock-Signature";
    let v = format!("t={SIGNED_AT},s={TS_HEX}");
    assert_eq!(run(&hex, HOOK, &[(h, &v)]), Ok(()));
    // Stripe's spelling, with spaces and an unknown part.
    let v = format!("t={SIGNED_AT}, v0=abc, v1={TS_HEX}");
    assert_eq!(run(&hex, HOOK, &[(h, &v)]), Ok(()));
    let v = format!("t={SIGNED_AT}000,s={TS_MS_B64}");
    assert_eq!(run(&b64, HOOK, &[(h, &v)]), Ok(()));
    // Rotation: one stale signature and one good one.
    let v = format!("t={SIGNED_AT},s={},s={TS_HEX}", "00".repeat(32));
    assert_eq!(run(&hex, HOOK, &[(h, &v)]), Ok(()));
}

#[test]
fn timestamped_failures() {
    let hex = timestamped(SignatureEncoding::Hex, "ts-secret");
    let h = "x-knock-signature";
    let good = format!("t={SIGNED_AT},s={TS_HEX}");
    // Wrong secret.
    assert_eq!(
        run(
            &timestamped(SignatureEncoding::Hex, "nope"),
            HOOK,
            &[(h, &good)]
        ),
        Err(VerificationFailure::Mismatch)
    );
    // Truncated.
    let v = format!("t={SIGNED_AT},s={}", &TS_HEX[..40]);
    assert_eq!(
        run(&hex, HOOK, &[(h, &v)]),
        Err(VerificationFailure::Mismatch)
    );
    // The timestamp is part of what is signed.
    let v = format!("t={},s={TS_HEX}", SIGNED_AT + 1);
    assert_eq!(
        run(&hex, HOOK, &[(h, &v)]),
        Err(VerificationFailure::Mismatch)
    );
    // Stale: genuine signature received 10 minutes later.
    let r = req(HOOK, &[(h, &good)]);
    assert_eq!(
        check(&hex, &r, HOOK, at(SIGNED_AT + 600)),
        Err(VerificationFailure::OutsideTolerance {
            skew_secs: 600,
            tolerance_secs: 300
        })
    );
    // From the future, just as bad.
    assert!(matches!(
        check(&hex, &r, HOOK, at(SIGNED_AT - 301)),
        Err(VerificationFailure::OutsideTolerance {
            skew_secs: -301,
            ..
        })
    ));
    // At the edge of the tolerance it still passes.
    assert_eq!(check(&hex, &r, HOOK, at(SIGNED_AT + 300)), Ok(()));
    for bad in ["s=abcd", "t=12", "t=abc,s=00", "garbage", "t=1,s=zz"] {
        assert_eq!(
            run(&hex, HOOK, &[(h, bad)]).unwrap_err().code(),
            "signature_malformed",
            "{bad}"
        );
    }
    assert_eq!(
        run(&hex, HOOK, &[]).unwrap_err().code(),
        "signature_missing"
    );
}

#[test]
fn shared_secret_header() {
    let s = VerificationScheme::SharedSecret {
        secret: Secret::new("s3cret-value"),
        header: "x-webhook-secret".to_owned(),
    };
    assert_eq!(
        run(&s, HOOK, &[("X-Webhook-Secret", "s3cret-value")]),
        Ok(())
    );
    assert_eq!(
        run(&s, HOOK, &[("X-Webhook-Secret", "s3cret-valuE")]),
        Err(VerificationFailure::Mismatch)
    );
    assert_eq!(
        run(&s, HOOK, &[("X-Webhook-Secret", "s3cret")]),
        Err(VerificationFailure::Mismatch)
    );
    assert_eq!(
        run(&s, HOOK, &[("X-Other", "s3cret-value")])
            .unwrap_err()
            .code(),
        "signature_missing"
    );
}

#[test]
fn bearer_token() {
    let s = VerificationScheme::Bearer {
        token: Secret::new("tok_123"),
    };
    assert_eq!(
        run(&s, HOOK, &[("Authorization", "Bearer tok_123")]),
        Ok(())
    );
    assert_eq!(
        run(&s, HOOK, &[("authorization", "bearer tok_123")]),
        Ok(())
    );
    assert_eq!(
        run(&s, HOOK, &[("Authorization", "Bearer tok_12")]),
        Err(VerificationFailure::Mismatch)
    );
    assert_eq!(
        run(&s, HOOK, &[("Authorization", "Basic dG9rXzEyMzo=")])
            .unwrap_err()
            .code(),
        "signature_malformed"
    );
    assert_eq!(run(&s, HOOK, &[]).unwrap_err().code(), "signature_missing");
}

fn standard(secret: &str) -> VerificationScheme {
    VerificationScheme::StandardWebhooks {
        secret: Secret::new(secret),
        tolerance: Duration::from_secs(300),
    }
}

#[test]
fn standard_webhooks() {
    let s = standard(SW_SECRET);
    let ts = SIGNED_AT.to_string();
    let sig = format!("v1,{SW_SIG}");
    let headers = |sig: &str| {
        vec![
            ("webhook-id".to_owned(), "msg_2Lb8qd3k".to_owned()),
            ("webhook-timestamp".to_owned(), ts.clone()),
            ("webhook-signature".to_owned(), sig.to_owned()),
        ]
    };
    let go = |scheme: &VerificationScheme, h: Vec<(String, String)>| {
        let h: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        run(scheme, HOOK, &h)
    };
    assert_eq!(go(&s, headers(&sig)), Ok(()));
    // Without the prefix the secret is the same key.
    assert_eq!(go(&standard(&SW_SECRET[6..]), headers(&sig)), Ok(()));
    // Several signatures, space separated (rotation); unknown versions skipped.
    let many = format!("v1a,AAAA v1,{} {sig}", "A".repeat(44));
    assert_eq!(go(&s, headers(&many)), Ok(()));
    // Svix's header names.
    let svix: Vec<_> = headers(&sig)
        .into_iter()
        .map(|(n, v)| (n.replace("webhook-", "svix-"), v))
        .collect();
    assert_eq!(go(&s, svix), Ok(()));
    // Wrong secret.
    assert_eq!(
        go(
            &standard("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
            headers(&sig)
        ),
        Err(VerificationFailure::Mismatch)
    );
    // Truncated.
    let short = format!("v1,{}", &SW_SIG[..24]);
    assert_eq!(go(&s, headers(&short)), Err(VerificationFailure::Mismatch));
    // The id is signed.
    let mut h = headers(&sig);
    h[0].1 = "msg_other".to_owned();
    assert_eq!(go(&s, h), Err(VerificationFailure::Mismatch));
    // Stale.
    let r = req(
        HOOK,
        &[
            ("webhook-id", "msg_2Lb8qd3k"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &sig),
        ],
    );
    assert_eq!(
        check(&s, &r, HOOK, at(SIGNED_AT + 3600))
            .unwrap_err()
            .code(),
        "timestamp_outside_tolerance"
    );
    assert_eq!(
        go(&s, headers("v2,abc")).unwrap_err().code(),
        "signature_malformed"
    );
    let mut h = headers(&sig);
    h[1].1 = "soon".to_owned();
    assert_eq!(go(&s, h).unwrap_err().code(), "signature_malformed");
    assert_eq!(go(&s, vec![]).unwrap_err().code(), "signature_missing");
}

#[test]
fn enforcement_rejects_or_records() {
    let r = req(SINGLE, &[("X-Signature", SEG_WHOLE_ARRAY)]);
    let on = Verification {
        scheme: segment("seg-shared-secret"),
        enforce: true,
    };
    let err = enforce(Some(&on), &r, SINGLE).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unauthorized);
    assert_eq!(err.code(), "signature_mismatch");
    assert!(!err.to_string().contains("seg-shared-secret"));

    let off = Verification {
        scheme: segment("seg-shared-secret"),
        enforce: false,
    };
    let outcome = enforce(Some(&off), &r, SINGLE).unwrap();
    assert_eq!(outcome.label(), "unenforced:failed");
    assert!(!outcome.passed());

    let good = req(SINGLE, &[("X-Signature", SEG_SINGLE)]);
    assert_eq!(
        enforce(Some(&on), &good, SINGLE).unwrap().label(),
        "enforced:verified"
    );
    assert_eq!(
        verify(None, &good, SINGLE),
        VerificationOutcome::NotConfigured
    );
}
