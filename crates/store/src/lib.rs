//! Tributary's durable store: everything Tributary keeps.
//!
//! - the **event log** (every event, `accepted`, `duplicate` or `rejected`);
//! - the **action outbox and action log** (planned actions with status,
//!   attempts, next run time and leases; the action id is the idempotency key);
//! - the **dedup index** (docs/product-decisions.md, "Dedup"), enforced by the database;
//! - the **local recipients** of the `local` sink, mapping overrides and
//!   known event types.
//!
//! One trait per role: [`EventLog`] (ingest), [`Outbox`] (the workers),
//! [`LocalRecipients`] (the `local` sink), [`AdminQueries`] (the admin API
//! and the console), [`MappingOverrides`], [`Retention`] and [`ConfigLog`];
//! [`Store`] is all of them. Two implementations: [`SqliteStore`] (embedded,
//! the default) and [`PostgresStore`] (shared by any number of replicas).
//! Writes are group-committed and `Ok` means durable; see `docs/store.md`
//! for the schema and the durability argument.
//!
//! A consumer takes the role it needs, so it is plain what it can touch:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use tributary_store::{
//!     AdminQueries, AppendItem, AppendOutcome, EventFilter, EventLog, SqliteStore, Store,
//!     StoreError,
//! };
//! use tributary_core::event::{Event, EventId, EventKind};
//!
//! // Ingest writes through the event log, the console reads through the queries.
//! async fn ingest(log: &dyn EventLog, item: AppendItem) -> Result<AppendOutcome, StoreError> {
//!     Ok(log.append(vec![item]).await?.remove(0))
//! }
//! async fn logged(queries: &dyn AdminQueries) -> Result<usize, StoreError> {
//!     Ok(queries.list_events(&EventFilter::default(), None, 10).await?.items.len())
//! }
//!
//! let dir = std::env::temp_dir().join(format!("tributary-doc-{}", std::process::id()));
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(&dir).await?);
//! let now = chrono::Utc::now();
//! let event = Event {
//!     id: EventId::generate(now),
//!     environment: "production".into(),
//!     source: "web".into(),
//!     kind: EventKind::Track,
//!     event: "signup".into(),
//!     user_id: Some("u1".into()),
//!     anonymous_id: None,
//!     data: serde_json::json!({}),
//!     timestamp: now,
//!     received_at: now,
//!     message_id: None,
//!     raw: serde_json::json!({}),
//!     headers: Default::default(),
//!     preprocess: None,
//! };
//! let item = AppendItem { event, plans: vec![], dedup: None, provenance: Default::default() };
//! assert!(matches!(ingest(store.as_ref(), item).await?, AppendOutcome::Accepted { .. }));
//! assert_eq!(logged(store.as_ref()).await?, 1);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), StoreError>(())
//! # }).unwrap();
//! ```

mod config_log;
mod dedup;
mod error;
mod local;
mod migrate;
mod model;
mod open;
mod postgres;
mod retention;
mod rows;
mod sqlite;
mod stats;
mod store;
mod stored_event;
#[cfg(test)]
mod test_items;

pub use crate::{
    config_log::{ConfigLog, ConfigRevision, NewRevision, StoredSource},
    error::StoreError,
    model::{
        ATTEMPT_SUMMARY_BYTES, ActionFilter, ActionId, ActionRecord, ActionStatus, AppendItem,
        AppendOutcome, AttemptOutcome, AttemptRecord, ClaimRound, ClaimedAction, DEFAULT_LEASE,
        EventDetail, EventFilter, EventRecord, EventStatus, FILTER_SCAN_ROWS, KnownEventType,
        LocalApply, LocalEffect, LocalExecution, LocalKind, LocalRecord, LocalRun, MappingOverride,
        Page, Provenance, PruneReport, REJECTED_BODY_EXCERPT_BYTES, RejectedRequest, SourceStatus,
    },
    open::open,
    postgres::{PostgresOptions, PostgresStore},
    retention::{PRUNE_BATCH, prune_older_than, spawn_retention},
    sqlite::{DictionaryOptions, SQLITE_FILE_NAME, SqliteOptions, SqliteStore},
    store::{AdminQueries, EventLog, LocalRecipients, MappingOverrides, Outbox, Retention, Store},
};
