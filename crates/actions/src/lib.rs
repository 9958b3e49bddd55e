//! Executes Tributary's action plans: the sinks where an action takes effect
//! (`knock`: Knock's API; `webhook`: a signed POST to the operator;
//! `local`: the store), what an attempt's answer means ([`Outcome`]), and when
//! to try again ([`RetryPolicy`]).
//!
//! ```
//! use tributary_actions::{api_calls, ActionRequest};
//! use tributary_core::plan::{ActionPayload, PlanOrigin, RecipientRef};
//!
//! let request = ActionRequest {
//!     action_id: "01JD6Y3W8G2R0000000000000A".into(),
//!     event_id: "01JD6Y3W8G2R0000000000000E".into(),
//!     environment: "production".into(),
//!     source: "segment".into(),
//!     payload: ActionPayload::TriggerWorkflow {
//!         workflow: "welcome".into(),
//!         recipients: vec![RecipientRef::User("u1".into())],
//!         actor: None,
//!         tenant: None,
//!         data: serde_json::json!({"plan": "team"}).into(),
//!         cancellation_key: None,
//!     },
//!     origin: PlanOrigin::Mapping { mapping: "signed-up".into() },
//!     attempt: 1,
//! };
//! let calls = api_calls(&request);
//! assert_eq!(calls[0].path, ["v1", "workflows", "welcome", "trigger"]);
//! assert_eq!(calls[0].idempotency_key.as_deref(), Some("01JD6Y3W8G2R0000000000000A"));
//! ```

mod backoff;
mod error;
mod http;
mod knock;
mod local;
mod outcome;
mod sink;
mod webhook;
mod worker;

pub use backoff::RetryPolicy;
pub use error::ActionsError;
pub use knock::{
    ApiCall, KnockSink, SENT_WITH_TRIGGER, SUBSCRIPTION_CHUNK, api_calls, product_rate_limit,
};
pub use local::LocalSink;
pub use outcome::{Outcome, SUMMARY_LIMIT, bounded, classify, parse_retry_after};
pub use sink::{ActionRequest, BoxFuture, Sink};
pub use webhook::{WebhookSink, sign};
pub use worker::{PoolSettings, SinkSet, WorkerPool};
