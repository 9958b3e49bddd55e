//! Embedded-destination cost per row: a 500-row audience `add` and a 500-row
//! users `change` through the whole handler (envelope, rows, payloads,
//! reply), beside a bare `serde_json` parse of the same bytes as the floor.
//!
//! Run with `cargo bench -p tributary-hightouch`; divan prints rows/s.

use divan::{Bencher, black_box, counter::ItemsCount};
use serde_json::{Value, json};
use tributary_hightouch::EmbeddedDestination;

fn main() {
    divan::main();
}

fn body(object: &str, method: &str) -> Vec<u8> {
    let rows: Vec<Value> = (0..500)
        .map(|i| {
            json!({"user_id": format!("usr_{i:06}"), "tenant": format!("acct_{}", i % 20),
                   "email": format!("user{i}@example.org"), "plan": "team"})
        })
        .collect();
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {
        "idColumn": "user_id", "configuration": {"object": object, "audience_key": "vip"}, "rows": rows}}))
    .unwrap()
}

#[divan::bench(args = ["audiences", "users"])]
fn add_500_rows(bencher: Bencher, object: &str) {
    let body = body(object, "add");
    bencher
        .counter(ItemsCount::new(500usize))
        .bench(|| EmbeddedDestination::new().handle(black_box(&body)));
}

#[divan::bench]
fn add_500_rows_serde_floor(bencher: Bencher) {
    let body = body("users", "add");
    bencher
        .counter(ItemsCount::new(500usize))
        .bench(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap());
}
