//! The SQLite write operations; each runs on the writer thread inside a group commit.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tributary_core::{
    ActionType,
    dedup::DedupScope,
    event::EventId,
    plan::{ActionPayload, ActionPlan, PlanOutcome},
};

use super::{
    dictionary::Dictionaries,
    local_run,
    packed::{PackedJson, StoredJson},
    ready::{Ahead, RowWrite},
    writer::{Batch, DedupEntry, LiveKey},
};
use crate::{
    ActionId, ActionStatus, AppendItem, AppendOutcome, AttemptOutcome, ClaimedAction, EventStatus,
    LocalEffect, LocalRun, PruneReport, RejectedRequest, StoreError,
    dedup::{self, ExistingKey, Verdict},
    local::{self, Known, Loaded, LocalKey, LocalWrite},
    model::{ATTEMPT_SUMMARY_BYTES, id_floor, ms, truncate},
    rows::{self, EventRow, SharedHeaders},
    stats::BatchStats,
};

const INSERT_EVENT: &str = "INSERT OR FAIL INTO events (id, received_at, source, environment, event_type, \
    user_id, message_id, status, duplicate_of, error, body_excerpt, event_json) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Inserts `row`, with `packed` as its JSON when given (else the row's own).
fn insert_event(
    conn: &Connection,
    row: &EventRow,
    packed: Option<&PackedJson>,
) -> Result<(), StoreError> {
    let json: &dyn rusqlite::ToSql = match packed {
        Some(p) => p,
        None => &row.event_json,
    };
    conn.prepare_cached(INSERT_EVENT)?.execute(params![
        row.id,
        row.received_at,
        row.source,
        row.environment,
        row.event_type,
        row.user_id,
        row.message_id,
        row.status.as_str(),
        row.duplicate_of,
        row.error,
        row.body_excerpt,
        json,
    ])?;
    Ok(())
}

/// An append item with everything that does not need the database done by
/// the caller (serialization, hashing, ids), off the writer thread; what
/// the intake journal holds (see `intake`).
///
/// Generic over its actions only to read the journal's first record format
/// (see [`items_of_record`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct PreparedItem<A = PreparedAction> {
    event_id: EventId,
    received: i64,
    /// Without its JSON, which is `json`.
    row: EventRow,
    json: Option<PackedJson>,
    dedup: Option<(i64, DedupScope)>,
    actions: Vec<A>,
}

impl PreparedItem {
    /// When the event was received (ms since the epoch).
    pub(super) fn received(&self) -> i64 {
        self.received
    }
}

/// Starts every journal record of the current format. A record of the first
/// format starts with its item count, which is never zero (an empty append
/// is not journaled).
const RECORD_MARK: [u8; 2] = [0, 2];

/// An append's intake journal record (see `intake`).
pub(super) fn journal_record(items: &[PreparedItem]) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(items, RECORD_MARK.to_vec()).map_err(|e| StoreError::InvalidInput {
        field: "event",
        problem: format!("cannot encode for the intake journal: {e}"),
    })
}

/// The items of an intake journal record, of this format or the first
/// (written by an earlier build before a crash: its actions' plans are
/// plain JSON).
pub(super) fn items_of_record(record: &[u8]) -> Result<Vec<PreparedItem>, postcard::Error> {
    if let Some(current) = record.strip_prefix(&RECORD_MARK) {
        return postcard::from_bytes(current);
    }
    let first: Vec<PreparedItem<FirstFormatAction>> = postcard::from_bytes(record)?;
    Ok(first
        .into_iter()
        .map(|item| PreparedItem {
            event_id: item.event_id,
            received: item.received,
            row: item.row,
            json: item.json,
            dedup: item.dedup,
            actions: item
                .actions
                .into_iter()
                .map(|a| PreparedAction {
                    id: a.id,
                    id_text: a.id_text,
                    action_type: a.action_type,
                    plan: PackedJson::Text(a.plan_json),
                    planned: a.planned,
                    payload: None,
                    ahead: None,
                })
                .collect(),
        })
        .collect())
}

