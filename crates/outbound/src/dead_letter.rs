//! Dead letters: events Segment will never accept as they are (too large,
//! invalid, permanently rejected). Kept with the reason, listable, and
//! re-drivable into the queue once the cause is fixed, until the retention
//! policy ([`crate::retention`]) prunes them.
//!
//! A redrive is two steps, so that neither holds the queue's writer for long
//! and a prune never removes what an operator asked to re-send: first the
//! matching rows are marked (`redrive_requested_at`), in one short
//! transaction; then marked rows move to the queue in bounded batches. Pruning
//! skips marked rows. A redrive interrupted between the steps (a crash, a
//! killed CLI) leaves rows marked, and the next redrive or pruning pass moves
//! them: a marked row is never forgotten and never pruned.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::unix_ms::from_ms;

/// One dead-lettered event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter table.
    pub id: i64,
    /// The environment it was queued for.
    pub environment: String,
    /// Its Segment `messageId` (kept on redrive, so Segment still dedupes).
    pub message_id: String,
    /// The serialized message.
    pub payload: Vec<u8>,
    /// Why it was given up on.
    pub reason: String,
    /// Segment's status, when the reason was an answer from Segment.
    pub status: Option<u16>,
    /// When it was first queued.
    pub enqueued_at: DateTime<Utc>,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
}

/// Which dead letters a list or a redrive applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this environment.
    pub environment: Option<String>,
    /// Only these ids (all when `None`).
    pub ids: Option<Vec<i64>>,
    /// At most this many (list only; all when `None`).
    pub limit: Option<usize>,
}

/// Why an event is dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Burial {
    /// Human-readable reason.
    pub reason: String,
    /// Segment's status, if any.
    pub status: Option<u16>,
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    failed_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER,
    redrive_requested_at INTEGER
);";

/// Indexes created after any column migration. Both carry
/// `redrive_requested_at` so pruning and redrive never read table rows (whose
/// payload may span overflow pages) just to test that column.
pub(crate) const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS dead_letters_by_failed_at
    ON dead_letters(failed_at, redrive_requested_at);
CREATE INDEX IF NOT EXISTS dead_letters_by_redrive
    ON dead_letters(redrive_requested_at);
CREATE INDEX IF NOT EXISTS dead_letters_by_environment
    ON dead_letters(environment, id);";

/// Adds `redrive_requested_at` to a file written before it existed.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_column = conn
        .prepare(
            "SELECT 1 FROM pragma_table_info('dead_letters') WHERE name = 'redrive_requested_at'",
        )?
        .exists([])?;
    if !has_column {
        conn.execute_batch("ALTER TABLE dead_letters ADD COLUMN redrive_requested_at INTEGER")?;
    }
    conn.execute_batch(INDEXES)
}

/// Moves a queued row to the dead letters. Returns false if it was gone.
pub(crate) fn bury(
    conn: &Connection,
    queue_id: i64,
    burial: &Burial,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    crate::redelivery::dead_lettered(conn, queue_id, now_ms)?;
    let moved = conn
        .prepare_cached(
            "INSERT INTO dead_letters (environment, message_id, payload, enqueued_at, failed_at, reason, status)
             SELECT environment, message_id, payload, enqueued_at, ?2, ?3, ?4 FROM queue WHERE id = ?1",
        )?
        .execute(params![queue_id, now_ms, burial.reason, burial.status])?;
    conn.prepare_cached("DELETE FROM queue WHERE id = ?1")?
        .execute([queue_id])?;
    Ok(moved == 1)
}

/// Dead-letters an event that was never queued (refused at enqueue): its
/// environment, `messageId` and payload.
pub(crate) fn insert(
    conn: &Connection,
    (environment, message_id, payload): (&str, &str, &[u8]),
    burial: &Burial,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO dead_letters (environment, message_id, payload, enqueued_at, failed_at, reason, status)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
    )?
    .execute(params![
        environment,
        message_id,
        payload,
        now_ms,
        burial.reason,
        burial.status
    ])?;
    Ok(conn.last_insert_rowid())
}

