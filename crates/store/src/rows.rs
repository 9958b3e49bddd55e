//! Conversions between stored columns and the public records, shared by both backends.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tributary_core::{
    ActionType,
    event::{EventId, Headers},
    plan::{ActionPlan, TriggerData},
};

use crate::{
    ActionFilter, ActionId, ActionRecord, ActionStatus, AppendItem, ClaimedAction, EventRecord,
    EventStatus, Provenance, RejectedRequest, StoreError,
    model::{REJECTED_BODY_EXCERPT_BYTES, from_ms, ms, truncate},
};

/// The columns of an `events` row, in the order every query selects them.
pub(crate) const EVENT_COLUMNS: &str = "id, received_at, source, environment, event_type, \
     user_id, message_id, status, duplicate_of, error, body_excerpt, event_json";

/// The columns of an action row (joined with its outbox row as `o` and its
/// event's row as `ev`, whose JSON a plan may take its trigger data from:
/// [`StoredPlan`]).
///
/// `running` is not stored: a claim writes only the outbox row (its lease),
/// so an action shows as running while it is `pending` and leased. That keeps
/// a claim to one row update instead of two, each moving an index entry.
pub(crate) const ACTION_COLUMNS: &str = "a.id, a.event_id, a.position, a.action_type, \
     a.plan_json, CASE WHEN a.status = 'pending' AND o.lease_owner IS NOT NULL THEN 'running' ELSE a.status END, \
     a.attempts, a.last_error, o.run_at, o.lease_owner, a.created_at, a.updated_at, ev.event_json";

/// The tables [`ACTION_COLUMNS`] reads. `by_event_row`: only actions whose
/// event row matches a condition on `ev` (an inner join, so a planner may
/// start from the events' index).
pub(crate) fn action_tables(by_event_row: bool) -> &'static str {
    if by_event_row {
        "actions a LEFT JOIN outbox o ON o.action_id = a.id JOIN events ev ON ev.id = a.event_id"
    } else {
        "actions a LEFT JOIN outbox o ON o.action_id = a.id LEFT JOIN events ev ON ev.id = a.event_id"
    }
}

/// The stored status that `status` is derived from (see [`ACTION_COLUMNS`]),
/// and the condition on the outbox row that tells them apart.
pub(crate) fn stored_status(status: ActionStatus) -> (&'static str, &'static str) {
    match status {
        ActionStatus::Running => ("pending", "o.lease_owner IS NOT NULL"),
        ActionStatus::Pending => ("pending", "o.lease_owner IS NULL"),
        other => (other.as_str(), "TRUE"),
    }
}

/// The condition comparing an action's status (`a.status` when `joined`)
/// with a stored status (the argument that follows), with the condition of
/// the partial index `actions_by_status` repeated for every status it
/// holds: SQLite uses a partial index only for a query that states its
/// condition in the same words, and neither backend can see through a
/// bound argument to prove it.
/// The index leaves out `succeeded`, the status most actions end in, so
/// appending an action that succeeds at once writes no entry in it
/// (docs/store.md).
fn status_condition(stored: &str, joined: bool) -> &'static str {
    match (stored == ActionStatus::Succeeded.as_str(), joined) {
        (true, true) => "a.status =",
        (true, false) => "status =",
        (false, true) => "a.status <> 'succeeded' AND a.status =",
        (false, false) => "status <> 'succeeded' AND status =",
    }
}

