//! The `local` sink's actions run by the store itself, on the writer
//! thread: in the append that plans them ([`apply_in_store`], from
//! `ops::append`), or, while older ones of their environments wait in the
//! outbox, in a worker round ([`claim_running_local`]), which also leases
//! the due actions other sinks run.
//!
//! The `local` sink writes to this database, so running its action inside
//! the transaction that appends it (or takes it from the outbox) needs no
//! lease, no separate "applied" marker and no second job to record the
//! attempt: the effect and the attempt commit with the action or not at
//! all. Run at append, an action also never has an outbox row, and its
//! action row is written once (docs/PERFORMANCE.md).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use rusqlite::{Connection, params};
use tributary_core::plan::ActionPayload;

use super::{
    dictionary::Dictionaries,
    ops::{self, ClaimedRow},
    packed::PackedJson,
    ready::Ahead,
    writer::Batch,
};
use crate::{ActionId, AttemptOutcome, LocalEffect, LocalRun, StoreError, model::ms, rows};

/// The most due rows one round looks at when it may run local actions.
const ROUND_ROWS: usize = 256;

/// Leases one outbox row (?1) to ?3 until ?2, claimed at ?4; returns the
/// attempt number. The lease lives in the outbox row alone; `running` is
/// derived from it (see `rows::ACTION_COLUMNS`), so the actions row is not touched.
const LEASE_ROW: &str = "UPDATE outbox SET run_at = ?2, lease_owner = ?3, lease_expires_at = ?2, \
     attempt = attempt + 1, claimed_at = ?4 WHERE action_id = ?1 RETURNING attempt";

/// What one round did, before the leased plans are decoded (off the writer).
pub(super) struct RoundRows {
    pub(super) claimed: Vec<ClaimedRow>,
    pub(super) ran: Vec<LocalRun>,
    pub(super) more: bool,
}

struct DueRow {
    id: String,
    event_id: String,
    source: String,
    environment: String,
    plan: PackedJson,
    /// The event's JSON, for a plan that left its trigger data to it.
    event_json: Option<PackedJson>,
    attempt: i64,
    applied: bool,
}

