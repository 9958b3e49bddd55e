//! The live configuration's history: numbered revisions, and each source's
//! document as the newest revision left it.
//!
//! The store keeps documents as opaque JSON text; what they mean and how
//! they are validated belongs to the management layer. Revisions are dense
//! (1, 2, 3, ...) and a commit names the revision it was made against, so
//! two writers that read the same state cannot both commit: the second gets
//! [`StoreError::RevisionTaken`] and must re-read. On PostgreSQL this holds
//! across replicas through the primary key on the revision number.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::StoreError;

/// A source's document as written by a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSource {
    /// The source key.
    pub key: String,
    /// The revision that last wrote it.
    pub revision: u64,
    /// Its JSON document; `None` once the source is deleted.
    pub document: Option<String>,
}

/// What a new revision writes.
#[derive(Clone, Debug)]
pub struct NewRevision {
    /// Who made it (an admin credential's name, `config import`, ...).
    pub actor: String,
    /// One line for people.
    pub summary: String,
    /// What changed, secrets masked (a list of change records).
    pub changes: Value,
    /// Source documents to write: `None` deletes the source. A revision
    /// may write none (a recorded reveal, a toggle on a file source).
    pub sources: Vec<(String, Option<String>)>,
}

/// A committed revision.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigRevision {
    /// 1, 2, 3, ...
    pub number: u64,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub actor: String,
    /// One line for people.
    pub summary: String,
    /// What changed, secrets masked.
    pub changes: Value,
}

/// The configuration's revisions and current source documents. Both
/// backends implement it; the commit is durable when it returns `Ok`.
#[async_trait]
pub trait ConfigLog: Send + Sync {
    /// The newest revision's number; 0 before the first.
    async fn config_head(&self) -> Result<u64, StoreError>;

    /// Every source document written after revision `after` (deleted ones
    /// with no document), and the head they bring the reader to.
    async fn config_sources_since(
        &self,
        after: u64,
    ) -> Result<(u64, Vec<StoredSource>), StoreError>;

    /// Commits `revision` as number `base + 1`. Fails with
    /// [`StoreError::RevisionTaken`], writing nothing, when `base` is not the
    /// newest revision any more.
    async fn commit_config(
        &self,
        base: u64,
        revision: NewRevision,
    ) -> Result<ConfigRevision, StoreError>;

    /// Revisions, newest first, numbered below `before` when given.
    async fn config_revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ConfigRevision>, StoreError>;
}

pub(crate) fn revision_number(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Decode {
        field: "config_revisions.number",
        problem: format!("negative revision {n}"),
    })
}

pub(crate) fn sql_number(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::InvalidInput {
        field: "revision",
        problem: format!("{n} is too large"),
    })
}

pub(crate) fn changes_json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode {
        field: "config_revisions.changes",
        problem: e.to_string(),
    })
}