/// The action-log query for `filter` (both backends' SQL), with its text
/// arguments in order; `placeholder(n)` writes the n-th (1-based). The
/// last placeholder, numbered one past the arguments, is the row limit.
pub(crate) fn actions_query(
    filter: &ActionFilter,
    before: Option<ActionId>,
    placeholder: impl Fn(usize) -> String,
) -> (String, Vec<String>) {
    let mut sql = format!(
        "SELECT {ACTION_COLUMNS} FROM {} WHERE TRUE",
        action_tables(filter.user_id.is_some())
    );
    let mut args: Vec<String> = Vec::new();
    let mut add = |clause: &str, v: String| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} {}", placeholder(args.len())));
    };
    if let Some(status) = filter.status {
        let (stored, lease) = stored_status(status);
        let condition = status_condition(stored, true);
        add(&format!("{lease} AND {condition}"), stored.to_owned());
    }
    if let Some(v) = &filter.source {
        add("a.source =", v.clone());
    }
    if let Some(v) = &filter.environment {
        add("a.environment =", v.clone());
    }
    if let Some(v) = filter.action {
        add("a.action_type =", v.as_str().to_owned());
    }
    if let Some(v) = filter.event_id {
        add("a.event_id =", v.to_string());
    }
    if let Some(v) = &filter.user_id {
        add("ev.user_id =", v.clone());
    }
    // An action's id carries its event's time: a time range is an id range.
    if let Some(t) = filter.since {
        add("a.id >=", crate::model::id_floor(t));
    }
    if let Some(t) = filter.until {
        add("a.id <", crate::model::id_floor(t));
    }
    if let Some(b) = before {
        add("a.id <", b.to_string());
    }
    sql.push_str(&format!(
        " ORDER BY a.id DESC LIMIT {}",
        placeholder(args.len() + 1)
    ));
    (sql, args)
}

/// For a filter no index of the action log serves (source, environment,
/// action, user id), the clauses that one does serve (stored status, event,
/// id range), each with its argument: they select the window of
/// [`crate::FILTER_SCAN_ROWS`] actions a page is looked for in. `None` when
/// the indexes serve the whole filter.
pub(crate) fn actions_window(
    filter: &ActionFilter,
    before: Option<ActionId>,
) -> Option<Vec<(&'static str, String)>> {
    let unserved = filter.source.is_some()
        || filter.environment.is_some()
        || filter.action.is_some()
        || filter.user_id.is_some();
    if !unserved {
        return None;
    }
    let mut clauses = Vec::new();
    if let Some(status) = filter.status {
        let stored = stored_status(status).0;
        clauses.push((status_condition(stored, false), stored.to_owned()));
    }
    if let Some(v) = filter.event_id {
        clauses.push(("event_id =", v.to_string()));
    }
    if let Some(t) = filter.since {
        clauses.push(("id >=", crate::model::id_floor(t)));
    }
    if let Some(t) = filter.until {
        clauses.push(("id <", crate::model::id_floor(t)));
    }
    if let Some(b) = before {
        clauses.push(("id <", b.to_string()));
    }
    Some(clauses)
}

/// The window's query: the newest [`crate::FILTER_SCAN_ROWS`] action ids
/// the `clauses` select, their placeholders numbered from `first`.
pub(crate) fn window_query(
    table: &str,
    clauses: &[(&'static str, String)],
    first: usize,
    placeholder: impl Fn(usize) -> String,
) -> String {
    let mut sql = format!("SELECT id FROM {table} WHERE TRUE");
    for (i, (clause, _)) in clauses.iter().enumerate() {
        sql.push_str(&format!(" AND {clause} {}", placeholder(first + i)));
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {}",
        crate::FILTER_SCAN_ROWS
    ));
    sql
}

/// A claimed action from its stored columns (decoded off the SQLite writer
/// thread: parsing the plan is the costliest part of a claim).
/// `event_json` gives the event's stored JSON, read only for a plan that
/// left its trigger data to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn claimed_action(
    id: &str,
    event_id: &str,
    source: String,
    environment: String,
    plan_json: &str,
    event_json: impl FnOnce() -> Result<Option<String>, StoreError>,
    attempt: i64,
    lease_expires_at: i64,
) -> Result<ClaimedAction, StoreError> {
    Ok(ClaimedAction {
        id: parse_action_id("outbox.action_id", id)?,
        event_id: parse_event_id("actions.event_id", event_id)?,
        source,
        environment,
        plan: StoredPlan::parse(plan_json, "actions.plan_json")?.complete(event_json)?,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        lease_expires_at: from_ms(lease_expires_at),
    })
}

/// Replaces NUL characters, which PostgreSQL `text` cannot hold, so one
/// event cannot fail the group it is committed with. JSON columns need not:
/// serde_json writes NUL as `\u0000`.
pub(crate) fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s.to_owned()
    }
}

fn clean_opt(s: Option<&String>) -> Option<String> {
    s.map(|s| clean(s))
}

