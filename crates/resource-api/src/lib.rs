//! The reverse-ETL surface Hightouch, Census and Polytomic share, as pure
//! functions (no I/O, no HTTP types):
//!
//! - [`parse_call`]: the product's resource API (`PUT /v1/users/{id}`,
//!   bulk identify, objects, subscriptions, tenants, audience members,
//!   workflow trigger and cancel) -> a [`ResourceCall`]: the call's own
//!   action payloads and the answer to give once they are stored, or a
//!   [`ResourceError`] with the product's status semantics (404 unknown
//!   route, 400 malformed JSON, 422 naming the field, 413 oversized data).
//! - [`resource_event`] / [`resource_plans`]: a call as a normalized event of
//!   kind `resource` whose plans are the call itself.
//! - [`jsonrpc`]: JSON-RPC 2.0 envelopes for the Hightouch and Census
//!   connectors (`tributary-hightouch`, `tributary-census`).
//! - [`RowAdapter`] and [`PolytomicAdapter`]: warehouse rows posted to a
//!   receive URL (HTTP Request destinations; Polytomic's `sync.records`).
//! - [`values`]: the product's value shapes (ids, recipients, tenants,
//!   audience members) read out of JSON with errors naming the field.
//!
//! ```
//! use tributary_core::plan::ActionPayload;
//! use tributary_resource_api::{ApiRequest, CallAnswer, parse_call};
//!
//! let call = parse_call(ApiRequest {
//!     method: "PUT",
//!     path: "/v1/users/usr_7Qk2",
//!     query: None,
//!     body: br#"{"email":"mina@example.org","plan":"pro"}"#,
//! })?;
//! assert_eq!(call.operation.event_type(), "users.identify");
//! assert!(matches!(&call.payloads[0], ActionPayload::IdentifyUser { user_id, .. } if user_id == "usr_7Qk2"));
//! assert!(matches!(call.answer, CallAnswer::Entity(_)));
//!
//! let err = parse_call(ApiRequest {
//!     method: "POST",
//!     path: "/v1/users/bulk/identify",
//!     query: None,
//!     body: br#"{"users":[{"name":"no id"}]}"#,
//! })
//! .unwrap_err();
//! assert_eq!((err.status(), err.field()), (422, Some("/users/0/id")));
//! # Ok::<(), tributary_resource_api::ResourceError>(())
//! ```

mod call;
mod error;
mod event;
pub mod jsonrpc;
mod polytomic;
mod rows;
mod uri;
pub mod values;

pub use call::{
    ApiRequest, CallAnswer, MAX_AUDIENCE_MEMBERS, MAX_BULK_USERS, MAX_SUBSCRIPTION_RECIPIENTS,
    MAX_TRIGGER_DATA_BYTES, MAX_TRIGGER_RECIPIENTS, Operation, ResourceCall, parse_call,
};
pub use error::ResourceError;
pub use event::{
    EventContext, RESOURCE_ORIGIN_PREFIX, resource_event, resource_plans, workflow_run_id,
};
pub use polytomic::{PolytomicAdapter, SYNC_RECORDS, TIMESTAMP_TOLERANCE};
pub use rows::{DEFAULT_ROW_EVENT_TYPE, MAX_ROWS, RowAdapter, row_hash};
