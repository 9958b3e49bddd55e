//! Tributary's durable store: everything Tributary keeps.
//!
//! - the **event log** (every event, `accepted`, `duplicate` or `rejected`);
//! - the **action outbox and action log** (planned actions with status,
//!   attempts, next run time and leases; the action id is the idempotency key);
//! - the **dedup index** (docs/product-decisions.md, "Dedup"), enforced by the database;
//! - the **local recipients** of the `local` sink, mapping overrides and
//!   known event types.
//!
//! One trait, [`Store`], two implementations: [`SqliteStore`] (embedded,
//! the default) and [`PostgresStore`] (shared by any number of replicas).
//! Writes are group-committed and `Ok` means durable; see `docs/store.md`
//! for the schema and the durability argument.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tributary_store::{AppendItem, AppendOutcome, SqliteStore, Store};
//! use tributary_core::event::{Event, EventId, EventKind};
//!
//! let dir = std::env::temp_dir().join(format!("tributary-doc-{}", std::process::id()));
//! let store = SqliteStore::open_dir(&dir).await?;
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
//! let outcomes = store.append(vec![AppendItem { event, plans: vec![], dedup: None, provenance: Default::default() }]).await?;
//! assert!(matches!(outcomes[0], AppendOutcome::Accepted { .. }));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), tributary_store::StoreError>(())
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

pub use crate::{
    config_log::{ConfigLog, ConfigRevision, NewRevision, StoredSource},
    error::StoreError,
    model::{
        ATTEMPT_SUMMARY_BYTES, ActionFilter, ActionId, ActionRecord, ActionStatus, AppendItem,
        AppendOutcome, AttemptOutcome, AttemptRecord, ClaimRound, ClaimedAction, DEFAULT_LEASE,
        EventDetail, EventFilter, EventRecord, EventStatus, FILTER_SCAN_ROWS, KnownEventType,
        LocalApply, LocalEffect, LocalKind, LocalRecord, LocalRun, MappingOverride, Page,
        Provenance, PruneReport, REJECTED_BODY_EXCERPT_BYTES, RejectedRequest, SourceStatus,
    },
    open::open,
    postgres::{PostgresOptions, PostgresStore},
    retention::{PRUNE_BATCH, prune_older_than, spawn_retention},
    sqlite::{SQLITE_FILE_NAME, SqliteOptions, SqliteStore},
    store::Store,
};
