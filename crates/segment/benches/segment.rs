//! Segment adapter benchmarks (filled in below).
fn main() {}
