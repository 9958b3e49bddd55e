//! Reverse-ETL parse cost per row: a 1,000-user bulk identify through the
//! resource-API parser, beside a bare `serde_json` parse of the same bytes as
//! the floor. The JSON-RPC `add` benchmark is in `tributary-hightouch`.
//!
//! Run with `cargo bench -p tributary-resource-api`; divan prints rows/s.

use divan::{Bencher, black_box, counter::ItemsCount};
use serde_json::{Value, json};
use tributary_resource_api::{ApiRequest, parse_call};

fn main() {
    divan::main();
}

fn bulk_identify_body() -> Vec<u8> {
    let users: Vec<Value> = (0..1_000)
        .map(|i| {
            json!({"id": format!("usr_{i:06}"), "name": format!("User {i}"),
                   "email": format!("user{i}@example.org"), "plan": "team", "seats": i % 50,
                   "created_at": "2025-02-27T18:04:11Z"})
        })
        .collect();
    serde_json::to_vec(&json!({"users": users})).unwrap()
}

#[divan::bench]
fn bulk_identify_1000(bencher: Bencher) {
    let body = bulk_identify_body();
    bencher.counter(ItemsCount::new(1_000usize)).bench(|| {
        parse_call(black_box(ApiRequest {
            method: "POST",
            path: "/v1/users/bulk/identify",
            query: None,
            body: &body,
        }))
        .unwrap()
    });
}

#[divan::bench]
fn bulk_identify_1000_serde_floor(bencher: Bencher) {
    let body = bulk_identify_body();
    bencher
        .counter(ItemsCount::new(1_000usize))
        .bench(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap());
}
