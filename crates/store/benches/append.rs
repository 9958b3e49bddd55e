//! Append and claim throughput (placeholder until the benchmark lands).

fn main() {}
