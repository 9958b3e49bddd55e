//! [`ConfigLog`] on PostgreSQL. Replicas share the tables; the primary key
//! on the revision number is what lets only one of two concurrent commits
//! on the same base through.

use async_trait::async_trait;
use chrono::Utc;
use tokio_postgres::error::SqlState;

use super::{PostgresStore, checkout};
use crate::{
    StoreError,
    config_log::{
        ConfigLog, ConfigRevision, NewRevision, StoredSource, changes_json, revision_number,
        sql_number,
    },
    model::{from_ms, ms},
};

const HEAD: &str = "SELECT COALESCE(MAX(number), 0) FROM config_revisions";

#[async_trait]
impl ConfigLog for PostgresStore {
    async fn config_head(&self) -> Result<u64, StoreError> {
        let n: i64 = checkout(&self.pool)
            .await?
            .query_one(HEAD, &[])
            .await?
            .get(0);
        revision_number(n)
    }

    async fn config_sources_since(
        &self,
        after: u64,
    ) -> Result<(u64, Vec<StoredSource>), StoreError> {
        let mut client = checkout(&self.pool).await?;
        // REPEATABLE READ: the head and the documents come from one snapshot.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let head = revision_number(tx.query_one(HEAD, &[]).await?.get(0))?;
        let rows = tx
            .query(
                "SELECT key, revision, document FROM config_sources WHERE revision > $1 ORDER BY key",
                &[&sql_number(after)?],
            )
            .await?;
        tx.commit().await?;
        let sources = rows
            .iter()
            .map(|r| {
                Ok(StoredSource {
                    key: r.get(0),
                    revision: revision_number(r.get(1))?,
                    document: r.get(2),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((head, sources))
    }

    async fn commit_config(
        &self,
        base: u64,
        revision: NewRevision,
    ) -> Result<ConfigRevision, StoreError> {
        let number = base + 1;
        let created_at = from_ms(ms(Utc::now()));
        let mut client = checkout(&self.pool).await?;
        let tx = client.transaction().await?;
        let head = revision_number(tx.query_one(HEAD, &[]).await?.get(0))?;
        if head != base {
            return Err(StoreError::RevisionTaken { base });
        }
        let inserted = tx
            .execute(
                "INSERT INTO config_revisions (number, created_at, actor, summary, changes) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &sql_number(number)?,
                    &ms(created_at),
                    &revision.actor,
                    &revision.summary,
                    &revision.changes.to_string(),
                ],
            )
            .await;
        match inserted {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::RevisionTaken { base });
            }
            other => {
                other?;
            }
        }
        for (key, document) in &revision.sources {
            tx.execute(
                "INSERT INTO config_sources (key, revision, document) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET revision = excluded.revision, \
                 document = excluded.document",
                &[key, &sql_number(number)?, document],
            )
            .await?;
        }
        match tx.commit().await {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::RevisionTaken { base })
            }
            other => {
                other?;
                Ok(ConfigRevision {
                    number,
                    created_at,
                    actor: revision.actor,
                    summary: revision.summary,
                    changes: revision.changes,
                })
            }
        }
    }

    async fn config_revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ConfigRevision>, StoreError> {
        let before = match before {
            Some(b) => sql_number(b)?,
            None => i64::MAX,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = checkout(&self.pool)
            .await?
            .query(
                "SELECT number, created_at, actor, summary, changes FROM config_revisions \
                 WHERE number < $1 ORDER BY number DESC LIMIT $2",
                &[&before, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigRevision {
                    number: revision_number(r.get(0))?,
                    created_at: from_ms(r.get(1)),
                    actor: r.get(2),
                    summary: r.get(3),
                    changes: changes_json(r.get(4))?,
                })
            })
            .collect()
    }
}