/// A [`PreparedAction`] as the journal's first format holds it.
#[derive(serde::Deserialize)]
struct FirstFormatAction {
    id: ActionId,
    id_text: String,
    action_type: ActionType,
    plan_json: String,
    planned: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct PreparedAction {
    id: ActionId,
    /// `id` as stored, formatted once.
    id_text: String,
    action_type: ActionType,
    plan: PackedJson,
    planned: bool,
    /// For an environment the store runs itself, unless `ahead` decides
    /// every outcome: the payload, so the writer need not decode `plan`.
    /// Not journaled: a replayed action decodes its plan.
    #[serde(skip)]
    payload: Option<ActionPayload>,
    /// For an environment the store runs itself: its `local` sink writes
    /// when they read nothing (a trigger: the common case), computed here,
    /// off the writer.
    #[serde(skip)]
    ahead: Option<Ahead>,
}

/// Where an action's plan is stored, as errors name it.
const PLAN_COLUMN: &str = "actions.plan_json";
/// Where an event's JSON is stored, as errors name it.
const EVENT_COLUMN: &str = "events.event_json";

fn unpack_event_json(json: Option<&PackedJson>) -> Result<Option<String>, StoreError> {
    json.map(|j| j.unpack(EVENT_COLUMN)).transpose()
}

/// A planned action's payload, decoded from its stored plan; `event_json`
/// (its event's) is unpacked only when the plan left its trigger data to it.
pub(super) fn payload_of_plan(
    plan: &PackedJson,
    event_json: Option<&PackedJson>,
) -> Result<ActionPayload, StoreError> {
    let plan = rows::StoredPlan::parse(&plan.unpack(PLAN_COLUMN)?, PLAN_COLUMN)?
        .complete(|| unpack_event_json(event_json))?;
    match plan.outcome {
        PlanOutcome::Planned { payload } => Ok(payload),
        PlanOutcome::Skipped { .. } => Err(StoreError::InvalidInput {
            field: "plan",
            problem: "the plan has no payload".to_owned(),
        }),
    }
}

/// `local_environments`: the environments whose actions the store runs
/// itself; their actions keep their payloads and read-free writes, made
/// here, off the writer. The JSON is packed with `dictionaries`.
pub(super) fn prepare(
    items: Vec<AppendItem>,
    local_environments: &[String],
    dictionaries: &Dictionaries,
) -> Result<Vec<PreparedItem>, StoreError> {
    let mut shared = SharedHeaders::default();
    items
        .into_iter()
        .map(|mut item| {
            let headers_of = shared.holder(&item);
            let local = local_environments.contains(&item.event.environment);
            // Serialized once for the stored event and for the runs of its
            // local triggers that take it.
            let data_json = (local && item.plans.iter().any(ActionPlan::refers_to_event_data))
                .then(|| serde_json::value::to_raw_value(&item.event.data).ok())
                .flatten();
            let mut row = EventRow::for_event(
                &item,
                EventStatus::Accepted,
                None,
                headers_of.as_ref(),
                data_json.as_deref(),
            )?;
            let json = row
                .event_json
                .take()
                .map(|json| PackedJson::pack(json, dictionaries));
            let plans = std::mem::take(&mut item.plans);
            // Every plan is stored (compared with the event's data) before a
            // kept payload takes that data.
            let stored = plans
                .iter()
                .map(|plan| {
                    rows::plan_json(plan, &item.event.data)
                        .map(|json| PackedJson::pack(json, dictionaries))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            // Writes computed before the event's data can move into a kept
            // payload; a payload whose every outcome they decide is not kept.
            let plans: Vec<_> = plans
                .into_iter()
                .map(|plan| {
                    let id = ActionId::generate(item.event.id);
                    let id_text = id.to_string();
                    // A payload the sink refuses has none; running it fails
                    // it with the reason.
                    let ahead = match &plan.outcome {
                        PlanOutcome::Planned { payload } if local => writes_ahead(
                            &item.event.environment,
                            &id_text,
                            payload,
                            Some(local::EventData {
                                value: &item.event.data,
                                json: data_json.as_deref(),
                            }),
                        )
                        .ok()
                        .flatten(),
                        _ => None,
                    };
                    let kept = local && !ahead.as_ref().is_some_and(Ahead::decides_every_case);
                    (plan, id, id_text, ahead, kept)
                })
                .collect();
            let mut event_data = Some(std::mem::take(&mut item.event.data));
            let mut needing_data = plans
                .iter()
                .filter(|(plan, .., kept)| *kept && plan.refers_to_event_data())
                .count();
            let actions = plans
                .into_iter()
                .zip(stored)
                .map(|((mut plan, id, id_text, ahead, kept), packed_plan)| {
                    if kept {
                        // The writer runs a kept payload without its event:
                        // the last one that needs the event's data takes it,
                        // any other a copy (more than one is rare).
                        plan.resolve_event_data_with(|| {
                            needing_data -= 1;
                            match needing_data {
                                0 => event_data.take(),
                                _ => event_data.clone(),
                            }
                            .unwrap_or_default()
                        });
                    }
                    let planned = plan.is_planned();
                    let payload = match plan.outcome {
                        PlanOutcome::Planned { payload } if kept => Some(payload),
                        _ => None,
                    };
                    Ok(PreparedAction {
                        id,
                        id_text,
                        action_type: plan.action,
                        plan: packed_plan,
                        planned,
                        payload,
                        ahead,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(PreparedItem {
                event_id: item.event.id,
                received: ms(item.event.received_at),
                row,
                json,
                dedup: item.dedup.map(|scope| (dedup::scope_hash(&scope), scope)),
                actions,
            })
        })
        .collect()
}

/// The event a live key points to, as [`dedup::judge`] needs it; `None`
/// when it has none after all (the index's entries were another key's, or
/// the key's log row was pruned in this group).
fn existing_key(
    conn: &Connection,
    hash: i64,
    live: LiveKey,
) -> Result<Option<ExistingKey>, StoreError> {
    let (event_id, expires_ms) = match live {
        LiveKey::Staged(entry) => (entry.event_id.to_string(), entry.expires_ms),
        // The index keeps only part of the hash: each row it names is read
        // by its key, and the newest row with the whole hash is the live key.
        LiveKey::Indexed(rows) => {
            let mut stmt = conn.prepare_cached(
                "SELECT event_id, expires_at FROM dedup_log WHERE seq = ?1 AND hash = ?2",
            )?;
            let mut newest: Option<(i64, String, i64)> = None;
            for seq in rows {
                let row = stmt
                    .query_row(params![seq, hash], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()?;
                if let Some((id, expires_ms)) = row
                    && newest.as_ref().is_none_or(|(s, _, _)| seq > *s)
                {
                    newest = Some((seq, id, expires_ms));
                }
            }
            match newest {
                Some((_, id, expires_ms)) => (id, expires_ms),
                None => return Ok(None),
            }
        }
    };
    let scope = conn
        .prepare_cached(
            "SELECT environment, source, event_type, message_id FROM events WHERE id = ?1",
        )?
        .query_row([&event_id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            ))
        })
        .optional()?;
    let (planned, failed): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE status <> 'skipped'), count(*) FILTER (WHERE status = 'failed') \
             FROM actions WHERE event_id = ?1",
        )?
        .query_row([&event_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Some(ExistingKey {
        event_id,
        expires_at_ms: expires_ms,
        scope,
        planned,
        failed,
    }))
}

/// Appends items; all of a group's items commit together or not at all.
pub(super) fn append(
    conn: &Connection,
    items: Vec<PreparedItem>,
    batch: &mut Batch,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let now = ms(Utc::now());
    let mut stats = BatchStats::default();
    let mut keys: Vec<(i64, DedupEntry)> = Vec::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for mut item in items {
        stats.record(
            item.row.source.as_deref(),
            item.row.environment.as_deref(),
            item.row.event_type.as_deref(),
            item.received,
        );
        if let Some((hash, scope)) = &item.dedup {
            // This job's own earlier keys first, then the group's, then the index.
            let live = keys
                .iter()
                .rev()
                .find(|(h, _)| h == hash)
                .map(|(_, e)| LiveKey::Staged(*e))
                .or_else(|| batch.key(*hash));
            let existing = match live {
                Some(e) => existing_key(conn, *hash, e)?,
                None => None,
            };
            match dedup::judge(scope, item.received, existing.as_ref()) {
                Verdict::Duplicate(original) => {
                    item.row.status = EventStatus::Duplicate;
                    item.row.duplicate_of = Some(original.clone());
                    insert_event(conn, &item.row, item.json.as_ref())?;
                    outcomes.push(AppendOutcome::Duplicate {
                        event_id: item.event_id,
                        original_event_id: original
                            .parse()
                            .map_err(|e| StoreError::decode("dedup_log.event_id", e))?,
                    });
                    continue;
                }
                Verdict::Insert | Verdict::Replace => {
                    let expires_ms = dedup::expires_at(scope, item.received);
                    conn.prepare_cached(
                        "INSERT OR FAIL INTO dedup_log (hash, event_id, expires_at) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![hash, item.row.id, expires_ms])?;
                    keys.push((
                        *hash,
                        DedupEntry {
                            event_id: item.event_id,
                            expires_ms,
                            seq: conn.last_insert_rowid(),
                        },
                    ));
                }
                Verdict::Unchecked => {
                    tracing::warn!(event_id = %item.event_id, "Dedup hash collision; the event runs without dedup.");
                }
            }
        }
        insert_event(conn, &item.row, item.json.as_ref())?;
        let in_store = batch.runs_at_append(item.row.environment.as_deref().unwrap_or_default());
        let action_ids = item.actions.iter().map(|a| a.id).collect();
        let ran_local = insert_actions(
            conn,
            &item.row,
            item.json.as_ref(),
            item.actions,
            in_store.then_some(&*batch.dictionaries),
            item.received,
            now,
        )?;
        outcomes.push(AppendOutcome::Accepted {
            event_id: item.event_id,
            action_ids,
            ran_local,
        });
    }
    batch.stats.absorb(stats);
    batch.keys.extend(keys);
    Ok(outcomes)
}

/// Inserts the actions of the event in `row`: planned ones into the outbox,
/// or, with `in_store` (the dictionaries their records are packed with),
/// run through the `local` sink here, in order, each with its attempt (what
/// a worker round would do, without the outbox row, the round's select and
/// the second write of the action row).
fn insert_actions(
    conn: &Connection,
    row: &EventRow,
    event_json: Option<&PackedJson>,
    actions: Vec<PreparedAction>,
    in_store: Option<&Dictionaries>,
    run_at: i64,
    now: i64,
) -> Result<Vec<LocalRun>, StoreError> {
    let source = row.source.as_deref().unwrap_or_default();
    let environment = row.environment.as_deref().unwrap_or_default();
    let mut ran = Vec::new();
    for (position, mut a) in actions.into_iter().enumerate() {
        let outcome = match in_store {
            Some(dictionaries) if a.planned => {
                let (payload, plan) = (a.payload.take(), &a.plan);
                Some(local_run::apply_in_store(
                    conn,
                    environment,
                    &a.id_text,
                    a.ahead.take(),
                    // Decoded only when not kept (a replayed append) and needed.
                    || payload.map_or_else(|| payload_of_plan(plan, event_json), Ok),
                    now,
                    dictionaries,
                )?)
            }
            _ => None,
        };
        // An action run here has its one attempt in its own row (`summary`;
        // it started and finished at `now`): no attempts row, no index entry.
        let (status, attempts, last_error, summary) = match &outcome {
            Some(outcome) => {
                let (status, last_error) = attempt_status(outcome);
                let summary = truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES);
                (status, 1, last_error, Some(summary))
            }
            None if a.planned => (ActionStatus::Pending, 0, None, None),
            None => (ActionStatus::Skipped, 0, None, None),
        };
        conn.prepare_cached(
            "INSERT OR FAIL INTO actions (id, event_id, position, action_type, source, environment, \
             plan_json, status, attempts, last_error, created_at, updated_at, summary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
        )?
        .execute(params![
            a.id_text,
            row.id,
            i64::try_from(position).unwrap_or(i64::MAX),
            a.action_type.as_str(),
            source,
            environment,
            a.plan,
            status.as_str(),
            attempts,
            last_error,
            now,
            summary,
        ])?;
        match outcome {
            Some(outcome) => {
                ran.push(LocalRun {
                    id: a.id,
                    environment: environment.to_owned(),
                    outcome,
                });
            }
            None if a.planned => {
                conn.prepare_cached(
                    "INSERT OR FAIL INTO outbox (action_id, run_at) VALUES (?1, ?2)",
                )?
                .execute(params![a.id_text, run_at])?;
            }
            None => {}
        }
    }
    Ok(ran)
}

pub(super) fn record_rejected(
    conn: &Connection,
    request: &RejectedRequest,
    batch: &mut Batch,
) -> Result<EventId, StoreError> {
    let id = EventId::generate(request.received_at);
    let row = EventRow::for_rejected(id, request);
    insert_event(conn, &row, None)?;
    batch.stats.record(
        row.source.as_deref(),
        row.environment.as_deref(),
        None,
        row.received_at,
    );
    Ok(id)
}

/// A claimed action's stored columns; [`rows::claimed_action`] decodes them
/// after the commit, off the writer thread.
pub(super) struct ClaimedRow {
    pub(super) id: String,
    pub(super) event_id: String,
    pub(super) source: String,
    pub(super) environment: String,
    pub(super) plan: PackedJson,
    pub(super) event_json: Option<PackedJson>,
    pub(super) attempt: i64,
    pub(super) lease_expires_at: i64,
}

impl ClaimedRow {
    pub(super) fn decode(self) -> Result<ClaimedAction, StoreError> {
        rows::claimed_action(
            &self.id,
            &self.event_id,
            self.source,
            self.environment,
            &self.plan.unpack(PLAN_COLUMN)?,
            || unpack_event_json(self.event_json.as_ref()),
            self.attempt,
            self.lease_expires_at,
        )
    }
}

pub(super) fn finish_attempt(
    conn: &Connection,
    action: ActionId,
    owner: &str,
    outcome: &AttemptOutcome,
) -> Result<(), StoreError> {
    let now = ms(Utc::now());
    let id = action.to_string();
    let lease: Option<(Option<String>, i64, Option<i64>)> = conn
        .prepare_cached("SELECT lease_owner, attempt, claimed_at FROM outbox WHERE action_id = ?1")?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((Some(holder), attempt, claimed_at)) = lease else {
        return Err(StoreError::LeaseLost {
            action_id: id,
            owner: owner.to_owned(),
        });
    };
    if holder != owner {
        return Err(StoreError::LeaseLost {
            action_id: id,
            owner: owner.to_owned(),
        });
    }
    record_attempt(conn, &id, attempt, claimed_at.unwrap_or(now), now, outcome)
}

/// Writes attempt `attempt` of action `id` and its consequence for the
/// outbox and the action log.
pub(super) fn record_attempt(
    conn: &Connection,
    id: &str,
    attempt: i64,
    started: i64,
    now: i64,
    outcome: &AttemptOutcome,
) -> Result<(), StoreError> {
    insert_attempt(conn, id, attempt, started, now, outcome)?;
    let (status, last_error) = attempt_status(outcome);
    match outcome {
        AttemptOutcome::RetryAt { at, .. } => {
            conn.prepare_cached(
                "UPDATE outbox SET run_at = ?2, lease_owner = NULL, lease_expires_at = NULL, \
                 claimed_at = NULL WHERE action_id = ?1",
            )?
            .execute(params![id, ms(*at)])?;
        }
        AttemptOutcome::Succeeded { .. } | AttemptOutcome::Failed { .. } => {
            conn.prepare_cached("DELETE FROM outbox WHERE action_id = ?1")?
                .execute([&id])?;
        }
    }
    conn.prepare_cached(
        "UPDATE actions SET status = ?2, attempts = ?3, last_error = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), attempt, last_error, now])?;
    Ok(())
}

/// The attempts row of attempt `attempt` of action `id`.
fn insert_attempt(
    conn: &Connection,
    id: &str,
    attempt: i64,
    started: i64,
    now: i64,
    outcome: &AttemptOutcome,
) -> Result<(), StoreError> {
    let summary = truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES);
    conn.prepare_cached(
        "INSERT INTO attempts (action_id, attempt, started_at, finished_at, outcome, summary) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, attempt, started, now, outcome.name(), summary])?;
    Ok(())
}

/// The action's status after an attempt ended so, and its last error.
fn attempt_status(outcome: &AttemptOutcome) -> (ActionStatus, Option<String>) {
    match outcome {
        AttemptOutcome::Succeeded { .. } => (ActionStatus::Succeeded, None),
        AttemptOutcome::Failed { .. } => (
            ActionStatus::Failed,
            Some(truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES).to_owned()),
        ),
        AttemptOutcome::RetryAt { .. } => (
            ActionStatus::Pending,
            Some(truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES).to_owned()),
        ),
    }
}

/// A `local` sink action made ready off the writer thread: a payload that
/// reads nothing (a trigger, the common case) has its writes computed and
/// serialized here, so the writer only runs the statements.
pub(super) struct PreparedLocal {
    id: String,
    environment: String,
    payload: ActionPayload,
    writes: Option<Ahead>,
}

fn row_writes(writes: Vec<LocalWrite>) -> Vec<RowWrite> {
    writes
        .into_iter()
        .map(|w| match w {
            LocalWrite::Put(k, v) => RowWrite::Put(k, rows::data_json(&v)),
            LocalWrite::PutJson(k, json) => RowWrite::Put(k, json),
            LocalWrite::Delete(k) => RowWrite::Delete(k),
        })
        .collect()
}

/// The local writes of a payload that reads no record, computed ahead of
/// the writer; `None` for one that reads (its writes depend on the database
/// at run time). `event_data` is the event's `data`, for a payload that
/// refers to it. An error is a payload the local sink refuses.
fn writes_ahead(
    environment: &str,
    id: &str,
    payload: &ActionPayload,
    event_data: Option<local::EventData<'_>>,
) -> Result<Option<Ahead>, StoreError> {
    let reads = local::reads(environment, payload);
    if !reads.records.is_empty() || !reads.scopes.is_empty() {
        return Ok(None);
    }
    let writes = local::writes(environment, id, payload, event_data, &Loaded::default())?;
    // One user assumed: its absence is the only other outcome, so it is
    // computed here too, and the writer never needs the payload.
    let if_missing = match reads.users.as_slice() {
        [_] => {
            let none = Loaded {
                users: Known::Absent,
                ..Loaded::default()
            };
            let writes = local::writes(environment, id, payload, event_data, &none)?;
            Some((
                row_writes(writes),
                local::effect(environment, payload, &none),
            ))
        }
        _ => None,
    };
    Ok(Some(Ahead {
        writes: row_writes(writes),
        users: reads.users,
        if_missing,
    }))
}

/// True when every user the writes computed ahead assume exists does: one
/// indexed lookup each. When one does not, [`writes_now`] takes the other
/// outcome computed ahead, if there is one, or computes the writes again.
pub(super) fn ahead_holds(conn: &Connection, ahead: &Ahead) -> Result<bool, StoreError> {
    for key in &ahead.users {
        if !user_exists(conn, key)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn user_exists(conn: &Connection, key: &LocalKey) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM local_records WHERE kind = ?1 AND scope = ?2 AND id = ?3")?
        .query_row(params![key.kind.as_str(), key.scope, key.id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The writes to make for an action, with what they do: those computed
/// ahead when they still hold, their one user's absence computed ahead too
/// when it is missing, else computed now from what is stored.
pub(super) fn writes_now(
    conn: &Connection,
    environment: &str,
    id: &str,
    ahead: Option<Ahead>,
    payload: impl FnOnce() -> Result<ActionPayload, StoreError>,
) -> Result<(Vec<RowWrite>, LocalEffect), StoreError> {
    if let Some(ahead) = ahead {
        if ahead_holds(conn, &ahead)? {
            return Ok((ahead.writes, LocalEffect::Applied));
        }
        // `ahead_holds` read the one user it assumed, and it is missing.
        if let Some(missing) = ahead.if_missing {
            return Ok(missing);
        }
    }
    local_writes(conn, environment, id, &payload()?)
}

/// Prepares one action; an error here (a payload the local sink cannot
/// apply) belongs to that action alone.
pub(super) fn prepare_local(
    action: ActionId,
    environment: String,
    payload: ActionPayload,
) -> Result<PreparedLocal, StoreError> {
    let id = action.to_string();
    let writes = writes_ahead(&environment, &id, &payload, None)?;
    Ok(PreparedLocal {
        id,
        environment,
        payload,
        writes,
    })
}

pub(super) fn apply_local(
    conn: &Connection,
    action: PreparedLocal,
    dictionaries: &Dictionaries,
) -> Result<LocalEffect, StoreError> {
    let now = ms(Utc::now());
    let PreparedLocal {
        id,
        environment,
        payload,
        writes,
    } = action;
    // Every check comes before the first write: jobs run without a savepoint,
    // so an error after a write would fail the whole group.
    let applied = conn
        .prepare_cached("SELECT 1 FROM local_applied WHERE action_id = ?1")?
        .query_row([&id], |_| Ok(()))
        .optional()?;
    if applied.is_some() {
        return Ok(LocalEffect::AlreadyApplied);
    }
    let (writes, effect) = writes_now(conn, &environment, &id, writes, || Ok(payload))?;
    conn.prepare_cached("INSERT INTO local_applied (action_id, applied_at) VALUES (?1, ?2)")?
        .execute(params![id, now])?;
    write_local(conn, writes, now, dictionaries)?;
    Ok(effect)
}

/// What action `id` writes to the local recipients, read from the database
/// when the payload depends on what is there, and what that does. Writes nothing.
pub(super) fn local_writes(
    conn: &Connection,
    environment: &str,
    id: &str,
    payload: &ActionPayload,
) -> Result<(Vec<RowWrite>, LocalEffect), StoreError> {
    let loaded = load_local(conn, environment, payload)?;
    let writes = row_writes(local::writes(environment, id, payload, None, &loaded)?);
    Ok((writes, local::effect(environment, payload, &loaded)))
}

/// Makes `writes`, a record's data packed with `dictionaries` as an event's
/// JSON is. A workflow run holds its trigger's data, as large as the
/// event's, and is packed here rather than ahead: ahead, the run is computed
/// for a recipient that may turn out never identified, and packing it would
/// then be wasted.
pub(super) fn write_local(
    conn: &Connection,
    writes: Vec<RowWrite>,
    now: i64,
    dictionaries: &Dictionaries,
) -> Result<(), StoreError> {
    for w in writes {
        match w {
            RowWrite::Put(k, data) => {
                let data = PackedJson::pack(data, dictionaries);
                conn.prepare_cached(
                    "INSERT INTO local_records (kind, scope, id, data, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (kind, scope, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                )?
                .execute(params![k.kind.as_str(), k.scope, k.id, data, now])?;
            }
            RowWrite::Delete(k) => {
                conn.prepare_cached(
                    "DELETE FROM local_records WHERE kind = ?1 AND scope = ?2 AND id = ?3",
                )?
                .execute(params![k.kind.as_str(), k.scope, k.id])?;
            }
        }
    }
    Ok(())
}

/// Reads what `payload`'s writes depend on.
fn load_local(
    conn: &Connection,
    environment: &str,
    payload: &ActionPayload,
) -> Result<Loaded, StoreError> {
    let reads = local::reads(environment, payload);
    let mut loaded = Loaded::default();
    let mut users = HashSet::new();
    for key in reads.users {
        if user_exists(conn, &key)? {
            users.insert(key);
        }
    }
    loaded.users = Known::Read(users);
    for key in reads.records {
        let data: Option<StoredJson> = conn
            .prepare_cached(
                "SELECT data FROM local_records WHERE kind = ?1 AND scope = ?2 AND id = ?3",
            )?
            .query_row(params![key.kind.as_str(), key.scope, key.id], |r| r.get(0))
            .optional()?;
        if let Some(StoredJson(d)) = data {
            let v = serde_json::from_str(&d)
                .map_err(|e| StoreError::decode("local_records.data", e))?;
            loaded.records.insert(key, v);
        }
    }
    for (kind, scope) in reads.scopes {
        let rows: Vec<(String, StoredJson)> = conn
            .prepare_cached("SELECT id, data FROM local_records WHERE kind = ?1 AND scope = ?2")?
            .query_map(params![kind.as_str(), scope], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut parsed = Vec::with_capacity(rows.len());
        for (id, StoredJson(d)) in rows {
            parsed.push((
                id,
                serde_json::from_str(&d)
                    .map_err(|e| StoreError::decode("local_records.data", e))?,
            ));
        }
        loaded.scopes.insert((kind, scope), parsed);
    }
    Ok(loaded)
}

pub(super) fn forget_mapping_overrides(
    conn: &Connection,
    source: &str,
    mapping: Option<(&str, &str)>,
) -> Result<(), StoreError> {
    match mapping {
        Some((environment, mapping)) => conn
            .prepare_cached(
                "DELETE FROM mapping_overrides WHERE source = ?1 AND environment = ?2 AND mapping = ?3",
            )?
            .execute(params![source, environment, mapping])?,
        None => conn
            .prepare_cached("DELETE FROM mapping_overrides WHERE source = ?1")?
            .execute(params![source])?,
    };
    Ok(())
}

pub(super) fn set_mapping_active(
    conn: &Connection,
    source: &str,
    environment: &str,
    mapping: &str,
    active: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO mapping_overrides (source, environment, mapping, active, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (source, environment, mapping) \
         DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
    )?
    .execute(params![
        source,
        environment,
        mapping,
        active,
        ms(Utc::now())
    ])?;
    Ok(())
}

pub(super) fn prune(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    rows_per_batch: usize,
    batch: &mut Batch,
) -> Result<PruneReport, StoreError> {
    let limit = i64::try_from(rows_per_batch).unwrap_or(i64::MAX);
    let floor = id_floor(cutoff);
    // Oldest first by the sequential key: each batch deletes a contiguous range.
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM events WHERE id < ?1 ORDER BY id LIMIT ?2")?
        .query_map(params![floor, limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        conn.prepare_cached(
            "DELETE FROM attempts WHERE action_id IN (SELECT id FROM actions WHERE event_id = ?1)",
        )?
        .execute([id])?;
        conn.prepare_cached(
            "DELETE FROM outbox WHERE action_id IN (SELECT id FROM actions WHERE event_id = ?1)",
        )?
        .execute([id])?;
        conn.prepare_cached(
            "DELETE FROM local_applied WHERE action_id IN (SELECT id FROM actions WHERE event_id = ?1)",
        )?
        .execute([id])?;
        conn.prepare_cached("DELETE FROM actions WHERE event_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM events WHERE id = ?1")?
            .execute([id])?;
    }
    let pruned: Vec<(i64, i64)> = conn
        .prepare_cached(
            "DELETE FROM dedup_log WHERE seq IN \
             (SELECT seq FROM dedup_log WHERE expires_at <= ?1 LIMIT ?2) RETURNING hash, seq",
        )?
        .query_map(params![ms(now), limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let dedup_keys = pruned.len();
    batch.pruned_keys.extend(pruned);
    conn.prepare_cached("DELETE FROM source_stats WHERE day < ?1")?
        .execute([rows::day_of(ms(cutoff))])?;
    Ok(PruneReport {
        events: ids.len() as u64,
        dedup_keys: dedup_keys as u64,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tributary_core::{
        event::{Event, EventKind},
        plan::TriggerData,
    };

    use super::*;
    use crate::LocalKind;

    /// A [`PreparedAction`] as the journal's first format wrote it.
    #[derive(serde::Serialize)]
    struct WrittenFirstFormat {
        id: ActionId,
        id_text: String,
        action_type: ActionType,
        plan_json: String,
        planned: bool,
    }

    /// The trigger data [`prepared_with`] plans.
    #[derive(Clone, Copy, Debug)]
    enum Data {
        /// A reference to the event's (a mapping's default).
        OfEvent,
        /// A copy of the event's.
        Copied,
        /// A mapped object.
        Mapped,
    }

    /// One event with one trigger of `trigger` data, of an environment the
    /// store runs itself when `local`.
    fn prepared_with(trigger: Data, local: bool) -> Vec<PreparedItem> {
        prepared_for(trigger, local, &["u1"])
    }

    /// One event whose one plan triggers a workflow for users `recipients`.
    fn prepared_for(trigger: Data, local: bool, recipients: &[&str]) -> Vec<PreparedItem> {
        let now = Utc::now();
        let data = json!({"order_id": "ord-1", "note": "x".repeat(400)});
        let trigger_data = match trigger {
            Data::OfEvent => TriggerData::OfEvent,
            Data::Copied => data.clone().into(),
            Data::Mapped => json!({"mapped": data}).into(),
        };
        let event = Event {
            id: EventId::generate(now),
            environment: "production".into(),
            source: "web".into(),
            kind: EventKind::Track,
            event: "Order Completed".into(),
            user_id: Some("u1".into()),
            anonymous_id: None,
            data: data.clone(),
            timestamp: now,
            received_at: now,
            message_id: None,
            raw: json!({"type": "track", "properties": data}),
            headers: Default::default(),
            preprocess: None,
        };
        let plan = crate::test_items::trigger_plan(trigger_data, recipients);
        let item = AppendItem {
            event,
            plans: vec![plan],
            dedup: None,
            provenance: Default::default(),
        };
        let local = if local {
            vec!["production".to_owned()]
        } else {
            Vec::new()
        };
        prepare(vec![item], &local, &Dictionaries::none()).unwrap()
    }

    fn prepared() -> Vec<PreparedItem> {
        prepared_with(Data::Mapped, false)
    }

    /// The data of a trigger payload.
    fn data_of(payload: &ActionPayload) -> &Value {
        let ActionPayload::TriggerWorkflow { data, .. } = payload else {
            panic!("not a trigger: {payload:?}");
        };
        data.given().expect("the payload holds its data")
    }

    #[test]
    fn a_trigger_whose_data_is_the_events_stores_it_once() {
        for trigger in [Data::OfEvent, Data::Copied] {
            let items = prepared_with(trigger, false);
            let action = &items[0].actions[0];
            // Without the data the plan is short enough to stay uncompressed.
            let PackedJson::Text(text) = &action.plan else {
                panic!("the plan was compressed");
            };
            assert!(
                text.starts_with("{\"data_of_event\":true,"),
                "{trigger:?}: {text}"
            );
            assert!(!text.contains("ord-1"), "{text}");
            let payload = payload_of_plan(&action.plan, items[0].json.as_ref()).unwrap();
            let data = data_of(&payload);
            assert_eq!(data["order_id"], "ord-1");
            assert_eq!(data["note"].as_str().map(str::len), Some(400));
            // Without its event's JSON the plan is an error, not a guess.
            assert!(payload_of_plan(&action.plan, None).is_err());
        }

        // Mapped data is stored in the plan, as before.
        let items = prepared_with(Data::Mapped, false);
        let text = items[0].actions[0].plan.unpack(PLAN_COLUMN).unwrap();
        assert!(!text.contains("data_of_event") && text.contains("ord-1"));
        let payload = payload_of_plan(&items[0].actions[0].plan, None).unwrap();
        assert_eq!(data_of(&payload)["mapped"]["order_id"], "ord-1");
    }

    #[test]
    fn a_kept_payload_holds_its_events_data() {
        for trigger in [Data::OfEvent, Data::Copied, Data::Mapped] {
            // Two recipients: which of them exist is read by the writer, so
            // it may have to compute the writes itself.
            let items = prepared_for(trigger, true, &["u1", "u2"]);
            let action = &items[0].actions[0];
            assert!(!action.ahead.as_ref().unwrap().decides_every_case());
            let kept = action.payload.as_ref().expect("a local payload is kept");
            let data = data_of(kept);
            let order_id = match trigger {
                Data::Mapped => &data["mapped"]["order_id"],
                _ => &data["order_id"],
            };
            assert_eq!(order_id, "ord-1", "{trigger:?}");
            // And it is the payload the stored plan decodes to.
            let decoded = payload_of_plan(&action.plan, items[0].json.as_ref()).unwrap();
            assert_eq!(&decoded, kept, "{trigger:?}");
        }
    }

    #[test]
    fn a_trigger_for_one_user_is_decided_ahead_without_its_payload() {
        for trigger in [Data::OfEvent, Data::Copied, Data::Mapped] {
            let items = prepared_with(trigger, true);
            let action = &items[0].actions[0];
            assert!(
                action.payload.is_none(),
                "{trigger:?}: the payload was kept"
            );
            let ahead = action.ahead.as_ref().expect("writes computed ahead");
            assert!(ahead.decides_every_case());
            // The user exists: the run, with the trigger's data.
            let [RowWrite::Put(key, run)] = ahead.writes.as_slice() else {
                panic!("{trigger:?}: not one run");
            };
            assert_eq!(key.kind, LocalKind::WorkflowRun);
            assert!(run.contains("ord-1"), "{trigger:?}: {run}");
            // It does not: no run, and the effect names the recipient.
            let (writes, effect) = ahead.if_missing.as_ref().unwrap();
            assert!(writes.is_empty(), "{trigger:?}");
            assert_eq!(
                effect,
                &LocalEffect::AppliedSkipping {
                    unknown_recipients: vec!["u1".to_owned()],
                    run: false,
                }
            );
        }
    }

    fn plans(items: &[PreparedItem]) -> Vec<String> {
        items
            .iter()
            .flat_map(|i| &i.actions)
            .map(|a| a.plan.unpack(PLAN_COLUMN).unwrap())
            .collect()
    }

    #[test]
    fn a_journal_record_reads_back_in_this_format_and_the_first() {
        let items = prepared();
        assert!(matches!(items[0].actions[0].plan, PackedJson::Zstd(_)));
        let record = journal_record(&items).unwrap();
        let back = items_of_record(&record).unwrap();
        assert_eq!(back[0].event_id, items[0].event_id);
        assert_eq!(plans(&back), plans(&items));

        // What an earlier build left in the journal before a crash.
        let first: Vec<PreparedItem<WrittenFirstFormat>> = items
            .iter()
            .map(|i| PreparedItem {
                event_id: i.event_id,
                received: i.received,
                row: clone_row(&i.row),
                json: i
                    .json
                    .as_ref()
                    .map(|j| PackedJson::Text(j.unpack("json").unwrap())),
                dedup: None,
                actions: i
                    .actions
                    .iter()
                    .map(|a| WrittenFirstFormat {
                        id: a.id,
                        id_text: a.id_text.clone(),
                        action_type: a.action_type,
                        plan_json: a.plan.unpack(PLAN_COLUMN).unwrap(),
                        planned: a.planned,
                    })
                    .collect(),
            })
            .collect();
        let record = postcard::to_stdvec(&first).unwrap();
        assert_ne!(record[0], RECORD_MARK[0]);
        let back = items_of_record(&record).unwrap();
        assert_eq!(back[0].event_id, items[0].event_id);
        assert_eq!(back[0].actions[0].id, items[0].actions[0].id);
        assert_eq!(plans(&back), plans(&items));
    }

    fn clone_row(row: &EventRow) -> EventRow {
        postcard::from_bytes(&postcard::to_stdvec(row).unwrap()).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn any_record_reads_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = items_of_record(&bytes);
        }
    }
}