/// An `events` row as stored (serializable for the SQLite intake journal).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct EventRow {
    pub(crate) id: String,
    pub(crate) received_at: i64,
    pub(crate) source: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) message_id: Option<String>,
    pub(crate) status: EventStatus,
    pub(crate) duplicate_of: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) body_excerpt: Option<String>,
    pub(crate) event_json: Option<String>,
}

impl EventRow {
    /// The row for an appended event; with `headers_of`, its headers are
    /// stored as those of that event (see [`SharedHeaders`]). `data_json` is
    /// the event's `data` serialized, when the caller has it
    /// ([`crate::stored_event::to_json`]).
    pub(crate) fn for_event(
        item: &AppendItem,
        status: EventStatus,
        duplicate_of: Option<String>,
        headers_of: Option<&EventId>,
        data_json: Option<&serde_json::value::RawValue>,
    ) -> Result<Self, StoreError> {
        let e = &item.event;
        let json = crate::stored_event::to_json(e, headers_of, &item.provenance, data_json)
            .map_err(|err| StoreError::InvalidInput {
                field: "event",
                problem: err.to_string(),
            })?;
        Ok(Self {
            id: e.id.to_string(),
            received_at: ms(e.received_at),
            source: Some(clean(&e.source)),
            environment: Some(clean(&e.environment)),
            event_type: Some(clean(&e.event)),
            user_id: clean_opt(e.user_id.as_ref()),
            message_id: clean_opt(
                item.dedup
                    .as_ref()
                    .map(|d| &d.key)
                    .or(e.message_id.as_ref()),
            ),
            status,
            duplicate_of,
            error: None,
            body_excerpt: None,
            event_json: Some(json),
        })
    }

    /// The row for a rejected request.
    pub(crate) fn for_rejected(id: EventId, r: &RejectedRequest) -> Self {
        let cut = r.body.len().min(REJECTED_BODY_EXCERPT_BYTES);
        let excerpt = clean(&String::from_utf8_lossy(&r.body[..cut]));
        let headers =
            serde_json::to_string(&serde_json::json!({ "headers": r.headers })).unwrap_or_default();
        Self {
            id: id.to_string(),
            received_at: ms(r.received_at),
            source: clean_opt(r.source.as_ref()),
            environment: clean_opt(r.environment.as_ref()),
            event_type: None,
            user_id: None,
            message_id: None,
            status: EventStatus::Rejected,
            duplicate_of: None,
            error: Some(clean(truncate(&format!("{}: {}", r.code, r.message), 1024))),
            body_excerpt: Some(excerpt),
            event_json: Some(headers),
        }
    }
}

pub(crate) fn parse_event_id(field: &'static str, s: &str) -> Result<EventId, StoreError> {
    s.parse().map_err(|e| StoreError::decode(field, e))
}

pub(crate) fn parse_action_id(field: &'static str, s: &str) -> Result<ActionId, StoreError> {
    s.parse().map_err(|e| StoreError::decode(field, e))
}

/// Which earlier event of the same append holds an event's headers: a
/// request's events share one copy ([`Headers::same_copy`]), written with the
/// first of them. Feed it the items in append order.
#[derive(Default)]
pub(crate) struct SharedHeaders {
    last: Option<(Headers, EventId)>,
}

impl SharedHeaders {
    /// The event whose stored headers `item`'s are, or `None` to store them
    /// with `item` (which then holds them for the items after it).
    pub(crate) fn holder(&mut self, item: &AppendItem) -> Option<EventId> {
        let headers = &item.event.headers;
        if headers.is_empty() {
            return None;
        }
        match &self.last {
            Some((last, id)) if Headers::same_copy(last, headers) => Some(*id),
            _ => {
                self.last = Some((headers.clone(), item.event.id));
                None
            }
        }
    }
}

/// A decoded event row, and the event whose headers it shares when they were
/// stored with that one ([`fill_shared_headers`]).
pub(crate) type DecodedEvent = (EventRecord, Option<EventId>);

