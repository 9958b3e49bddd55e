//! `tributary-forwarder`.
fn main() {}
