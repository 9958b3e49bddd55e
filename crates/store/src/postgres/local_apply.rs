//! The `local` sink's effects on PostgreSQL: applied in order, in one
//! transaction, with the writes of consecutive actions that read nothing
//! (triggers, the common case) sent as one statement per table instead of
//! one per action. Used by the sink ([`apply_local_many`]) and by the
//! append, which runs the actions of the environments the store runs
//! itself in its own transaction ([`apply_at_append`]).

use std::collections::{HashMap, HashSet, hash_map::Entry};

use chrono::Utc;
use deadpool_postgres::{GenericClient, Pool};
use tributary_core::plan::ActionPayload;

use crate::{
    LocalApply, LocalEffect, LocalKind, StoreError,
    local::{self, Loaded, LocalKey, LocalWrite},
    model::ms,
    rows,
};

/// Serializes local applies that read before they write (an identify's
/// merge) across processes.
pub(super) const LOCAL_LOCK: i64 = 0x7472_6962_6c6f_6361;

/// Applies local-sink actions in one transaction under the advisory lock,
/// in order, so each sees the writes of those before it. A refused item (a
/// missing audience, bad input) writes nothing and the others go on, as in
/// the SQLite writer; a database error fails the call and nothing is applied.
pub(super) async fn apply_local_many(
    pool: &Pool,
    items: &[LocalApply],
) -> Result<Vec<Result<LocalEffect, StoreError>>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = super::checkout(pool).await?;
    let tx = client.transaction().await?;
    // Like finish_attempts, the commit does not wait for its WAL flush: the
    // WAL is sequential, so a crash that loses these effects also loses the
    // attempt records written after them, and the actions run again (the
    // local sink applies an action id once).
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    let ids: Vec<String> = items.iter().map(|i| i.action.to_string()).collect();
    let items: Vec<LocalItem<'_>> = items
        .iter()
        .zip(&ids)
        .map(|(i, id)| LocalItem {
            id,
            environment: &i.environment,
            payload: &i.payload,
            event_data: None,
        })
        .collect();
    let (results, mut unsent) = apply_in_order(&tx, &items, Lock::Take, Marked::Yes, None).await?;
    unsent.send(&tx).await?;
    let results = results
        .into_iter()
        .map(crate::error::item_result)
        .collect::<Result<_, _>>()?;
    tx.commit().await?;
    Ok(results)
}

/// Applies, inside an append's transaction, the actions it runs itself:
/// each is new (no outbox row, no earlier apply), so nothing marks it
/// applied; its effect commits with the action row or not at all.
/// The advisory lock is taken only when some item reads what another
/// transaction may be writing: a trigger only reads whether its recipients
/// exist and writes a run keyed by its own id, so a group of triggers runs
/// beside other groups, in this process and in other replicas. A trigger
/// racing an identify of the same user in another group is two concurrent
/// requests, and either order is one the client could have seen.
/// Results as [`apply_local_many`]'s, inner errors being the item's, and
/// the last writes, which the caller sends with the append's own rows
/// (one round trip fewer) before it commits.
pub(super) async fn apply_at_append(
    tx: &impl GenericClient,
    items: &[LocalItem<'_>],
    read_ahead: Option<HashSet<LocalKey>>,
) -> Result<(Vec<Result<LocalEffect, StoreError>>, Unsent), StoreError> {
    if items.is_empty() {
        return Ok((Vec::new(), Unsent::default()));
    }
    let lock = if items
        .iter()
        .all(|i| matches!(i.payload, ActionPayload::TriggerWorkflow { .. }))
    {
        Lock::Skip
    } else {
        Lock::Take
    };
    // Users read before the call are good only for a call that takes no
    // lock: any other reads them under it.
    let read_ahead = read_ahead.filter(|_| lock == Lock::Skip);
    apply_in_order(tx, items, lock, Marked::No, read_ahead).await
}

/// The users that `actions` (environment, payload) read, when every one of
/// them is a trigger (which [`apply_at_append`] runs with no lock), for
/// [`stored_users`] to read ahead; `None` when any is not.
pub(super) fn users_read_by_triggers<'a>(
    actions: impl Iterator<Item = (&'a str, &'a ActionPayload)>,
) -> Option<Vec<LocalKey>> {
    let mut users = Vec::new();
    for (environment, payload) in actions {
        if !matches!(payload, ActionPayload::TriggerWorkflow { .. }) {
            return None;
        }
        users.extend(local::reads(environment, payload).users);
    }
    Some(users)
}

