//! [`ConfigLog`] on SQLite: the commit is one writer job, synced like an
//! append, so the single writer orders revisions.

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::{
    StoreError,
    config_log::{
        ConfigLog, ConfigRevision, NewRevision, StoredSource, changes_json, revision_number,
        sql_number,
    },
    model::{from_ms, ms},
};

fn head(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(number), 0) FROM config_revisions")?
        .query_row([], |r| r.get(0))?;
    revision_number(n)
}

fn commit(
    conn: &Connection,
    base: u64,
    revision: NewRevision,
) -> Result<ConfigRevision, StoreError> {
    if head(conn)? != base {
        return Err(StoreError::RevisionTaken { base });
    }
    let number = base + 1;
    let created_at = Utc::now();
    conn.prepare_cached(
        "INSERT INTO config_revisions (number, created_at, actor, summary, changes) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        sql_number(number)?,
        ms(created_at),
        revision.actor,
        revision.summary,
        revision.changes.to_string()
    ])?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO config_sources (key, revision, document) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET revision = excluded.revision, document = excluded.document",
    )?;
    for (key, document) in &revision.sources {
        upsert.execute(params![key, sql_number(number)?, document])?;
    }
    Ok(ConfigRevision {
        number,
        created_at: from_ms(ms(created_at)),
        actor: revision.actor,
        summary: revision.summary,
        changes: revision.changes,
    })
}

fn sources_since(conn: &Connection, after: u64) -> Result<(u64, Vec<StoredSource>), StoreError> {
    // One read transaction, so the head and the documents agree.
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let head = head(conn)?;
        let mut stmt = conn.prepare_cached(
            "SELECT key, revision, document FROM config_sources WHERE revision > ?1 ORDER BY key",
        )?;
        let rows = stmt
            .query_map(params![sql_number(after)?], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let sources = rows
            .into_iter()
            .map(|(key, revision, document)| {
                Ok(StoredSource {
                    key,
                    revision: revision_number(revision)?,
                    document,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((head, sources))
    })();
    conn.execute_batch("COMMIT")?;
    result
}

fn revisions(
    conn: &Connection,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<ConfigRevision>, StoreError> {
    let before = match before {
        Some(b) => sql_number(b)?,
        None => i64::MAX,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT number, created_at, actor, summary, changes FROM config_revisions \
         WHERE number < ?1 ORDER BY number DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![before, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(number, at, actor, summary, changes)| {
            Ok(ConfigRevision {
                number: revision_number(number)?,
                created_at: from_ms(at),
                actor,
                summary,
                changes: changes_json(&changes)?,
            })
        })
        .collect()
}

#[async_trait]
impl ConfigLog for SqliteStore {
    async fn config_head(&self) -> Result<u64, StoreError> {
        self.read(head).await
    }

    async fn config_sources_since(
        &self,
        after: u64,
    ) -> Result<(u64, Vec<StoredSource>), StoreError> {
        self.read(move |c| sources_since(c, after)).await
    }

    async fn commit_config(
        &self,
        base: u64,
        revision: NewRevision,
    ) -> Result<ConfigRevision, StoreError> {
        self.writer
            .write(move |conn, _| commit(conn, base, revision))
            .await
    }

    async fn config_revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ConfigRevision>, StoreError> {
        self.read(move |c| revisions(c, before, limit)).await
    }
}