fn matching_ids(conn: &Connection, filter: &DeadLetterFilter) -> rusqlite::Result<Vec<i64>> {
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    match &filter.ids {
        Some(ids) => {
            let mut out = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM dead_letters WHERE id = ?1 AND (?2 IS NULL OR environment = ?2)",
            )?;
            for id in ids {
                if let Some(found) = stmt
                    .query_row(params![id, filter.environment], |r| r.get(0))
                    .optional()?
                {
                    out.push(found);
                }
                if limit >= 0 && out.len() as i64 >= limit {
                    break;
                }
            }
            Ok(out)
        }
        None => conn
            .prepare_cached(
                "SELECT id FROM dead_letters WHERE ?1 IS NULL OR environment = ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![filter.environment, limit], |r| r.get(0))?
            .collect(),
    }
}

/// Lists dead letters, oldest first.
pub(crate) fn list(
    conn: &Connection,
    filter: &DeadLetterFilter,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let ids = matching_ids(conn, filter)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, environment, message_id, payload, reason, status, enqueued_at, failed_at
         FROM dead_letters WHERE id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(stmt.query_row([id], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                environment: r.get(1)?,
                message_id: r.get(2)?,
                payload: r.get(3)?,
                reason: r.get(4)?,
                status: r.get(5)?,
                enqueued_at: from_ms(r.get(6)?),
                failed_at: from_ms(r.get(7)?),
            })
        })?);
    }
    Ok(out)
}

/// Marks matching dead letters for redrive (first step); returns how many
/// were newly marked. Already marked rows are left as they are.
pub(crate) fn mark_for_redrive(
    conn: &Connection,
    filter: &DeadLetterFilter,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let ids = matching_ids(conn, filter)?;
    let mut mark = conn.prepare_cached(
        "UPDATE dead_letters SET redrive_requested_at = ?2
         WHERE id = ?1 AND redrive_requested_at IS NULL",
    )?;
    let mut marked = 0;
    for id in &ids {
        marked += mark.execute(params![id, now_ms])?;
    }
    Ok(marked)
}

/// The most payload bytes one step of a long job (a redrive, a pruning pass)
/// touches in its transaction, beside its row limit; a step always takes at
/// least one row. Copying 1,000 dead letters of 32 KB back into the queue
/// took about 235 ms on the development machine, against a few ms per
/// webhook commit; 2 MiB keeps a step near 15 ms whatever the rows' size.
pub const STEP_BYTES: usize = 2 * 1024 * 1024;

/// How much of a step is left.
struct Budget {
    rows: usize,
    bytes: usize,
    exhausted: bool,
    taken: usize,
}

impl Budget {
    fn new(rows: usize) -> Self {
        Self {
            rows,
            bytes: STEP_BYTES,
            exhausted: rows == 0,
            taken: 0,
        }
    }

    fn rows_left(&self) -> usize {
        if self.exhausted { 0 } else { self.rows }
    }

    /// Takes candidates `(id, payload bytes)` in order while the budget lasts.
    fn take(&mut self, candidates: Vec<(i64, i64)>) -> Vec<i64> {
        let mut ids = Vec::new();
        for (id, len) in candidates {
            let len = usize::try_from(len).unwrap_or(0);
            if self.rows == 0 || (self.taken > 0 && len > self.bytes) {
                self.exhausted = true;
                break;
            }
            self.rows -= 1;
            self.bytes = self.bytes.saturating_sub(len);
            self.taken += 1;
            ids.push(id);
        }
        self.exhausted |= self.rows == 0;
        ids
    }
}

