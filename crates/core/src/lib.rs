//! stub
pub mod action;
pub mod config;
pub mod dedup;
pub mod engine;
pub mod event;
pub mod path;
pub mod plan;
pub mod secret;
pub use action::ActionType;
pub use engine::{MappingEngine, Overrides};
pub use path::FieldPath;
pub use secret::Secret;