/// The ids of events outside `decoded` whose stored headers some of them share.
pub(crate) fn shared_headers_wanted(decoded: &[DecodedEvent]) -> Vec<String> {
    let in_page: HashSet<EventId> = decoded.iter().map(|(r, _)| r.id).collect();
    let wanted: BTreeSet<String> = decoded
        .iter()
        .filter_map(|(_, of)| *of)
        .filter(|of| !in_page.contains(of))
        .map(|of| of.to_string())
        .collect();
    wanted.into_iter().collect()
}

/// The records with every shared header set filled in, from the page itself
/// or from `holders` (`(id, event_json)` of the rows [`shared_headers_wanted`]
/// named). A holder gone (pruned on its own) leaves the headers empty.
pub(crate) fn fill_shared_headers(
    decoded: Vec<DecodedEvent>,
    holders: &[(String, String)],
) -> Result<Vec<EventRecord>, StoreError> {
    let mut found: HashMap<EventId, Headers> = HashMap::new();
    for (id, json) in holders {
        let headers = crate::stored_event::headers_from_json(json)
            .map_err(|e| StoreError::decode("events.event_json", e))?;
        found.insert(parse_event_id("events.id", id)?, headers);
    }
    for (r, _) in &decoded {
        if let Some(e) = &r.event
            && !e.headers.is_empty()
        {
            found.entry(r.id).or_insert_with(|| e.headers.clone());
        }
    }
    Ok(decoded
        .into_iter()
        .map(|(mut record, of)| {
            if let (Some(of), Some(event)) = (of, record.event.as_mut())
                && let Some(headers) = found.get(&of)
            {
                event.headers = headers.clone();
            }
            record
        })
        .collect())
}

/// Decodes the columns of [`EVENT_COLUMNS`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn event_record(
    id: String,
    received_at: i64,
    source: Option<String>,
    environment: Option<String>,
    event_type: Option<String>,
    user_id: Option<String>,
    message_id: Option<String>,
    status: String,
    duplicate_of: Option<String>,
    error: Option<String>,
    body_excerpt: Option<String>,
    event_json: Option<String>,
) -> Result<DecodedEvent, StoreError> {
    let status = EventStatus::parse(&status)?;
    let (event, headers_of, provenance) = match (&event_json, status) {
        (Some(j), EventStatus::Accepted | EventStatus::Duplicate) => {
            let (event, of, provenance) = crate::stored_event::from_json(j)
                .map_err(|e| StoreError::decode("events.event_json", e))?;
            (Some(event), of, provenance)
        }
        _ => (None, None, Provenance::default()),
    };
    let record = EventRecord {
        id: parse_event_id("events.id", &id)?,
        received_at: from_ms(received_at),
        source,
        environment,
        event_type,
        user_id,
        message_id,
        status,
        duplicate_of: duplicate_of
            .map(|d| parse_event_id("events.duplicate_of", &d))
            .transpose()?,
        error,
        body_excerpt,
        event,
        provenance,
    };
    Ok((record, headers_of))
}

/// Decodes the columns of [`ACTION_COLUMNS`]; the last, the event's JSON,
/// is read only for a plan that left its trigger data to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn action_record(
    id: String,
    event_id: String,
    position: i64,
    action_type: String,
    plan_json: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    run_at: Option<i64>,
    lease_owner: Option<String>,
    created_at: i64,
    updated_at: i64,
    event_json: impl FnOnce() -> Result<Option<String>, StoreError>,
) -> Result<ActionRecord, StoreError> {
    let status = ActionStatus::parse(&status)?;
    let plan = StoredPlan::parse(&plan_json, "actions.plan_json")?.complete(event_json)?;
    let action: ActionType = action_type
        .parse()
        .map_err(|e| StoreError::decode("actions.action_type", e))?;
    Ok(ActionRecord {
        id: parse_action_id("actions.id", &id)?,
        event_id: parse_event_id("actions.event_id", &event_id)?,
        position: u32::try_from(position).unwrap_or(0),
        action,
        plan,
        status,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error,
        next_run_at: run_at
            .filter(|_| status == ActionStatus::Pending)
            .map(from_ms),
        lease_owner: lease_owner.filter(|_| status == ActionStatus::Running),
        created_at: from_ms(created_at),
        updated_at: from_ms(updated_at),
    })
}

