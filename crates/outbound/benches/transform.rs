//! Per-event cost of the hot path: parse a lifecycle webhook, transform it to
//! a Segment track, encode it, and add it to a batch body.
//!
//! Run: `cargo bench -p tributary-outbound --bench transform`.

use chrono::Utc;
use tributary_outbound::{
    BatchLimits, Batcher, Push, Transform, TransformOutcome, TransformSettings, encode_batch,
    parse_envelope,
};

fn main() {
    divan::Divan::from_args().run_benches();
}

const WEBHOOK: &[u8] = include_bytes!("../../../fixtures/outbound/webhooks/message.sent.json");

fn transform() -> Transform {
    Transform::new(TransformSettings::default()).unwrap()
}

/// Parse + transform + validate + serialize one webhook.
#[divan::bench]
fn webhook_to_encoded_track(bencher: divan::Bencher) {
    let t = transform();
    bencher.bench_local(|| {
        let envelope = parse_envelope(divan::black_box(WEBHOOK)).unwrap();
        match t.apply(&envelope, "production").unwrap() {
            TransformOutcome::Forward(m) => m.encode().unwrap(),
            TransformOutcome::Skip(_) => unreachable!(),
        }
    });
}

/// Only the envelope parse (JSON to `Value`), for comparison.
#[divan::bench]
fn parse_only(bencher: divan::Bencher) {
    bencher.bench_local(|| parse_envelope(divan::black_box(WEBHOOK)).unwrap());
}

/// Batching and encoding a full 500-event body, per event.
#[divan::bench(args = [100, 500])]
fn batch_encode(bencher: divan::Bencher, events: usize) {
    let t = transform();
    let envelope = parse_envelope(WEBHOOK).unwrap();
    let TransformOutcome::Forward(m) = t.apply(&envelope, "production").unwrap() else {
        unreachable!()
    };
    let encoded = m.encode().unwrap().json;
    let items: Vec<Vec<u8>> = vec![encoded; events];
    let limits = BatchLimits {
        max_events: 500,
        max_bytes: 475_000,
        max_event_bytes: 32_000,
    };
    bencher
        .counter(divan::counter::ItemsCount::new(events))
        .bench_local(|| {
            let mut batcher = Batcher::new(limits);
            for item in &items {
                match batcher.push(item.as_slice()) {
                    Push::Added => {}
                    _ => unreachable!("fits"),
                }
            }
            encode_batch(&batcher.take(), &Utc::now())
        });
}

/// End to end per event: webhook bytes to its share of a batch body.
#[divan::bench]
fn webhook_to_batch_body_500(bencher: divan::Bencher) {
    let t = transform();
    let limits = BatchLimits {
        max_events: 500,
        max_bytes: 475_000,
        max_event_bytes: 32_000,
    };
    bencher
        .counter(divan::counter::ItemsCount::new(500_usize))
        .bench_local(|| {
            let mut batcher = Batcher::new(limits);
            for _ in 0..500 {
                let envelope = parse_envelope(divan::black_box(WEBHOOK)).unwrap();
                let TransformOutcome::Forward(m) = t.apply(&envelope, "production").unwrap() else {
                    unreachable!()
                };
                let json = m.encode().unwrap().json;
                assert!(matches!(batcher.push(json), Push::Added));
            }
            encode_batch(&batcher.take(), &Utc::now())
        });
}
