//! Census's custom destination (`POST
//! /v1/integrations/census/custom-destination`): the JSON-RPC connector
//! Census audience (and user) syncs call, as the product exposes it.
//!
//! `test_connection`, `list_objects`, `list_fields`, `supported_operations`
//! and `get_sync_speed` are answered at once; `sync_batch` becomes one
//! [`RowWrite`](tributary_resource_api::jsonrpc::RowWrite): the accepted
//! records' action payloads, stored by the caller as one event, and a
//! `{record_results}` reply with success or an error message per record.
//! One bad record never fails the batch. Pure: no I/O.
//!
//! Census's HTTP Request destination calls the product's resource API
//! instead (`tributary_resource_api::parse_call`).
//!
//! ```
//! use tributary_census::CustomDestination;
//! use tributary_resource_api::jsonrpc::Dispatch;
//!
//! let body = br#"{"jsonrpc":"2.0","id":"c1","method":"sync_batch","params":{
//!   "sync_plan":{"object":{"object_api_name":"audiences"},"operation":"insert"},
//!   "records":[{"user_id":"u1","audience_key":"vip"},{"audience_key":"vip"}]}}"#;
//! let Dispatch::Write(write) = CustomDestination::new().handle(body) else { panic!() };
//! let results = &write.reply["result"]["record_results"];
//! assert_eq!(results[0]["success"], true);
//! assert_eq!(results[1]["success"], false);
//! assert_eq!(write.payloads.len(), 1);
//! ```

mod catalog;
mod destination;

pub use catalog::{CensusObject, MAX_BATCH_SIZE};
pub use destination::CustomDestination;