/// How a stored plan whose trigger data is its event's own `data` begins:
/// a key [`ActionPlan`] does not have, written first so a reader tells the
/// two forms apart before parsing. Such a plan stores `data` as `null`;
/// the event's row holds it (docs/store.md, "A trigger's data is stored
/// once").
const DATA_OF_EVENT: &str = "{\"data_of_event\":true,";

/// The plan as stored in `actions.plan_json`. A trigger whose data is its
/// event's (a mapping's default: the event's properties) leaves it to the
/// event's row, rather than serializing, compressing and writing the
/// event's largest part a second time: a plan that says so
/// ([`TriggerData::OfEvent`]), or one whose data equals `event_data`.
pub(crate) fn plan_json(plan: &ActionPlan, event_data: &Value) -> Result<String, StoreError> {
    let json = |plan: &ActionPlan| {
        serde_json::to_string(plan).map_err(|e| StoreError::InvalidInput {
            field: "plans",
            problem: e.to_string(),
        })
    };
    // serde_json writes a struct as an object: `{` first.
    let marked = |text: String| format!("{DATA_OF_EVENT}{}", &text[1..]);
    match plan.trigger_data() {
        // Written as `null`.
        Some(TriggerData::OfEvent) => json(plan).map(marked),
        // A copy of the event's data: a plan `MappingEngine::plan` made (a
        // replay's, an embedder's). The pipeline plans by reference, so this
        // is rare enough to clone the plan whole.
        Some(TriggerData::Given(data)) if data == event_data => {
            let mut by_reference = plan.clone();
            if let Some(data) = by_reference.trigger_data_mut() {
                *data = TriggerData::OfEvent;
            }
            json(&by_reference).map(marked)
        }
        _ => json(plan),
    }
}

/// A plan as read from `actions.plan_json`, its trigger data perhaps still
/// to be taken from its event ([`plan_json`]).
pub(crate) struct StoredPlan {
    plan: ActionPlan,
    data_of_event: bool,
}

impl StoredPlan {
    /// Parses either stored form; `field` names the column in an error.
    pub(crate) fn parse(text: &str, field: &'static str) -> Result<Self, StoreError> {
        let (plan, data_of_event) = match text.strip_prefix(DATA_OF_EVENT) {
            Some(rest) => (serde_json::from_str(&format!("{{{rest}")), true),
            None => (serde_json::from_str(text), false),
        };
        Ok(Self {
            plan: plan.map_err(|e| StoreError::decode(field, e))?,
            data_of_event,
        })
    }

    /// The whole plan; `event_json` (the event's stored JSON) is read only
    /// when the plan left its data to the event.
    pub(crate) fn complete(
        self,
        event_json: impl FnOnce() -> Result<Option<String>, StoreError>,
    ) -> Result<ActionPlan, StoreError> {
        if !self.data_of_event {
            return Ok(self.plan);
        }
        let json = event_json()?.ok_or_else(|| {
            StoreError::decode(
                "actions.plan_json",
                "the plan's trigger data is its event's, and the event's row is gone",
            )
        })?;
        let event_data = crate::stored_event::data_from_json(&json)
            .map_err(|e| StoreError::decode("events.event_json", e))?;
        let mut plan = self.plan;
        if let Some(data) = plan.trigger_data_mut() {
            *data = TriggerData::Given(event_data);
        }
        Ok(plan)
    }
}

/// `value` as JSON text, written into a buffer of `capacity` bytes: one
/// allocation where the caller knows the size roughly, not a series of
/// doublings from empty.
pub(crate) fn json_sized<T: serde::Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    // serde_json writes UTF-8 only.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// A local record's data as stored.
pub(crate) fn data_json(v: &Value) -> String {
    v.to_string()
}

