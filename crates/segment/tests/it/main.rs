//! The Segment adapter's integration tests: one binary, one module per theme.

mod behaviour;
mod golden;
mod properties;