/// One action to apply.
pub(super) struct LocalItem<'a> {
    pub(super) id: &'a str,
    pub(super) environment: &'a str,
    pub(super) payload: &'a ActionPayload,
    /// Its event's `data`, for a trigger that refers to it; `None` for a
    /// payload read back from the store (which holds its data).
    pub(super) event_data: Option<&'a serde_json::Value>,
}

/// Whether to take [`LOCAL_LOCK`] before reading.
#[derive(Clone, Copy, PartialEq)]
enum Lock {
    Take,
    /// Only triggers: none needed (see [`apply_at_append`]).
    Skip,
}

/// Whether the items may have been applied before (leased actions, which a
/// crashed worker may have applied) and so are checked and marked in
/// `local_applied`.
#[derive(Clone, Copy, Default, PartialEq)]
enum Marked {
    #[default]
    Yes,
    No,
}

/// Applies `items` (at least one) in order inside `tx`.
/// One result per item: `Err` when the item itself cannot apply (refused, or
/// a stored record it reads is unreadable), having written nothing. The
/// outer error is the database's: the transaction cannot go on. The writes
/// after the last read are returned unsent: nothing in this call reads
/// them, so the caller may send them with its own statements.
async fn apply_in_order(
    tx: &impl GenericClient,
    items: &[LocalItem<'_>],
    lock: Lock,
    marked: Marked,
    read_ahead: Option<HashSet<LocalKey>>,
) -> Result<(Vec<Result<LocalEffect, StoreError>>, Unsent), StoreError> {
    if lock == Lock::Take {
        super::execute_cached(tx, "SELECT pg_advisory_xact_lock($1)", &[&LOCAL_LOCK]).await?;
    }
    let now = ms(Utc::now());
    let mut applied: HashSet<&str> = HashSet::new();
    let already: HashSet<String> = if marked == Marked::Yes {
        let ids: Vec<&str> = items.iter().map(|i| i.id).collect();
        super::query_cached(
            tx,
            "SELECT action_id FROM local_applied WHERE action_id = ANY($1::text[])",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    } else {
        HashSet::new()
    };
    let reads: Vec<local::Reads> = items
        .iter()
        .map(|i| local::reads(i.environment, i.payload))
        .collect();
    let mut users = Users {
        stored: match read_ahead {
            Some(stored) => stored,
            None => stored_users(tx, reads.iter().flat_map(|r| &r.users)).await?,
        },
        written: HashMap::new(),
    };
    let mut unsent = Unsent {
        marked,
        now,
        ..Unsent::default()
    };
    let mut results = Vec::with_capacity(items.len());
    for (item, reads) in items.iter().zip(reads) {
        // A repeat in the same call is applied once too.
        if already.contains(item.id) || !applied.insert(item.id) {
            results.push(Ok(LocalEffect::AlreadyApplied));
            continue;
        }
        let known = users.known(&reads.users);
        let loaded = if reads.records.is_empty() && reads.scopes.is_empty() {
            Loaded {
                users: known,
                ..Loaded::default()
            }
        } else {
            // What it reads may have been written by the items before it.
            unsent.send(tx).await?;
            match load(tx, reads).await? {
                Ok(l) => Loaded { users: known, ..l },
                Err(e) => {
                    applied.remove(item.id);
                    results.push(Err(e));
                    continue;
                }
            }
        };
        match local::writes(
            item.environment,
            item.id,
            item.payload,
            item.event_data.map(local::EventData::value),
            &loaded,
        ) {
            Ok(writes) => {
                users.record(&writes);
                unsent.add(item.id.to_owned(), writes);
                results.push(Ok(local::effect(item.environment, item.payload, &loaded)));
            }
            Err(e) => {
                applied.remove(item.id);
                results.push(Err(e));
            }
        }
    }
    Ok((results, unsent))
}

/// Which users exist, for the triggers of one call: read once for all of
/// them, before any is applied (under the advisory lock, unless only
/// triggers read them: see [`apply_at_append`]), then followed through this call's own writes, so a trigger needs no
/// flush and no query of its own.
struct Users {
    stored: HashSet<LocalKey>,
    /// This call's writes to users so far: true for a put, false for a delete.
    written: HashMap<LocalKey, bool>,
}

impl Users {
    fn known(&self, keys: &[LocalKey]) -> local::Known {
        local::Known::Read(
            keys.iter()
                .filter(|k| {
                    self.written
                        .get(*k)
                        .copied()
                        .unwrap_or_else(|| self.stored.contains(*k))
                })
                .cloned()
                .collect(),
        )
    }

    fn record(&mut self, writes: &[LocalWrite]) {
        for w in writes {
            let (key, exists) = match w {
                LocalWrite::Put(k, _) | LocalWrite::PutJson(k, _) => (k, true),
                LocalWrite::Delete(k) => (k, false),
            };
            if key.kind == LocalKind::User {
                self.written.insert(key.clone(), exists);
            }
        }
    }
}

/// The users among `keys` that are stored, in one query.
pub(super) async fn stored_users(
    tx: &impl GenericClient,
    keys: impl Iterator<Item = &LocalKey>,
) -> Result<HashSet<LocalKey>, StoreError> {
    let (mut scopes, mut ids) = (Vec::new(), Vec::new());
    for k in keys {
        scopes.push(k.scope.as_str());
        ids.push(k.id.as_str());
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(super::query_cached(
        tx,
        "SELECT r.scope, r.id FROM local_records r \
         JOIN unnest($1::text[], $2::text[]) AS t (s, i) ON r.scope = t.s AND r.id = t.i \
         WHERE r.kind = $3",
        &[&scopes, &ids, &LocalKind::User.as_str()],
    )
    .await?
    .iter()
    .map(|r| LocalKey {
        kind: LocalKind::User,
        scope: r.get(0),
        id: r.get(1),
    })
    .collect())
}

/// Writes not yet sent: the applied ids, and the last write to each key
/// (a later write to a key replaces an earlier one, as running them in turn
/// would; nothing reads between them, or they would have been sent).
#[derive(Default)]
pub(super) struct Unsent {
    marked: Marked,
    /// When the writes were made (`updated_at`, `applied_at`).
    now: i64,
    ids: Vec<String>,
    order: Vec<LocalKey>,
    last: HashMap<LocalKey, Option<String>>,
}

impl Unsent {
    fn add(&mut self, id: String, writes: Vec<LocalWrite>) {
        self.ids.push(id);
        for w in writes {
            let (key, data) = match w {
                LocalWrite::Put(k, v) => (k, Some(rows::data_json(&v))),
                LocalWrite::PutJson(k, json) => (k, Some(json)),
                LocalWrite::Delete(k) => (k, None),
            };
            match self.last.entry(key) {
                Entry::Occupied(mut e) => {
                    e.insert(data);
                }
                Entry::Vacant(e) => {
                    self.order.push(e.key().clone());
                    e.insert(data);
                }
            }
        }
    }

    /// Sends the writes (none when there are none) and forgets them. Every
    /// statement is sent on this future's first poll (when the connection
    /// has them prepared, see [`LAST_ROUND_STATEMENTS`]), so a `COMMIT` polled
    /// after it follows them all.
    pub(super) async fn send(&mut self, tx: &impl GenericClient) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let now = self.now;
        let (mut put, mut delete) = (Columns::default(), Columns::default());
        for key in self.order.drain(..) {
            let data = self.last.remove(&key).flatten();
            let cols = if data.is_some() {
                &mut put
            } else {
                &mut delete
            };
            cols.kind.push(key.kind.as_str());
            cols.scope.push(key.scope);
            cols.id.push(key.id);
            if let Some(d) = data {
                cols.data.push(d);
            }
        }
        let applied = async {
            if self.marked == Marked::No {
                return Ok(0);
            }
            super::execute_cached(tx, INSERT_APPLIED, &[&self.ids, &now]).await
        };
        let puts = async {
            if put.kind.is_empty() {
                return Ok(0);
            }
            super::execute_cached(
                tx,
                UPSERT_RECORDS,
                &[&put.kind, &put.scope, &put.id, &put.data, &now],
            )
            .await
        };
        let deletes = async {
            if delete.kind.is_empty() {
                return Ok(0);
            }
            super::execute_cached(
                tx,
                DELETE_RECORDS,
                &[&delete.kind, &delete.scope, &delete.id],
            )
            .await
        };
        tokio::try_join!(biased; applied, puts, deletes)?;
        self.ids.clear();
        Ok(())
    }
}

const INSERT_APPLIED: &str =
    "INSERT INTO local_applied (action_id, applied_at) SELECT unnest($1::text[]), $2";

const UPSERT_RECORDS: &str = "INSERT INTO local_records (kind, scope, id, data, updated_at) \
     SELECT k, s, i, d, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t (k, s, i, d) \
     ON CONFLICT (kind, scope, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at";

const DELETE_RECORDS: &str = "DELETE FROM local_records r USING unnest($1::text[], $2::text[], $3::text[]) AS t (k, s, i) \
     WHERE r.kind = t.k AND r.scope = t.s AND r.id = t.i";

/// What [`Unsent::send`] may run.
pub(super) const LAST_ROUND_STATEMENTS: [&str; 3] =
    [INSERT_APPLIED, UPSERT_RECORDS, DELETE_RECORDS];

/// Keys (and data, for puts) one column per array.
#[derive(Default)]
struct Columns {
    kind: Vec<&'static str>,
    scope: Vec<String>,
    id: Vec<String>,
    data: Vec<String>,
}

/// Reads what an item's writes depend on. The inner error is the item's
/// (a stored record it cannot decode); the outer one the database's.
async fn load(
    tx: &impl GenericClient,
    reads: local::Reads,
) -> Result<Result<Loaded, StoreError>, StoreError> {
    let mut loaded = Loaded::default();
    for key in reads.records {
        let row = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT data FROM local_records WHERE kind = $1 AND scope = $2 AND id = $3",
                )
                .await?,
                &[&key.kind.as_str(), &key.scope, &key.id],
            )
            .await?;
        if let Some(r) = row {
            match serde_json::from_str(r.get::<_, &str>(0)) {
                Ok(v) => loaded.records.insert(key, v),
                Err(e) => return Ok(Err(StoreError::decode("local_records.data", e))),
            };
        }
    }
    for (kind, scope) in reads.scopes {
        let mut parsed = Vec::new();
        for r in tx
            .query(
                &tx.prepare_cached(
                    "SELECT id, data FROM local_records WHERE kind = $1 AND scope = $2",
                )
                .await?,
                &[&kind.as_str(), &scope],
            )
            .await?
        {
            match serde_json::from_str(r.get::<_, &str>(1)) {
                Ok(v) => parsed.push((r.get::<_, String>(0), v)),
                Err(e) => return Ok(Err(StoreError::decode("local_records.data", e))),
            }
        }
        loaded.scopes.insert((kind, scope), parsed);
    }
    Ok(Ok(loaded))
}
