//! Tributary's management layer: sources, source environments and mappings
//! as live data, changed while events flow.
//!
//! Every change is a numbered revision in the store ([`tributary_store::ConfigLog`]):
//! who made it, when, and what changed (secrets masked). A source made
//! through this layer is a JSON document with the keys of a `[[sources]]`
//! table, validated by the configuration file's own loader, so a change is
//! refused whole with the same message, as a JSON pointer, that the file
//! would get. Every replica applies a new revision without a restart
//! ([`tributary_pipeline::Pipeline::refresh_live`]). Sources defined in the
//! configuration file stay managed by the file: they are listed and marked
//! so, and only their mappings' active switches change here.
//!
//! ```no_run
//! # async fn demo(pipeline: std::sync::Arc<tributary_pipeline::Pipeline>) -> Result<(), tributary_manage::ManageError> {
//! use serde_json::json;
//! use tributary_manage::Manager;
//!
//! let manager = Manager::new(pipeline, Vec::new());
//! let created = manager
//!     .create_source("admin", json!({"key": "web", "kind": "segment", "name": "Web"}))
//!     .await?;
//! println!("receive URLs, shown this once: {}", created.secrets);
//! manager
//!     .create_mapping("admin", "web", "production", None, json!({
//!         "event": "Signed Up", "action": "trigger_workflow",
//!         "workflow": "welcome", "recipients": "userId"
//!     }))
//!     .await?;
//! # Ok(()) }
//! ```

mod diff;
mod error;
pub mod knock_shape;
mod manager;
mod secrets;
mod transfer;

pub use diff::{Change, diff, masked};
pub use error::ManageError;
pub use manager::{Committed, Credential, DEFAULT_TOKEN_GRACE, Manager, rehearsal_request};
pub use secrets::{MaskedSecret, fingerprint, generate};
pub use transfer::{Import, ImportStep};
