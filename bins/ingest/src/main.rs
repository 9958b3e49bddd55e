//! `tributary-ingest`: wiring only.
fn main() {}
