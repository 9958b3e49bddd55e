//! Segment adapter throughput: decode + verify (X-Signature, enforced) +
//! parse + normalize, for a 1 KB track event and a 500-event Webhooks
//! (Actions) batch, beside the same work without verification and a bare
//! `serde_json` parse of the same bytes as the floor.
//!
//! Run with `cargo bench -p tributary-segment`; divan prints items/s. The
//! bench runs on mimalloc, as the ingest binary does.

use chrono::Utc;
use divan::{Bencher, black_box, counter::ItemsCount};
use hmac_sha1::sign;
use serde_json::{Value, json};
use tributary_adapter::{RawRequest, testing::source_environment};
use tributary_core::{
    Secret,
    config::{SignedPart, SourceEnvironment, SourceKind, Verification, VerificationScheme},
    path::DataAlias,
};
use tributary_segment::SegmentAdapter;

// The allocator the shipped binaries use (bins/ingest), so the figures are
// the ones production sees; glibc malloc's free-time trimming cost the batch
// about a third of its time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const SECRET: &str = "bench-shared-secret";

/// A realistic track event padded to about 1 KB of JSON.
fn track_event(i: usize) -> Value {
    json!({
        "type": "track",
        "event": "Invoice Paid",
        "userId": format!("usr_{i:06}"),
        "anonymousId": "1f0c6a2e-5d7b-4a51-9d1e-0b8a3c2f7e11",
        "messageId": format!("5a8e0c1e-52d3-4a4a-8f2b-{i:012}"),
        "properties": {
            "invoice_id": format!("inv_{i}"), "revenue": 129.5, "currency": "EUR",
            "plan": "team", "seats": 12, "coupon": null,
            "items": [{"sku": "SEAT-M", "qty": 12, "price": 10.79}],
            "note": "Paid by card ending 4242 after the second reminder email."
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.4"},
            "ip": "203.0.113.7",
            "locale": "de-DE",
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            "traits": {"email": "mina@example.org", "name": "Mina Okafor"},
            "page": {"path": "/billing", "url": "https://app.example.org/billing", "title": "Billing"}
        },
        "integrations": {"All": true},
        "originalTimestamp": "2025-03-01T10:00:00.000Z",
        "sentAt": "2025-03-01T10:00:01.200Z",
        "receivedAt": "2025-03-01T10:00:01.350Z",
        "timestamp": "2025-03-01T10:00:00.150Z",
        "channel": "server",
        "projectId": "src_8Hk3",
        "version": 2
    })
}

mod hmac_sha1 {
    //! The bench signs its own bodies; correctness of the scheme is tested
    //! against Python-computed vectors in tributary-adapter.
    use hmac::{Hmac, Mac};
    use sha1::Sha1;

    pub(crate) fn sign(secret: &str, data: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }
}

fn settings(verify: bool) -> SourceEnvironment {
    let mut s = source_environment(DataAlias::EventData);
    if verify {
        s.verification = Some(Verification {
            // Signed as Segment signs a batch: the first element.
            scheme: VerificationScheme::SegmentSignature {
                secret: Secret::new(SECRET),
                signed_part: SignedPart::FirstElement,
            },
            enforce: true,
        });
    }
    s
}

struct Body {
    bytes: Vec<u8>,
    signature: String,
    items: usize,
}

fn single() -> Body {
    let bytes = serde_json::to_vec(&track_event(1)).expect("serializable");
    let signature = sign(SECRET, &bytes);
    Body {
        bytes,
        signature,
        items: 1,
    }
}

fn batch(n: usize) -> Body {
    let items: Vec<Vec<u8>> = (0..n)
        .map(|i| serde_json::to_vec(&track_event(i)).expect("serializable"))
        .collect();
    let signature = sign(SECRET, &items[0]);
    let mut bytes = b"[".to_vec();
    bytes.extend(items.join(&b","[..]));
    bytes.push(b']');
    Body {
        bytes,
        signature,
        items: n,
    }
}

fn request(body: &Body) -> RawRequest {
    RawRequest::new("segment", "production", body.bytes.clone(), Utc::now())
        .with_header("Content-Type", "application/json")
        .with_header("User-Agent", "Segment (Actions)")
        .with_header("X-Signature", body.signature.clone())
}

fn run(bencher: Bencher<'_, '_>, body: &Body, verify: bool) {
    let adapter = SegmentAdapter::new(SourceKind::Segment);
    let settings = settings(verify);
    bencher
        .counter(ItemsCount::new(body.items))
        .with_inputs(|| request(body))
        .bench_local_refs(|req| {
            let parsed = adapter.parse(req, &settings).expect("valid body");
            assert_eq!(parsed.items.len(), body.items);
            black_box(parsed)
        });
}

/// One ~1 KB track event, X-Signature verified.
#[divan::bench]
fn track_1kb_verified(bencher: Bencher<'_, '_>) {
    let body = single();
    assert!(
        (900..1300).contains(&body.bytes.len()),
        "{}",
        body.bytes.len()
    );
    run(bencher, &body, true);
}

/// The same without verification.
#[divan::bench]
fn track_1kb_unverified(bencher: Bencher<'_, '_>) {
    run(bencher, &single(), false);
}

/// A 500-event bare-array batch, signature over the first element.
#[divan::bench]
fn batch_500_verified(bencher: Bencher<'_, '_>) {
    run(bencher, &batch(500), true);
}

/// Floor: `serde_json::from_slice::<Value>` of the 1 KB event alone.
#[divan::bench]
fn floor_serde_json_value_1kb(bencher: Bencher<'_, '_>) {
    let body = single();
    bencher.counter(ItemsCount::new(1usize)).bench(|| {
        black_box(serde_json::from_slice::<Value>(black_box(&body.bytes)).expect("valid"))
    });
}

/// Floor: `serde_json::from_slice::<Value>` of the 500-event batch alone.
#[divan::bench]
fn floor_serde_json_value_batch_500(bencher: Bencher<'_, '_>) {
    let body = batch(500);
    bencher.counter(ItemsCount::new(500usize)).bench(|| {
        black_box(serde_json::from_slice::<Value>(black_box(&body.bytes)).expect("valid"))
    });
}