fn candidates(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    conn.prepare_cached(sql)?
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

fn delete(conn: &Connection, ids: &[i64]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
    let mut deleted = 0;
    for id in ids {
        deleted += stmt.execute([id])?;
    }
    Ok(deleted)
}

/// Moves marked dead letters back into the queue (with their `messageId`),
/// as new rows at the end so every dispatcher cursor sees them: at most
/// `limit` rows and about [`STEP_BYTES`]; returns how many moved (0 once
/// none are marked). Copy and delete share the caller's transaction, so two
/// processes moving at once never move a row twice.
pub(crate) fn move_marked(conn: &Connection, limit: usize, now_ms: i64) -> rusqlite::Result<usize> {
    let mut budget = Budget::new(limit);
    let ids = budget.take(candidates(
        conn,
        "SELECT id, length(payload) FROM dead_letters INDEXED BY dead_letters_by_redrive
         WHERE redrive_requested_at IS NOT NULL ORDER BY id LIMIT ?1",
        [to_sql_limit(budget.rows_left())],
    )?);
    let mut copy = conn.prepare_cached(
        "INSERT INTO queue (environment, message_id, payload, enqueued_at)
         SELECT environment, message_id, payload, ?2 FROM dead_letters WHERE id = ?1",
    )?;
    let mut key =
        conn.prepare_cached("SELECT environment, message_id FROM dead_letters WHERE id = ?1")?;
    for id in &ids {
        if copy.execute(params![id, now_ms])? == 0 {
            continue;
        }
        // A redrive is a resend the operator asked for: never checked for
        // repeats, and it is the copy a repeat is now measured against.
        let queue_id = conn.last_insert_rowid();
        let (environment, message_id): (String, String) =
            key.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        crate::redelivery::remember(conn, &environment, &message_id, Some(queue_id), now_ms)?;
    }
    delete(conn, &ids)
}

/// Moves queued rows of `environment` to the dead letters with `burial`,
/// oldest first: at most `limit` rows and about [`STEP_BYTES`] in the
/// caller's transaction; returns how many moved (0 once none are left).
pub(crate) fn bury_environment(
    conn: &Connection,
    environment: &str,
    burial: &Burial,
    limit: usize,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let mut budget = Budget::new(limit);
    let ids = budget.take(candidates(
        conn,
        "SELECT id, length(payload) FROM queue WHERE environment = ?1 ORDER BY id LIMIT ?2",
        params![environment, to_sql_limit(budget.rows_left())],
    )?);
    let mut moved = 0;
    for id in ids {
        moved += usize::from(bury(conn, id, burial, now_ms)?);
    }
    Ok(moved)
}

/// Dead letters per environment.
pub(crate) fn count_by_environment(
    conn: &Connection,
) -> rusqlite::Result<std::collections::BTreeMap<String, u64>> {
    conn.prepare_cached("SELECT environment, COUNT(*) FROM dead_letters GROUP BY environment")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .map(|r| r.map(|(env, n)| (env, u64::try_from(n).unwrap_or(0))))
        .collect()
}

/// What one pruning transaction removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Dead letters older than the retention age.
    pub by_age: usize,
    /// The oldest dead letters over the count cap.
    pub by_count: usize,
}

impl Pruned {
    /// Both together.
    pub fn total(&self) -> usize {
        self.by_age + self.by_count
    }
}

/// Removes dead letters not marked for redrive, at most `limit` rows and
/// about [`STEP_BYTES`] (0 once there is nothing left to remove): first those
/// that failed before `failed_before_ms`, oldest first; then, in each
/// environment holding more than `keep_at_most`, its oldest (lowest id, i.e.
/// dead-lettered first). The cap is per environment so that one environment's
/// flood of failures never erases another's few.
pub(crate) fn prune(
    conn: &Connection,
    failed_before_ms: Option<i64>,
    keep_at_most: Option<u64>,
    limit: usize,
) -> rusqlite::Result<Pruned> {
    let mut pruned = Pruned::default();
    let mut budget = Budget::new(limit);
    if let Some(cutoff) = failed_before_ms {
        let ids = budget.take(candidates(
            conn,
            "SELECT id, length(payload) FROM dead_letters INDEXED BY dead_letters_by_failed_at
             WHERE failed_at < ?1 AND redrive_requested_at IS NULL
             ORDER BY failed_at, id LIMIT ?2",
            params![cutoff, to_sql_limit(budget.rows_left())],
        )?);
        pruned.by_age = delete(conn, &ids)?;
    }
    let Some(cap) = keep_at_most else {
        return Ok(pruned);
    };
    let over: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT environment, COUNT(*) FROM dead_letters
             WHERE redrive_requested_at IS NULL GROUP BY environment
             HAVING COUNT(*) > ?1 ORDER BY environment",
        )?
        .query_map([i64::try_from(cap).unwrap_or(i64::MAX)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (environment, kept) in over {
        if budget.rows_left() == 0 {
            break;
        }
        let excess = u64::try_from(kept).unwrap_or(0).saturating_sub(cap);
        let take = usize::try_from(excess)
            .unwrap_or(usize::MAX)
            .min(budget.rows_left());
        let ids = budget.take(candidates(
            conn,
            "SELECT id, length(payload) FROM dead_letters INDEXED BY dead_letters_by_environment
             WHERE environment = ?1 AND redrive_requested_at IS NULL ORDER BY id LIMIT ?2",
            params![environment, to_sql_limit(take)],
        )?);
        pruned.by_count += delete(conn, &ids)?;
    }
    Ok(pruned)
}

fn to_sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
