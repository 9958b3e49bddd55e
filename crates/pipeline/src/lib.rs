//! Tributary's ingest pipeline: what happens to a request between the HTTP
//! server and the store. A request is routed to its source environment (by
//! receive-URL token or write key), run through its environment's preprocess
//! script if it has one (`tributary-script`), verified and normalized by its
//! source kind's adapter, given its dedup scope and action plans, and appended to the
//! store in one group commit. `Ok` means every accepted event and its plans are
//! durable; actions run later, from the outbox, never here.
//!
//! ```no_run
//! # async fn demo(config: std::sync::Arc<tributary_core::config::Config>,
//! #               store: std::sync::Arc<dyn tributary_store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use tributary_adapter::RawRequest;
//! use tributary_pipeline::Pipeline;
//!
//! let pipeline = Pipeline::new(config, store).await?;
//! let body = br#"{"type":"track","event":"Signed Up","userId":"u1"}"#.to_vec();
//! let req = RawRequest::new("", "", body, chrono::Utc::now())
//!     .with_header("content-type", "application/json");
//! let receipt = pipeline.receive("tok_from_the_url", req).await?;
//! println!("{} accepted, {} duplicates", receipt.accepted, receipt.duplicates);
//! # Ok(()) }
//! ```

mod error;
mod live;
mod pipeline;
mod preprocess;
mod receipt;
mod rehearse;
mod rejected_log;
mod resource;
mod routes;

pub use error::PipelineError;
pub use live::{LiveConfig, LiveSource, Origin, Unservable};
pub use pipeline::{LoggedReplay, Pipeline};
pub use receipt::{Receipt, RejectedItem};
pub use rehearse::{Rehearsal, RehearsedEvent, RehearsedPreprocess};
pub use rejected_log::{
    BudgetRefusal, Gate, LOG_LINES_PER_SECOND, LogGate, REJECTED_LOG_BYTES_PER_DAY,
    REJECTED_LOG_BYTES_PER_MINUTE, REJECTED_LOG_PER_SECOND, RejectedLogBudget,
};
pub use resource::{
    Connector, IDEMPOTENCY_WINDOW, ReplyBody, ResourceCallError, ResourceReply, ResourceRequest,
};
pub use routes::Route;