/// The UTC day number of a millisecond timestamp, for per-day counters.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;
    use tributary_core::{
        event::Event,
        plan::{ActionPayload, PlanOrigin, PlanOutcome},
    };

    use super::*;
    use crate::stored_event::tests::value;

    fn event(data: Value) -> Event {
        let raw = json!({"type": "track", "properties": data});
        crate::stored_event::tests::event(data, raw)
    }

    /// The shared trigger plan, with a tenant and a cancellation key so
    /// that the round trips carry them too.
    fn trigger(data: Value) -> ActionPlan {
        let mut plan = crate::test_items::trigger_plan(data.into(), &["u1"]);
        let PlanOutcome::Planned {
            payload:
                ActionPayload::TriggerWorkflow {
                    tenant,
                    cancellation_key,
                    ..
                },
        } = &mut plan.outcome
        else {
            panic!("trigger_plan makes a planned trigger");
        };
        *tenant = Some("acme".into());
        *cancellation_key = Some("k".into());
        plan
    }

    fn set_data(plan: &mut ActionPlan, to: TriggerData) {
        *plan.trigger_data_mut().expect("a trigger") = to;
    }

    /// The plan stored for `plan` with `event`, read back with the event's stored JSON.
    fn round_trip(plan: &ActionPlan, event: &Event) -> (String, ActionPlan) {
        let text = plan_json(plan, &event.data).unwrap();
        let stored_event =
            crate::stored_event::to_json(event, None, &Provenance::default(), None).unwrap();
        let read = StoredPlan::parse(&text, "plan")
            .unwrap()
            .complete(|| Ok(Some(stored_event)))
            .unwrap();
        (text, read)
    }

    #[test]
    fn a_trigger_with_its_events_data_leaves_it_to_the_event() {
        let data = json!({"order_id": "ord-1", "total": 12.5});
        let e = event(data.clone());
        let plan = trigger(data);
        let (text, read) = round_trip(&plan, &e);
        assert!(text.starts_with(DATA_OF_EVENT), "{text}");
        assert!(!text.contains("ord-1"), "{text}");
        assert_eq!(read, plan);
        // A plan that refers to the event's data is stored the same way.
        let mut by_reference = plan.clone();
        set_data(&mut by_reference, TriggerData::OfEvent);
        let (same_text, read) = round_trip(&by_reference, &e);
        assert_eq!(same_text, text);
        assert_eq!(read, plan);
        // Without the event's row there is nothing to complete it with.
        let parsed = StoredPlan::parse(&text, "plan").unwrap();
        assert!(matches!(
            parsed.complete(|| Ok(None)),
            Err(StoreError::Decode { .. })
        ));
    }

    #[test]
    fn other_plans_are_stored_whole_and_read_without_the_event() {
        let e = event(json!({"order_id": "ord-1"}));
        for plan in [
            trigger(json!({"mapped": "ord-1"})),
            ActionPlan {
                action: ActionType::DeleteUser,
                origin: PlanOrigin::IdentifyToggle,
                outcome: PlanOutcome::Planned {
                    payload: ActionPayload::DeleteUser {
                        user_id: "u1".into(),
                    },
                },
                notes: Vec::new(),
            },
        ] {
            let text = plan_json(&plan, &e.data).unwrap();
            assert_eq!(text, serde_json::to_string(&plan).unwrap());
            let read = StoredPlan::parse(&text, "plan")
                .unwrap()
                .complete(|| panic!("the event's JSON was read"))
                .unwrap();
            assert_eq!(read, plan);
        }
    }

    proptest! {
        /// Whatever the trigger's and the event's data, the plan read back
        /// is the plan stored, holding its data when it referred to the
        /// event's.
        #[test]
        fn a_stored_plan_reads_back_as_the_plan(
            event_data in value(),
            other in value(),
            form in 0..3u8,
        ) {
            let e = event(event_data.clone());
            let mut plan = trigger(match form {
                0 => event_data,
                1 => other,
                _ => Value::Null,
            });
            if form == 2 {
                set_data(&mut plan, TriggerData::OfEvent);
            }
            let read = round_trip(&plan, &e).1;
            plan.resolve_event_data(&e.data);
            prop_assert_eq!(read, plan);
        }

        /// Any text in the plan's column, completed with any text as the
        /// event's, gives a plan or an error, never a panic.
        #[test]
        fn any_stored_text_decodes_or_errs(
            text in "\\PC{0,200}",
            event_json in "\\PC{0,200}",
            marked in any::<bool>(),
        ) {
            let text = if marked { format!("{DATA_OF_EVENT}{text}") } else { text };
            if let Ok(plan) = StoredPlan::parse(&text, "plan") {
                let _ = plan.complete(|| Ok(Some(event_json)));
            }
        }
    }
}
