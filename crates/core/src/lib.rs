//! Tributary's core: the normalized event, the configuration model and the
//! mapping engine. No I/O and no async: every other crate builds on these
//! plain types and pure functions.
//!
//! - [`event::Event`]: one normalized record, whatever the source
//!   (docs/product-decisions.md, "The normalized event").
//! - [`config::load`]: the TOML configuration, validated whole, every path
//!   compiled once ([`FieldPath`]), every problem reported with its line.
//! - [`MappingEngine`]: (event, configuration) -> [`plan::ActionPlan`]s in the
//!   product's fixed execution order, payloads resolved, per-action errors typed.
//! - [`dedup`]: the dedup key of an event and the scope it is unique in.
//!
//! ```
//! use tributary_core::{config, event::{Event, EventId, EventKind}, MappingEngine, Overrides};
//! use serde_json::json;
//!
//! let text = r#"
//! [environments.development]
//!
//! [[sources]]
//! key = "segment"
//! kind = "segment"
//!
//! [sources.environments.development]
//! token = "tok_example_0123456789abcdef"
//!
//! [[sources.environments.development.mappings]]
//! event = "Signed Up"
//! action = "trigger_workflow"
//! workflow = "welcome"
//! "#;
//! let config = config::load("tributary.toml", text, &|_| None).unwrap();
//! let engine = MappingEngine::new(&config);
//!
//! let raw = json!({"type": "track", "event": "Signed Up", "userId": "u1",
//!                  "properties": {"plan": "team"}});
//! let now = chrono::Utc::now();
//! let event = Event {
//!     id: EventId::generate(now),
//!     environment: "development".into(),
//!     source: "segment".into(),
//!     kind: EventKind::Track,
//!     event: "Signed Up".into(),
//!     user_id: Some("u1".into()),
//!     anonymous_id: None,
//!     data: raw["properties"].clone(),
//!     timestamp: now,
//!     received_at: now,
//!     message_id: None,
//!     raw,
//!     headers: Default::default(),
//!     preprocess: None,
//! };
//! let plans = engine.plan(&event, &Overrides::none());
//! assert_eq!(plans.len(), 1);
//! assert_eq!(
//!     serde_json::to_value(plans[0].payload().unwrap()).unwrap(),
//!     json!({"action": "trigger_workflow", "workflow": "welcome",
//!            "recipients": ["u1"], "data": {"plan": "team"}})
//! );
//! ```

pub mod action;
pub mod config;
pub mod dedup;
pub mod engine;
pub mod event;
pub mod headers;
pub mod json;
pub mod path;
pub mod plan;
pub mod reserved;
pub mod secret;

pub use action::ActionType;
pub use engine::{MappingEngine, Overrides};
pub use path::FieldPath;
pub use secret::Secret;