/// Leases up to `limit` due actions to `owner`, except, with `run_local`,
/// those of the environments the store runs itself, which it runs (without
/// it, or with no such environment, this is a plain claim).
pub(super) fn claim_running_local(
    conn: &Connection,
    batch: &mut Batch,
    owner: &str,
    limit: usize,
    lease: Duration,
    run_local: bool,
) -> Result<RoundRows, StoreError> {
    let local_environments: Arc<[String]> = if run_local {
        Arc::clone(&batch.local_environments)
    } else {
        Arc::new([])
    };
    let now = ms(Utc::now());
    let expires = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let rows_limit = if local_environments.is_empty() {
        limit
    } else {
        // Local actions cost the writer a few statements each, so a round may
        // run many; the leased ones are still bounded by `limit`.
        ROUND_ROWS.max(limit)
    };
    // One writer thread: nobody else can claim between this select and the
    // updates, which is what SKIP LOCKED buys on PostgreSQL.
    // An action waits while an earlier action of its event is still in the
    // outbox (pending, leased or retrying): the product's fixed order
    // (identify before trigger) must hold at execution, not only in the plan,
    // or a trigger could reach a user not yet identified.
    // `applied` finds an action whose effect a `local` sink worker applied
    // before it crashed: it must not take effect twice.
    let due: Vec<DueRow> = conn
        .prepare_cached(
            "SELECT o.action_id, a.event_id, a.source, a.environment, a.plan_json, o.attempt, \
               EXISTS (SELECT 1 FROM local_applied l WHERE l.action_id = o.action_id), \
               ev.event_json \
             FROM outbox o JOIN actions a ON a.id = o.action_id \
               LEFT JOIN events ev ON ev.id = a.event_id \
             WHERE o.run_at <= ?1 AND NOT EXISTS ( \
               SELECT 1 FROM actions e JOIN outbox eo ON eo.action_id = e.id \
               WHERE e.event_id = a.event_id AND e.position < a.position) \
             ORDER BY o.run_at LIMIT ?2",
        )?
        .query_map(
            params![now, i64::try_from(rows_limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(DueRow {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    source: r.get(2)?,
                    environment: r.get(3)?,
                    plan: r.get(4)?,
                    attempt: r.get(5)?,
                    applied: r.get(6)?,
                    event_json: r.get(7)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    let due_rows = due.len();
    let mut claimed = Vec::new();
    let mut ran = Vec::new();
    for row in due {
        if local_environments.contains(&row.environment) {
            // Checked before this row writes anything; skipping it (it stays
            // due) beats failing the group with the rows already run.
            let id = match rows::parse_action_id("outbox.action_id", &row.id) {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(action_id = %row.id, error = %e, "Outbox row with an unreadable action id left alone.");
                    continue;
                }
            };
            ran.push(run(conn, id, row, now, &batch.dictionaries)?);
        } else if claimed.len() < limit {
            let attempt = conn
                .prepare_cached(LEASE_ROW)?
                .query_row(params![row.id, expires, owner, now], |r| r.get(0))?;
            claimed.push(ClaimedRow {
                id: row.id,
                event_id: row.event_id,
                source: row.source,
                environment: row.environment,
                plan: row.plan,
                event_json: row.event_json,
                attempt,
                lease_expires_at: expires,
            });
        }
    }
    // Either limit reached means more may be due now.
    let more = (rows_limit > 0 && due_rows == rows_limit) || (limit > 0 && claimed.len() == limit);
    // Only a round that runs local actions may find their backlog gone: a
    // plain claim leaves them in the outbox.
    if run_local && batch.local_backlog && !more {
        batch.local_backlog = local_backlog(conn, &local_environments)?;
        if !batch.local_backlog {
            tracing::info!("The outbox holds no more local actions; appends run them from now on.");
        }
    }
    Ok(RoundRows { claimed, ran, more })
}

/// True when the outbox holds an action of one of `environments`: until
/// it does not, their new actions wait behind it in the outbox, so actions
/// run in the order they were received.
pub(super) fn local_backlog(
    conn: &Connection,
    environments: &[String],
) -> Result<bool, StoreError> {
    for environment in environments {
        let waiting: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM outbox o JOIN actions a ON a.id = o.action_id \
                 WHERE a.environment = ?1)",
            )?
            .query_row([environment], |r| r.get(0))?;
        if waiting {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs one action from the outbox through the `local` sink and records its attempt.
fn run(
    conn: &Connection,
    id: ActionId,
    row: DueRow,
    now: i64,
    dictionaries: &Dictionaries,
) -> Result<LocalRun, StoreError> {
    let attempt = row.attempt.saturating_add(1);
    let outcome = if row.applied {
        AttemptOutcome::Succeeded {
            summary: LocalEffect::AlreadyApplied.summary(),
        }
    } else {
        apply_in_store(
            conn,
            &row.environment,
            &row.id,
            None,
            || ops::payload_of_plan(&row.plan, row.event_json.as_ref()),
            now,
            dictionaries,
        )?
    };
    ops::record_attempt(conn, &row.id, attempt, now, now, &outcome)?;
    Ok(LocalRun {
        id,
        environment: row.environment,
        outcome,
    })
}

/// Applies action `id` through the `local` sink: the writes computed
/// `ahead` when they still hold, else those its payload makes against what
/// is stored. Returns the attempt's outcome; an error is the store's own,
/// and nothing was written.
pub(super) fn apply_in_store(
    conn: &Connection,
    environment: &str,
    id: &str,
    ahead: Option<Ahead>,
    payload: impl FnOnce() -> Result<ActionPayload, StoreError>,
    now: i64,
    dictionaries: &Dictionaries,
) -> Result<AttemptOutcome, StoreError> {
    // Writes made ahead assume the trigger's recipients exist; they are
    // checked here, inside the transaction, after every earlier action of
    // the event (an identify) has run.
    match ops::writes_now(conn, environment, id, ahead, payload) {
        Ok((writes, effect)) => {
            ops::write_local(conn, writes, now, dictionaries)?;
            Ok(AttemptOutcome::Succeeded {
                summary: effect.summary(),
            })
        }
        // The store itself failed: the job ends (nothing of it commits).
        Err(e) if e.is_unavailable() => Err(e),
        // This action can never apply (a payload the sink refuses, a stored
        // record it cannot read): it fails alone, for good, as it would
        // through the sink.
        Err(e) => Ok(AttemptOutcome::Failed {
            summary: e.to_string(),
        }),
    }
}
