//! PostgreSQL group commit for appends.
//!
//! Appends queue on a bounded channel; a few committer tasks each take what
//! is waiting and write it in one transaction with one statement per table
//! (`INSERT ... SELECT FROM unnest(arrays)`), so a group of hundreds of events
//! costs a handful of round trips and one WAL flush: two when nothing needs
//! reading between them, since `BEGIN` goes out with the first statements
//! and `COMMIT` with the last ([`OpenTransaction`]).
//!
//! The actions of the environments the store runs itself
//! ([`crate::LocalExecution::InStore`]) run in that same transaction: their
//! effect, their one attempt and their action row (written once, already
//! with its outcome) commit together, with no outbox row, no claim and no
//! separate attempt record (docs/store.md, "Local actions run inside the
//! store").

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicBool, Ordering},
};

use chrono::Utc;
use deadpool_postgres::{GenericClient, Object, Pool};
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{error, warn};
use tributary_core::plan::PlanOutcome;

use crate::{
    ActionId, ActionStatus, AppendItem, AppendOutcome, AttemptOutcome, EventStatus, LocalExecution,
    LocalRun, StoreError,
    dedup::{self, ExistingKey, Verdict},
    local::LocalKey,
    model::{ATTEMPT_SUMMARY_BYTES, ms, truncate},
    rows::{self, EventRow, SharedHeaders},
    stats::BatchStats,
};

use super::local_apply::{self, LocalItem};

pub(super) struct AppendJob {
    pub(super) items: Vec<AppendItem>,
    pub(super) reply: oneshot::Sender<Result<Vec<AppendOutcome>, StoreError>>,
}

pub(super) type Queue = std::sync::Arc<Mutex<mpsc::Receiver<AppendJob>>>;

/// The environments whose actions the appends run, and whether the outbox
/// may still hold older actions of theirs (left by a run with other
/// settings). While it may, their new actions queue behind those through
/// the outbox, so a newer identify is never overwritten by an older one.
pub(super) struct RunAtAppend {
    /// Sorted.
    environments: Vec<String>,
    backlog: AtomicBool,
}

impl RunAtAppend {
    pub(super) async fn new(pool: &Pool, local: &LocalExecution) -> Result<Self, StoreError> {
        let mut environments = local.in_store().to_vec();
        environments.sort_unstable();
        let run = Self {
            environments,
            backlog: AtomicBool::new(true),
        };
        if !run.environments.is_empty() {
            let mut client = super::checkout(pool).await?;
            let tx = client.transaction().await?;
            run.check_backlog(&tx).await?;
        }
        Ok(run)
    }

    fn covers(&self, environment: &str) -> bool {
        self.environments
            .binary_search_by(|e| e.as_str().cmp(environment))
            .is_ok()
    }

    /// Whether this group runs its actions of [`Self::environments`]: once
    /// a check has found no older ones in the outbox, always. The check is
    /// repeated only while some were found, so a store that runs them
    /// asks once, at connect.
    async fn runs_now(&self, tx: &impl GenericClient) -> Result<bool, StoreError> {
        if self.environments.is_empty() {
            return Ok(false);
        }
        if !self.backlog.load(Ordering::Acquire) {
            return Ok(true);
        }
        Ok(!self.check_backlog(tx).await?)
    }

    async fn check_backlog(&self, tx: &impl GenericClient) -> Result<bool, StoreError> {
        let waiting: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM outbox o JOIN actions a ON a.id = o.action_id \
                 WHERE a.environment = ANY($1::text[]))",
                &[&self.environments],
            )
            .await?
            .get(0);
        if waiting {
            tracing::info!(
                "The outbox holds local actions; new ones queue behind them until the workers have run them."
            );
        }
        self.backlog.store(waiting, Ordering::Release);
        Ok(waiting)
    }
}

