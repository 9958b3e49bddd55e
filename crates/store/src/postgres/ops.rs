//! PostgreSQL writes other than appends: each is its own short transaction
//! (PostgreSQL already coalesces the WAL flushes of concurrent commits).

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use tributary_core::event::EventId;

use crate::{
    ActionId, ActionStatus, AttemptOutcome, ClaimedAction, PruneReport, RejectedRequest,
    StoreError,
    model::{ATTEMPT_SUMMARY_BYTES, id_floor, ms, truncate},
    rows::{self, EventRow},
    stats::BatchStats,
};

/// The counter rows of one (source, environment, day) or event type are
/// spread over this many shards, which reads sum. Each group commit of a
/// process writes its committer's own shard (see [`committer_shard`]), so
/// the committers of one process never wait on each other's counter rows,
/// and those of two replicas rarely do.
const STATS_SHARDS: u16 = 64;

/// A random shard (for writes outside the group commit).
pub(super) fn random_shard() -> i16 {
    let random = EventId::generate(Utc::now()).as_u128() % u128::from(STATS_SHARDS);
    i16::try_from(random).unwrap_or(0)
}

/// Committer `n`'s shard, after `first` (one random shard per process).
pub(super) fn committer_shard(first: i16, n: usize) -> i16 {
    let n = u16::try_from(n % usize::from(STATS_SHARDS)).unwrap_or(0);
    let first = first.unsigned_abs() % STATS_SHARDS;
    i16::try_from((first + n) % STATS_SHARDS).unwrap_or(0)
}

/// Upserts a group's aggregates into `shard`, keys sorted so concurrent
/// groups lock rows in one order. Both statements are sent at once (see
/// `append::commit_group`).
pub(super) async fn flush_stats(
    tx: &impl deadpool_postgres::GenericClient,
    stats: &BatchStats,
    shard: i16,
) -> Result<(), StoreError> {
    let sources = async {
        if stats.sources.is_empty() {
            return Ok::<_, StoreError>(());
        }
        let mut rows: Vec<_> = stats.sources.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let source: Vec<&str> = rows.iter().map(|(k, _)| k.0.as_str()).collect();
        let env: Vec<&str> = rows.iter().map(|(k, _)| k.1.as_str()).collect();
        let day: Vec<i64> = rows.iter().map(|(k, _)| k.2).collect();
        let count: Vec<i64> = rows.iter().map(|(_, v)| v.0).collect();
        let last: Vec<i64> = rows.iter().map(|(_, v)| v.1).collect();
        super::execute_cached(
            tx,
            UPSERT_SOURCE_STATS,
            &[&source, &env, &day, &count, &last, &shard],
        )
        .await?;
        Ok(())
    };
    let types = async {
        if stats.types.is_empty() {
            return Ok::<_, StoreError>(());
        }
        let mut rows: Vec<_> = stats.types.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let source: Vec<&str> = rows.iter().map(|(k, _)| k.0.as_str()).collect();
        let env: Vec<&str> = rows.iter().map(|(k, _)| k.1.as_str()).collect();
        let ty: Vec<&str> = rows.iter().map(|(k, _)| k.2.as_str()).collect();
        let last: Vec<i64> = rows.iter().map(|(_, v)| **v).collect();
        super::execute_cached(tx, UPSERT_EVENT_TYPES, &[&source, &env, &ty, &last, &shard]).await?;
        Ok(())
    };
    tokio::try_join!(sources, types)?;
    Ok(())
}

const UPSERT_SOURCE_STATS: &str = "INSERT INTO source_stats (source, environment, day, count, last_received, shard) \
     SELECT *, $6 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
     ON CONFLICT (source, environment, day, shard) DO UPDATE SET \
       count = source_stats.count + excluded.count, \
       last_received = GREATEST(source_stats.last_received, excluded.last_received)";

const UPSERT_EVENT_TYPES: &str = "INSERT INTO known_event_types (source, environment, event_type, last_seen, shard) \
     SELECT *, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
     ON CONFLICT (source, environment, event_type, shard) DO UPDATE SET \
       last_seen = GREATEST(known_event_types.last_seen, excluded.last_seen)";

/// What [`flush_stats`] may run.
pub(super) const STATS_STATEMENTS: [&str; 2] = [UPSERT_SOURCE_STATS, UPSERT_EVENT_TYPES];

