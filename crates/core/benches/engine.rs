//! Mapping engine benchmarks (issue 2's targets): a config of 50 mappings over
//! 20 event types, and a 2 KB track event matching 3 of them.
//!
//! Run: `cargo bench -p tributary-core --bench engine`

use std::hint::black_box;

use chrono::DateTime;
use serde_json::{Value, json};
use tributary_core::{
    FieldPath, MappingEngine, Overrides,
    config::{self, Config},
    event::{Event, EventId, EventKind, Headers},
    path::{DataAlias, PathInput},
};

fn main() {
    divan::main();
}

/// 50 mappings over 20 event types; `Order Completed` has three of them
/// (identify the buyer inline, add to an audience, trigger a workflow).
fn bench_config() -> Config {
    let mut text = String::from(
        "[environments.production]\n[[sources]]\nkey = \"segment\"\nkind = \"segment\"\n[sources.environments.production]\ntoken = \"tok_bench_0123456789abcdefg\"\n",
    );
    let mut n = 0;
    for t in 0..19 {
        for m in 0..(if t < 9 { 3 } else { 2 }) {
            n += 1;
            text.push_str(&format!(
                "[[sources.environments.production.mappings]]\nevent = \"Event {t}\"\naction = \"trigger_workflow\"\nworkflow = \"wf-{t}-{m}\"\nrecipients = \"properties.recipients\"\n"
            ));
        }
    }
    assert_eq!(n, 47);
    text.push_str(
        r#"[[sources.environments.production.mappings]]
event = "Order Completed"
action = "trigger_workflow"
workflow = "order-confirmation"
recipients = "properties.buyer"
actor = "properties.seller.id"
tenant = "properties.store_id"
cancellation_key = "properties.order_id"

[[sources.environments.production.mappings]]
event = "Order Completed"
action = "add_audience_member"
audience = "customers"

[[sources.environments.production.mappings]]
event = "Order Completed"
action = "set_object"
collection = "orders"
object_id = "properties.order_id"
properties = "properties.summary"
"#,
    );
    config::load("bench.toml", &text, &|_| None).unwrap()
}

/// A ~2 KB Segment track event.
fn bench_event() -> Event {
    let products: Vec<Value> = (0..12)
        .map(|i| {
            json!({"product_id": format!("sku-{i:04}"), "name": format!("Product number {i}"),
                   "price": 19.99 + f64::from(i), "quantity": i + 1, "category": "Outdoor gear"})
        })
        .collect();
    let raw = json!({
        "type": "track",
        "event": "Order Completed",
        "userId": "usr_7Qk2",
        "anonymousId": "1f0c6a2e-5d7b-4a51-9d1e-0b8a3c2f7e11",
        "messageId": "5a8e0c1e-52d3-4a4a-8f2b-7f86a1b3c9d0",
        "properties": {
            "order_id": "ord_1042",
            "store_id": "store_9",
            "total": 129.5,
            "currency": "EUR",
            "buyer": {"id": "usr_7Qk2", "email": "mina@example.org", "name": "Mina Okafor"},
            "seller": {"id": "seller_1"},
            "summary": {"status": "paid", "items": 12},
            "products": products,
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.4"},
            "ip": "203.0.113.7",
            "traits": {"email": "mina@example.org"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        },
        "integrations": {"All": true},
        "timestamp": "2025-03-01T10:00:00.150Z",
        "sentAt": "2025-03-01T10:00:01.200Z",
    });
    let size = serde_json::to_vec(&raw).unwrap().len();
    assert!((1800..2600).contains(&size), "event is {size} bytes");
    let at = DateTime::from_timestamp_millis(1_740_823_200_000).unwrap();
    Event {
        id: EventId::from_parts(1_740_823_200_000, 7),
        environment: "production".into(),
        source: "segment".into(),
        kind: EventKind::Track,
        event: "Order Completed".into(),
        user_id: Some("usr_7Qk2".into()),
        anonymous_id: None,
        data: raw["properties"].clone(),
        timestamp: at,
        received_at: at,
        message_id: Some("5a8e0c1e-52d3-4a4a-8f2b-7f86a1b3c9d0".into()),
        raw,
        headers: Headers::new(),
        preprocess: None,
    }
}

/// Normalized event -> plans (target <= 10 µs).
#[divan::bench]
fn plan_event(bencher: divan::Bencher) {
    let engine = MappingEngine::new(&bench_config());
    let event = bench_event();
    let overrides = Overrides::none();
    let plans = engine.plan(&event, &overrides);
    assert_eq!(plans.len(), 4, "3 mappings + 1 inline identify");
    bencher.bench_local(|| engine.plan(black_box(&event), black_box(&overrides)));
}

/// An event type nobody maps: the cost every unmapped event pays.
#[divan::bench]
fn plan_unmapped_event(bencher: divan::Bencher) {
    let engine = MappingEngine::new(&bench_config());
    let mut event = bench_event();
    event.event = "Page Viewed".into();
    let overrides = Overrides::none();
    bencher.bench_local(|| engine.plan(black_box(&event), black_box(&overrides)));
}

/// One simple-path evaluation (target >= 1,000,000 per second per core).
#[divan::bench(args = ["userId", "properties.buyer.email", "properties.products.7.price", "data.seller.id"])]
fn resolve_dot_path(bencher: divan::Bencher, path: &str) {
    let event = bench_event();
    let path = FieldPath::compile(path, DataAlias::EventData).unwrap();
    let input = PathInput::of(&event);
    assert!(path.resolve(input).is_some());
    bencher.bench_local(|| black_box(&path).resolve(black_box(input)).is_some());
}

/// A JSONPath compiled once at load, as the engine does.
#[divan::bench]
fn resolve_jsonpath_compiled_once(bencher: divan::Bencher) {
    let event = bench_event();
    let path =
        FieldPath::compile("$.properties.products[*].product_id", DataAlias::EventData).unwrap();
    let input = PathInput::of(&event);
    bencher.bench_local(|| black_box(&path).resolve(black_box(input)).is_some());
}

/// The same JSONPath parsed on every evaluation: what compiling at load avoids.
#[divan::bench]
fn resolve_jsonpath_parsed_each_time(bencher: divan::Bencher) {
    let event = bench_event();
    let input = PathInput::of(&event);
    bencher.bench_local(|| {
        FieldPath::compile(
            black_box("$.properties.products[*].product_id"),
            DataAlias::EventData,
        )
        .unwrap()
        .resolve(black_box(input))
        .is_some()
    });
}

/// Loading and validating the 50-mapping config (paid once at start).
#[divan::bench]
fn load_config(bencher: divan::Bencher) {
    bencher.bench_local(bench_config);
}
