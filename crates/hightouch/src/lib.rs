//! Hightouch's embedded destination (`POST
//! /v1/integrations/hightouch/embedded-destination`): the JSON-RPC 2.0
//! connector Hightouch audience syncs call, as the product exposes it.
//!
//! Metadata methods (`list_objects`, `list_modes`, `list_fields`,
//! `list_options`, `validate`, `behavior`) are answered at once. The data
//! methods (`add`, `change`, `remove` with `{idColumn, configuration, rows}`)
//! become one [`RowWrite`](tributary_resource_api::jsonrpc::RowWrite): the
//! accepted rows' action payloads, stored by the caller as one event, and a
//! `{rejectedRows}` reply naming each bad row with its reason. One bad row
//! never fails the batch. Protocol errors use the spec's codes (-32700,
//! -32600, -32601, -32602). Pure: no I/O.
//!
//! Hightouch's other path, the HTTP Request destination calling the
//! product's resource API, is `tributary_resource_api::parse_call`.
//!
//! ```
//! use tributary_hightouch::EmbeddedDestination;
//! use tributary_resource_api::jsonrpc::Dispatch;
//!
//! let body = br#"{"jsonrpc":"2.0","id":17,"method":"add","params":{"idColumn":"user_id",
//!   "configuration":{"object":"audiences","audience_key":"beta-testers"},
//!   "rows":[{"user_id":"usr_7Qk2","tenant":"acct_88"},{"tenant":"no user"}]}}"#;
//! let Dispatch::Write(write) = EmbeddedDestination::new().handle(body) else { panic!() };
//! assert_eq!(write.event_type, "hightouch.audiences.add");
//! assert_eq!((write.accepted, write.rejected), (1, 1));
//! assert_eq!(write.reply["result"]["rejectedRows"][0]["id"], 1);
//!
//! let Dispatch::Reply(reply) = EmbeddedDestination::new().handle(b"{") else { panic!() };
//! assert_eq!(reply["error"]["code"], -32700);
//! ```

mod catalog;
mod embedded;

pub use catalog::{BATCH_SIZE, HightouchObject};
pub use embedded::EmbeddedDestination;