pub(super) async fn record_rejected(
    pool: &Pool,
    r: &RejectedRequest,
) -> Result<EventId, StoreError> {
    let id = EventId::generate(r.received_at);
    let row = EventRow::for_rejected(id, r);
    let mut client = super::checkout(pool).await?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO events (id, received_at, source, environment, event_type, user_id, message_id, \
           status, duplicate_of, error, body_excerpt, event_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &row.id, &row.received_at, &row.source, &row.environment, &row.event_type, &row.user_id,
            &row.message_id, &row.status.as_str(), &row.duplicate_of, &row.error, &row.body_excerpt, &row.event_json,
        ],
    )
    .await?;
    let mut stats = BatchStats::default();
    stats.record(
        row.source.as_deref(),
        row.environment.as_deref(),
        None,
        row.received_at,
    );
    flush_stats(&tx, &stats, random_shard()).await?;
    tx.commit().await?;
    Ok(id)
}

pub(super) async fn claim(
    pool: &Pool,
    owner: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<ClaimedAction>, StoreError> {
    let now = ms(Utc::now());
    let expires = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let client = super::checkout(pool).await?;
    // An action waits while an earlier action of its event is still in the
    // outbox, so the product's fixed order holds across workers and machines.
    // FOR UPDATE SKIP LOCKED: workers on any number of machines each lock a
    // different set of due rows without waiting on one another; a row another
    // worker is claiming right now is skipped, not double-claimed. The lease
    // is written as the row's run_at, so if this worker dies the row becomes
    // due again when the lease ends and the next claim picks it up.
    // The commit does not wait for its WAL flush (`synchronous_commit` off
    // for this statement's transaction alone, set per leased row): a lease
    // lost in a crash only lets the action be claimed again, and what is
    // claimed was appended with a flushed commit, which PostgreSQL makes
    // visible only after the flush.
    let statement = client
        .prepare_cached(
            "WITH due AS ( \
               SELECT o.action_id FROM outbox o JOIN actions a ON a.id = o.action_id \
               WHERE o.run_at <= $1 AND NOT EXISTS ( \
                 SELECT 1 FROM actions e JOIN outbox eo ON eo.action_id = e.id \
                 WHERE e.event_id = a.event_id AND e.position < a.position) \
               ORDER BY o.run_at LIMIT $2 \
               FOR UPDATE OF o SKIP LOCKED \
             ), leased AS ( \
               UPDATE outbox o SET run_at = $3, lease_owner = $4, lease_expires_at = $3, \
                 attempt = o.attempt + 1, claimed_at = $1 \
               FROM due WHERE o.action_id = due.action_id \
               RETURNING o.action_id, o.attempt \
             ) \
             SELECT a.id, a.event_id, a.source, a.environment, a.plan_json, leased.attempt, \
               set_config('synchronous_commit', 'off', true), ev.event_json \
             FROM leased JOIN actions a ON a.id = leased.action_id \
               LEFT JOIN events ev ON ev.id = a.event_id",
        )
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &now,
                &i64::try_from(limit).unwrap_or(i64::MAX),
                &expires,
                &owner,
            ],
        )
        .await?;
    let mut claimed = rows
        .iter()
        .map(|r| {
            rows::claimed_action(
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                || Ok(r.try_get(7)?),
                r.get(5),
                expires,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

pub(super) async fn finish_attempt(
    pool: &Pool,
    action: ActionId,
    owner: &str,
    outcome: &AttemptOutcome,
) -> Result<(), StoreError> {
    // One statement, so one round trip and one implicit transaction.
    record_attempt(&super::checkout(pool).await?, action, owner, outcome).await
}

/// Records a batch of attempts in one statement, so one round trip and one
/// implicit transaction whatever the batch size. The transaction does not
/// wait for its WAL flush (`synchronous_commit` off for it alone, through
/// `set_config(.., true)`): like the SQLite writer's unsynced jobs
/// (docs/store.md), a crash of the server can lose at most this bookkeeping,
/// and then the actions run again, which at-least-once execution allows. A
/// lost lease is the item's result.
pub(super) async fn finish_attempts(
    pool: &Pool,
    owner: &str,
    attempts: &[(ActionId, AttemptOutcome)],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let now = ms(Utc::now());
    let ids: Vec<String> = attempts.iter().map(|(a, _)| a.to_string()).collect();
    // One at a time, a repeated action finds its lease already ended by the
    // first occurrence: only the first goes to the database, the others have
    // lost their lease (and the statement needs each row once).
    let mut seen = HashSet::with_capacity(ids.len());
    let first: Vec<bool> = ids.iter().map(|id| seen.insert(id.as_str())).collect();
    let mut batch = AttemptColumns::default();
    for ((id, (_, outcome)), _) in ids.iter().zip(attempts).zip(&first).filter(|(_, f)| **f) {
        let summary = truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES);
        let (status, last_error, retry_at) = attempt_effect(outcome, summary);
        batch.id.push(id);
        batch.outcome.push(outcome.name());
        batch.summary.push(summary);
        batch.retry_at.push(retry_at);
        batch.status.push(status.as_str());
        batch.last_error.push(last_error);
    }
    let client = super::checkout(pool).await?;
    // The lease check locks the held outbox rows (in key order, so callers
    // with overlapping batches cannot deadlock) and every write joins on it.
    // Data-modifying CTEs all see one snapshot and run to completion, and
    // each touches a row once (ids are unique here), so deleting some outbox
    // rows and updating others in one statement is well defined.
    // `set_config` runs once per returned row, i.e. whenever anything was
    // written, before the statement's implicit transaction commits.
    let statement = client
        .prepare_cached(
            "WITH input AS ( \
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) \
                 AS i (action_id, outcome, summary, retry_at, status, last_error) \
             ), lease AS ( \
               SELECT action_id, attempt, claimed_at FROM outbox \
               WHERE action_id = ANY($1::text[]) AND lease_owner = $7 \
               ORDER BY action_id FOR UPDATE \
             ), held AS ( \
               SELECT input.*, lease.attempt, lease.claimed_at FROM input JOIN lease USING (action_id) \
             ), attempt AS ( \
               INSERT INTO attempts (action_id, attempt, started_at, finished_at, outcome, summary) \
               SELECT action_id, attempt, coalesce(claimed_at, $8), $8, outcome, summary FROM held \
             ), finished AS ( \
               DELETE FROM outbox o USING held \
               WHERE held.retry_at IS NULL AND o.action_id = held.action_id \
             ), retried AS ( \
               UPDATE outbox o SET run_at = held.retry_at, lease_owner = NULL, lease_expires_at = NULL, \
                 claimed_at = NULL \
               FROM held WHERE held.retry_at IS NOT NULL AND o.action_id = held.action_id \
             ), action AS ( \
               UPDATE actions a SET status = held.status, attempts = held.attempt, \
                 last_error = held.last_error, updated_at = $8 \
               FROM held WHERE a.id = held.action_id \
             ) \
             SELECT action_id, set_config('synchronous_commit', 'off', true) FROM held",
        )
        .await?;
    let held: HashSet<String> = client
        .query(
            &statement,
            &[
                &batch.id,
                &batch.outcome,
                &batch.summary,
                &batch.retry_at,
                &batch.status,
                &batch.last_error,
                &owner,
                &now,
            ],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(ids
        .iter()
        .zip(first)
        .map(|(id, first)| {
            if first && held.contains(id) {
                Ok(())
            } else {
                Err(StoreError::LeaseLost {
                    action_id: id.clone(),
                    owner: owner.to_owned(),
                })
            }
        })
        .collect())
}

/// `finish_attempts`' input, one array per column.
#[derive(Default)]
struct AttemptColumns<'a> {
    id: Vec<&'a str>,
    outcome: Vec<&'a str>,
    summary: Vec<&'a str>,
    retry_at: Vec<Option<i64>>,
    status: Vec<&'static str>,
    last_error: Vec<Option<&'a str>>,
}

/// What an outcome does to its action: the status, the error to show, and
/// when to retry (`None`: the action leaves the outbox).
pub(super) fn attempt_effect<'a>(
    outcome: &AttemptOutcome,
    summary: &'a str,
) -> (ActionStatus, Option<&'a str>, Option<i64>) {
    match outcome {
        AttemptOutcome::Succeeded { .. } => (ActionStatus::Succeeded, None, None),
        AttemptOutcome::Failed { .. } => (ActionStatus::Failed, Some(summary), None),
        AttemptOutcome::RetryAt { at, .. } => (ActionStatus::Pending, Some(summary), Some(ms(*at))),
    }
}

async fn record_attempt(
    client: &impl GenericClient,
    action: ActionId,
    owner: &str,
    outcome: &AttemptOutcome,
) -> Result<(), StoreError> {
    let now = ms(Utc::now());
    let id = action.to_string();
    let summary = truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES);
    let (status, last_error, retry_at) = attempt_effect(outcome, summary);
    // The lease check locks the outbox row, and every write is conditioned on it.
    let held: i64 = client
        .query_one(
            "WITH lease AS ( \
               SELECT action_id, attempt, claimed_at FROM outbox \
               WHERE action_id = $1 AND lease_owner = $2 FOR UPDATE \
             ), attempt AS ( \
               INSERT INTO attempts (action_id, attempt, started_at, finished_at, outcome, summary) \
               SELECT action_id, attempt, coalesce(claimed_at, $3), $3, $4, $5 FROM lease \
             ), finished AS ( \
               DELETE FROM outbox WHERE $6::bigint IS NULL AND action_id IN (SELECT action_id FROM lease) \
             ), retried AS ( \
               UPDATE outbox SET run_at = $6, lease_owner = NULL, lease_expires_at = NULL, claimed_at = NULL \
               WHERE $6::bigint IS NOT NULL AND action_id IN (SELECT action_id FROM lease) \
             ), action AS ( \
               UPDATE actions a SET status = $7, attempts = lease.attempt, last_error = $8, updated_at = $3 \
               FROM lease WHERE a.id = lease.action_id \
             ) \
             SELECT count(*) FROM lease",
            &[
                &id,
                &owner,
                &now,
                &outcome.name(),
                &summary,
                &retry_at,
                &status.as_str(),
                &last_error,
            ],
        )
        .await?
        .get(0);
    if held == 0 {
        return Err(StoreError::LeaseLost {
            action_id: id,
            owner: owner.to_owned(),
        });
    }
    Ok(())
}