/// One committer: takes a group from the queue, commits it, answers, repeats.
/// Its groups add to the counters' `shard`, which no other committer of
/// this process writes.
pub(super) async fn committer(
    pool: Pool,
    queue: Queue,
    max_batch: usize,
    run: std::sync::Arc<RunAtAppend>,
    shard: i16,
) {
    loop {
        let jobs = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut n = first.items.len();
            let mut jobs = vec![first];
            while n < max_batch {
                match rx.try_recv() {
                    Ok(j) => {
                        n += j.items.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let items: Vec<&AppendItem> = jobs.iter().flat_map(|j| j.items.iter()).collect();
        let mut result = commit_with_retry(&pool, &items, &run, shard).await;
        drop(items);
        // A group refused for its content (not a fault of the connection) is
        // split, so one bad request cannot fail the requests batched with it.
        if matches!(result, Err(StoreError::Database(_))) && jobs.len() > 1 {
            for job in jobs {
                let items: Vec<&AppendItem> = job.items.iter().collect();
                let r = commit_with_retry(&pool, &items, &run, shard).await;
                drop(items);
                let _ = job.reply.send(r);
            }
            continue;
        }
        match &mut result {
            Ok(outcomes) => {
                metrics::histogram!("tributary_store_commit_batch_size", "backend" => "postgres")
                    .record(jobs.len() as f64);
                let mut rest = std::mem::take(outcomes).into_iter();
                for job in jobs {
                    let mine: Vec<AppendOutcome> = rest.by_ref().take(job.items.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                error!(error = %e, jobs = jobs.len(), "PostgreSQL group commit failed; nothing in it was stored.");
                for job in jobs {
                    let _ = job.reply.send(Err(e.replicate()));
                }
            }
        }
    }
}

async fn commit_with_retry(
    pool: &Pool,
    items: &[&AppendItem],
    run: &RunAtAppend,
    shard: i16,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let open = OpenTransaction::new(super::checkout(pool).await?);
        let attempt = commit_group(open.client(), items, run, shard).await;
        if attempt.is_ok() {
            open.committed();
        }
        match attempt {
            Err(StoreError::Conflict(_)) if tries < 4 => {
                warn!(
                    tries,
                    "PostgreSQL group commit hit a deadlock or serialization failure; retrying."
                );
            }
            other => return other,
        }
    }
}

/// A pooled connection running a group's transaction by hand, so that its
/// `BEGIN` goes out with the group's first statements and its `COMMIT` with
/// the last ones (deadpool's `Transaction` waits for each on its own round
/// trip). Dropped without [`Self::committed`] (an error, or a group whose
/// future was dropped), the connection leaves the pool and closes: its
/// transaction may still be open, and PostgreSQL rolls back a transaction
/// whose connection ends.
pub(super) struct OpenTransaction(Option<Object>);

impl OpenTransaction {
    pub(super) fn new(client: Object) -> Self {
        Self(Some(client))
    }

    pub(super) fn client(&self) -> &Object {
        self.0.as_ref().expect("held until dropped")
    }

    /// The `COMMIT` returned: the connection goes back to the pool.
    pub(super) fn committed(mut self) {
        drop(self.0.take());
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

enum Decision {
    Accept,
    Duplicate(String),
}

/// Runs a group's transaction on `tx`, from its `BEGIN` to its `COMMIT`;
/// `Ok` only once the `COMMIT` returned. `shard`: the counter rows this
/// group adds to (its committer's own).
async fn commit_group(
    tx: &Object,
    items: &[&AppendItem],
    run: &RunAtAppend,
    shard: i16,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let now = ms(Utc::now());
    let mut decisions: Vec<Option<Decision>> = items.iter().map(|_| None).collect();

    // 1. Dedup. The first item of a hash in this group is its leader; later
    // ones repeat the leader. Leaders are written in hash order so concurrent
    // groups (in this process or another) take row locks in the same order.
    let mut leaders: HashMap<i64, usize> = HashMap::new();
    let mut followers: Vec<(usize, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(scope) = &item.dedup {
            let h = dedup::scope_hash(scope);
            match leaders.get(&h) {
                Some(&leader) => followers.push((i, leader)),
                None => {
                    leaders.insert(h, i);
                }
            }
        } else {
            decisions[i] = Some(Decision::Accept);
        }
    }
    let mut ordered: Vec<(i64, usize)> = leaders.iter().map(|(h, i)| (*h, *i)).collect();
    ordered.sort_unstable();
    let hashes: Vec<i64> = ordered.iter().map(|(h, _)| *h).collect();
    let ids: Vec<String> = ordered
        .iter()
        .map(|(_, i)| items[*i].event.id.to_string())
        .collect();
    let expires: Vec<i64> = ordered
        .iter()
        .map(|(_, i)| {
            let it = items[*i];
            dedup::expires_at(
                it.dedup.as_ref().expect("leaders have a scope"),
                ms(it.event.received_at),
            )
        })
        .collect();
    let begin = async { Ok::<_, StoreError>(tx.batch_execute("BEGIN").await?) };
    let first = async {
        let runs_now = run.runs_now(tx).await?;
        // A group whose local actions are all triggers reads which recipients
        // exist with no lock (see `local_apply::apply_at_append`), so that read
        // goes with the dedup keys' insert, one round trip for both. It covers
        // the events the dedup keys will turn into duplicates too: a few users
        // read for nothing.
        let trigger_users = if runs_now {
            local_apply::users_read_by_triggers(items.iter().flat_map(|item| {
                let environment = item.event.environment.as_str();
                let covered = run.covers(environment);
                item.plans
                    .iter()
                    .filter_map(move |plan| match &plan.outcome {
                        PlanOutcome::Planned { payload } if covered => Some((environment, payload)),
                        _ => None,
                    })
            }))
        } else {
            None
        };
        let read_users = async {
            match &trigger_users {
                Some(keys) => local_apply::stored_users(tx, keys.iter()).await.map(Some),
                None => Ok(None),
            }
        };
        // ON CONFLICT DO NOTHING waits for a concurrent transaction inserting
        // the same key and then reports the conflict: the unique index is what
        // makes "accepted once" hold across processes.
        let insert = async {
            if hashes.is_empty() {
                return Ok(Vec::new());
            }
            super::query_cached(
                tx,
                "INSERT INTO dedup (hash, event_id, expires_at) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) \
                 ON CONFLICT (hash) DO NOTHING RETURNING hash",
                &[&hashes, &ids, &expires],
            )
            .await
        };
        let (inserted, read_ahead) = tokio::try_join!(insert, read_users)?;
        Ok((runs_now, inserted, read_ahead))
    };
    // `biased`: `BEGIN` is polled first, so it is sent before any statement.
    let ((), (runs_now, inserted, read_ahead)) = tokio::try_join!(biased; begin, first)?;
    if !ordered.is_empty() {
        let inserted: HashSet<i64> = inserted.iter().map(|r| r.get::<_, i64>(0)).collect();
        let taken: Vec<i64> = hashes
            .iter()
            .copied()
            .filter(|h| !inserted.contains(h))
            .collect();
        let mut existing: HashMap<i64, ExistingKey> = HashMap::new();
        if !taken.is_empty() {
            for r in super::query_cached(
                tx,
                "SELECT d.hash, d.event_id, d.expires_at, e.environment, e.source, e.event_type, e.message_id, \
                   (SELECT count(*) FROM actions a WHERE a.event_id = d.event_id AND a.status <> 'skipped'), \
                   (SELECT count(*) FROM actions a WHERE a.event_id = d.event_id AND a.status = 'failed') \
                 FROM dedup d LEFT JOIN events e ON e.id = d.event_id \
                 WHERE d.hash = ANY($1) ORDER BY d.hash FOR UPDATE OF d",
                &[&taken],
            )
            .await?
            {
                let env: Option<String> = r.get(3);
                existing.insert(
                    r.get(0),
                    ExistingKey {
                        event_id: r.get(1),
                        expires_at_ms: r.get(2),
                        scope: env.map(|env| {
                            (
                                env,
                                r.get::<_, Option<String>>(4).unwrap_or_default(),
                                r.get::<_, Option<String>>(5).unwrap_or_default(),
                                r.get::<_, Option<String>>(6).unwrap_or_default(),
                            )
                        }),
                        planned: r.get(7),
                        failed: r.get(8),
                    },
                );
            }
        }
        let (mut rh, mut ri, mut re) = (Vec::new(), Vec::new(), Vec::new());
        for (k, (h, i)) in ordered.iter().enumerate() {
            if inserted.contains(h) {
                decisions[*i] = Some(Decision::Accept);
                continue;
            }
            let it = items[*i];
            let scope = it.dedup.as_ref().expect("leaders have a scope");
            // A row that vanished between the insert and the select (pruned) is re-taken.
            let verdict = match existing.get(h) {
                Some(found) => dedup::judge(scope, ms(it.event.received_at), Some(found)),
                None => Verdict::Replace,
            };
            decisions[*i] = Some(match verdict {
                Verdict::Duplicate(original) => Decision::Duplicate(original),
                Verdict::Insert | Verdict::Replace => {
                    rh.push(*h);
                    ri.push(ids[k].clone());
                    re.push(expires[k]);
                    Decision::Accept
                }
                Verdict::Unchecked => {
                    warn!(event_id = %it.event.id, "Dedup hash collision; the event runs without dedup.");
                    Decision::Accept
                }
            });
        }
        if !rh.is_empty() {
            super::execute_cached(
                tx,
                "INSERT INTO dedup (hash, event_id, expires_at) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) \
                 ON CONFLICT (hash) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at",
                &[&rh, &ri, &re],
            )
            .await?;
        }
    }
    for (i, leader) in followers {
        let same = items[i]
            .dedup
            .as_ref()
            .map(|d| (&d.key, &d.event_type, &d.source, &d.environment))
            == items[leader]
                .dedup
                .as_ref()
                .map(|d| (&d.key, &d.event_type, &d.source, &d.environment));
        decisions[i] = Some(match (&decisions[leader], same) {
            (Some(Decision::Accept), true) => {
                Decision::Duplicate(items[leader].event.id.to_string())
            }
            (Some(Decision::Duplicate(original)), true) => Decision::Duplicate(original.clone()),
            _ => Decision::Accept,
        });
    }

    // 2. Rows, one statement per table.
    let mut ev = EventColumns::default();
    let mut ac = ActionColumns::default();
    let mut stats = BatchStats::default();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut shared = SharedHeaders::default();
    let mut local: Vec<Local<'_>> = Vec::new();
    for (item, decision) in items.iter().zip(decisions) {
        let e = &item.event;
        let headers_of = shared.holder(item);
        let received = ms(e.received_at);
        stats.record(
            Some(&rows::clean(&e.source)),
            Some(&rows::clean(&e.environment)),
            Some(&rows::clean(&e.event)),
            received,
        );
        match decision.unwrap_or(Decision::Accept) {
            Decision::Duplicate(original) => {
                ev.push(EventRow::for_event(
                    item,
                    EventStatus::Duplicate,
                    Some(original.clone()),
                    headers_of.as_ref(),
                    None,
                )?);
                outcomes.push(AppendOutcome::Duplicate {
                    event_id: e.id,
                    original_event_id: original
                        .parse()
                        .map_err(|err| StoreError::decode("dedup.event_id", err))?,
                });
            }
            Decision::Accept => {
                ev.push(EventRow::for_event(
                    item,
                    EventStatus::Accepted,
                    None,
                    headers_of.as_ref(),
                    None,
                )?);
                let mut action_ids = Vec::with_capacity(item.plans.len());
                let here = runs_now && run.covers(&e.environment);
                for (position, plan) in item.plans.iter().enumerate() {
                    let id = ActionId::generate(e.id);
                    let status = if plan.is_planned() {
                        ActionStatus::Pending
                    } else {
                        ActionStatus::Skipped
                    };
                    if let (true, PlanOutcome::Planned { payload }) = (here, &plan.outcome) {
                        local.push(Local {
                            column: ac.id.len(),
                            outcome: outcomes.len(),
                            id,
                            environment: &e.environment,
                            payload,
                            event_data: &e.data,
                        });
                    } else if plan.is_planned() {
                        ac.outbox_id.push(id.to_string());
                        ac.outbox_run_at.push(received);
                    }
                    ac.id.push(id.to_string());
                    ac.event_id.push(e.id.to_string());
                    ac.position
                        .push(i64::try_from(position).unwrap_or(i64::MAX));
                    ac.action_type.push(plan.action.as_str().to_owned());
                    ac.source.push(e.source.clone());
                    ac.environment.push(e.environment.clone());
                    ac.plan_json.push(rows::plan_json(plan, &e.data)?);
                    ac.status.push(status.as_str().to_owned());
                    ac.attempts.push(0);
                    ac.last_error.push(None);
                    ac.summary.push(None);
                    ac.created_at.push(now);
                    action_ids.push(id);
                }
                outcomes.push(AppendOutcome::Accepted {
                    event_id: e.id,
                    action_ids,
                    ran_local: Vec::new(),
                });
            }
        }
    }
    // The local actions run first: what they read is read before any of the
    // group's rows are sent. Their last writes go with the rows below. A
    // group that must take the local lock holds it through one more round
    // trip (the rows) and the commit.
    let mut effects = run_local(tx, &local, read_ahead, &mut ac, &mut outcomes).await?;
    // The rows go in one round trip with the `COMMIT`: tokio-postgres sends
    // a request when its future is first polled, and the server runs them in
    // that order. A statement not yet prepared on this connection would be
    // sent only after its prepare's round trip, so after the `COMMIT`, in a
    // transaction of its own: every statement of the round is prepared first.
    prepare_last_round(tx).await?;
    let events = async {
        super::execute_cached(
            tx,
            INSERT_EVENTS,
            &[
                &ev.id,
                &ev.received_at,
                &ev.source,
                &ev.environment,
                &ev.event_type,
                &ev.user_id,
                &ev.message_id,
                &ev.status,
                &ev.duplicate_of,
                &ev.error,
                &ev.body_excerpt,
                &ev.event_json,
            ],
        )
        .await
    };
    let actions = async {
        if ac.id.is_empty() {
            return Ok(0);
        }
        super::execute_cached(
            tx,
            INSERT_ACTIONS,
            &[
                &ac.id,
                &ac.event_id,
                &ac.position,
                &ac.action_type,
                &ac.source,
                &ac.environment,
                &ac.plan_json,
                &ac.status,
                &ac.attempts,
                &ac.last_error,
                &ac.created_at,
                &ac.summary,
            ],
        )
        .await
    };
    let outbox = async {
        if ac.outbox_id.is_empty() {
            return Ok(0);
        }
        super::execute_cached(tx, INSERT_OUTBOX, &[&ac.outbox_id, &ac.outbox_run_at]).await
    };
    // Last, so the hot counter rows are locked only until the commit.
    let stats = super::ops::flush_stats(tx, &stats, shard);
    let effects = effects.send(tx);
    let commit = async { Ok::<_, StoreError>(tx.batch_execute("COMMIT").await?) };
    // `biased`: polled in this order, so the `COMMIT` is sent last. A
    // statement that fails leaves the transaction aborted, and PostgreSQL
    // answers that `COMMIT` with a rollback; its error is polled first.
    tokio::try_join!(biased; events, actions, outbox, effects, stats, commit)?;
    Ok(outcomes)
}

/// Prepares, on a connection that has not yet, every statement the last
/// round of [`commit_group`] may send.
async fn prepare_last_round(tx: &Object) -> Result<(), StoreError> {
    let statements = [INSERT_EVENTS, INSERT_ACTIONS, INSERT_OUTBOX]
        .into_iter()
        .chain(local_apply::LAST_ROUND_STATEMENTS)
        .chain(super::ops::STATS_STATEMENTS);
    for sql in statements {
        tx.prepare_cached(sql).await?;
    }
    Ok(())
}

const INSERT_EVENTS: &str = "INSERT INTO events (id, received_at, source, environment, event_type, \
       user_id, message_id, status, duplicate_of, error, body_excerpt, event_json) \
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])";

/// An action run at append keeps its one attempt (started and finished at
/// `created_at`) in its own row, `summary`; the others' is NULL.
const INSERT_ACTIONS: &str = "INSERT INTO actions (id, event_id, position, action_type, source, \
       environment, plan_json, status, attempts, last_error, created_at, updated_at, summary) \
     SELECT u.id, u.event_id, u.position, u.action_type, u.source, u.environment, u.plan_json, \
       u.status, u.attempts, u.last_error, u.created_at, u.created_at, u.summary \
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
       $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[], $12::text[]) \
       AS u(id, event_id, position, action_type, source, environment, plan_json, status, \
         attempts, last_error, created_at, summary)";

const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (action_id, run_at) SELECT * FROM unnest($1::text[], $2::bigint[])";

/// An action this append runs itself.
struct Local<'a> {
    /// Its index in [`ActionColumns`].
    column: usize,
    /// Its event's index in the outcomes.
    outcome: usize,
    id: ActionId,
    environment: &'a str,
    payload: &'a tributary_core::plan::ActionPayload,
    event_data: &'a serde_json::Value,
}

/// Runs `local` in order inside `tx` and sets each action's row to its
/// outcome. An action the `local` sink cannot apply (a payload it refuses,
/// a stored record it cannot read) fails alone, for good, as it would
/// through the sink; a database error ends the append. `read_ahead`: which
/// of the triggers' recipients exist, when read with the dedup keys. Their
/// last writes are returned unsent, for the caller to send with the rows.
async fn run_local(
    tx: &impl GenericClient,
    local: &[Local<'_>],
    read_ahead: Option<HashSet<LocalKey>>,
    ac: &mut ActionColumns,
    outcomes: &mut [AppendOutcome],
) -> Result<local_apply::Unsent, StoreError> {
    if local.is_empty() {
        return Ok(local_apply::Unsent::default());
    }
    let items: Vec<LocalItem<'_>> = local
        .iter()
        .map(|l| LocalItem {
            id: &ac.id[l.column],
            environment: l.environment,
            payload: l.payload,
            event_data: Some(l.event_data),
        })
        .collect();
    let (results, unsent) = local_apply::apply_at_append(tx, &items, read_ahead).await?;
    drop(items);
    for (l, result) in local.iter().zip(results) {
        let outcome = match result {
            Ok(effect) => AttemptOutcome::Succeeded {
                summary: effect.summary(),
            },
            Err(e) => AttemptOutcome::Failed {
                summary: e.to_string(),
            },
        };
        let summary = truncate(outcome.summary(), ATTEMPT_SUMMARY_BYTES);
        let (status, last_error, _) = super::ops::attempt_effect(&outcome, summary);
        ac.status[l.column] = status.as_str().to_owned();
        ac.attempts[l.column] = 1;
        ac.last_error[l.column] = last_error.map(str::to_owned);
        ac.summary[l.column] = Some(summary.to_owned());
        if let Some(AppendOutcome::Accepted { ran_local, .. }) = outcomes.get_mut(l.outcome) {
            ran_local.push(LocalRun {
                id: l.id,
                environment: l.environment.to_owned(),
                outcome,
            });
        }
    }
    Ok(unsent)
}

#[derive(Default)]
pub(super) struct EventColumns {
    id: Vec<String>,
    received_at: Vec<i64>,
    source: Vec<Option<String>>,
    environment: Vec<Option<String>>,
    event_type: Vec<Option<String>>,
    user_id: Vec<Option<String>>,
    message_id: Vec<Option<String>>,
    status: Vec<String>,
    duplicate_of: Vec<Option<String>>,
    error: Vec<Option<String>>,
    body_excerpt: Vec<Option<String>>,
    event_json: Vec<Option<String>>,
}

impl EventColumns {
    fn push(&mut self, r: EventRow) {
        self.id.push(r.id);
        self.received_at.push(r.received_at);
        self.source.push(r.source);
        self.environment.push(r.environment);
        self.event_type.push(r.event_type);
        self.user_id.push(r.user_id);
        self.message_id.push(r.message_id);
        self.status.push(r.status.as_str().to_owned());
        self.duplicate_of.push(r.duplicate_of);
        self.error.push(r.error);
        self.body_excerpt.push(r.body_excerpt);
        self.event_json.push(r.event_json);
    }
}

#[derive(Default)]
struct ActionColumns {
    id: Vec<String>,
    event_id: Vec<String>,
    position: Vec<i64>,
    action_type: Vec<String>,
    source: Vec<String>,
    environment: Vec<String>,
    plan_json: Vec<String>,
    status: Vec<String>,
    attempts: Vec<i64>,
    last_error: Vec<Option<String>>,
    created_at: Vec<i64>,
    summary: Vec<Option<String>>,
    outbox_id: Vec<String>,
    outbox_run_at: Vec<i64>,
}