pub(super) async fn forget_mapping_overrides(
    pool: &Pool,
    source: &str,
    mapping: Option<(&str, &str)>,
) -> Result<(), StoreError> {
    let client = super::checkout(pool).await?;
    match mapping {
        Some((environment, mapping)) => {
            client
                .execute(
                    "DELETE FROM mapping_overrides WHERE source = $1 AND environment = $2 AND mapping = $3",
                    &[&source, &environment, &mapping],
                )
                .await?
        }
        None => {
            client
                .execute("DELETE FROM mapping_overrides WHERE source = $1", &[&source])
                .await?
        }
    };
    Ok(())
}

pub(super) async fn set_mapping_active(
    pool: &Pool,
    source: &str,
    environment: &str,
    mapping: &str,
    active: bool,
) -> Result<(), StoreError> {
    super::checkout(pool)
        .await?
        .execute(
            "INSERT INTO mapping_overrides (source, environment, mapping, active, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, environment, mapping) \
             DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
            &[&source, &environment, &mapping, &active, &ms(Utc::now())],
        )
        .await?;
    Ok(())
}

pub(super) async fn prune(
    pool: &Pool,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<PruneReport, StoreError> {
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut client = super::checkout(pool).await?;
    let tx = client.transaction().await?;
    let ids: Vec<String> = tx
        .query(
            "SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT $2",
            &[&id_floor(cutoff), &limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !ids.is_empty() {
        for table in ["attempts", "outbox", "local_applied"] {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE action_id IN (SELECT id FROM actions WHERE event_id = ANY($1))"
                ),
                &[&ids],
            )
            .await?;
        }
        tx.execute("DELETE FROM actions WHERE event_id = ANY($1)", &[&ids])
            .await?;
        tx.execute("DELETE FROM events WHERE id = ANY($1)", &[&ids])
            .await?;
    }
    let dedup_keys = tx
        .execute(
            "DELETE FROM dedup WHERE hash IN (SELECT hash FROM dedup WHERE expires_at <= $1 LIMIT $2)",
            &[&ms(now), &limit],
        )
        .await?;
    tx.execute(
        "DELETE FROM source_stats WHERE day < $1",
        &[&rows::day_of(ms(cutoff))],
    )
    .await?;
    tx.commit().await?;
    Ok(PruneReport {
        events: ids.len() as u64,
        dedup_keys,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the process's first shard, its committers (up to the
        /// number of shards) each get a different one, in range.
        #[test]
        fn committers_of_one_process_get_shards_of_their_own(first in any::<i16>(), committers in 1usize..=64) {
            let shards: HashSet<i16> = (0..committers).map(|n| committer_shard(first, n)).collect();
            prop_assert_eq!(shards.len(), committers);
            prop_assert!(shards.iter().all(|s| (0..64).contains(s)));
        }
    }

    #[test]
    fn a_random_shard_is_in_range() {
        for _ in 0..1_000 {
            assert!((0..64).contains(&random_shard()));
        }
    }
}
