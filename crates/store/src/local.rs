//! The `local` sink's semantics, shared by both backends: which records a
//! payload reads, and what it writes given what it read.
//!
//! Attribute maps merge as the product's API does: keys present replace,
//! `null` removes the key, absent keys stay.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
};

use serde_json::{Map, Value, json, value::RawValue};
use tributary_core::plan::{ActionPayload, AudienceMember, RecipientRef, TriggerData};

use crate::{LocalEffect, LocalKind, StoreError};

/// A local record's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LocalKey {
    pub(crate) kind: LocalKind,
    pub(crate) scope: String,
    pub(crate) id: String,
}

/// The stored scope: the environment, then the kind's own scope. Environment
/// slugs never contain `:`, so the split is unambiguous.
pub(crate) fn stored_scope(environment: &str, scope: &str) -> String {
    crate::rows::clean(&format!("{environment}:{scope}"))
}

/// (environment, scope) of a stored scope.
pub(crate) fn split_scope(stored: &str) -> (String, String) {
    match stored.split_once(':') {
        Some((env, scope)) => (env.to_owned(), scope.to_owned()),
        None => (String::new(), stored.to_owned()),
    }
}

impl LocalKey {
    fn new(
        environment: &str,
        kind: LocalKind,
        scope: impl AsRef<str>,
        id: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            scope: stored_scope(environment, scope.as_ref()),
            id: crate::rows::clean(&id.into()),
        }
    }
}

/// What a payload needs to read before it can write.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    pub(crate) records: Vec<LocalKey>,
    pub(crate) scopes: Vec<(LocalKind, String)>,
    /// Users whose existence decides what a trigger writes: the product
    /// creates no run for a recipient id never identified (docs/mapping.md,
    /// "Recipients never identified"). Only whether each exists is read, not
    /// its data, so writes can be computed ahead assuming they all do
    /// ([`Known::Assumed`]) and checked when the action runs.
    pub(crate) users: Vec<LocalKey>,
}

/// Which of [`Reads::users`] exist.
#[derive(Debug, Default)]
pub(crate) enum Known {
    /// Not read yet: writes computed ahead of the run assume every user
    /// exists, and whoever uses them checks that first.
    #[default]
    Assumed,
    /// Read: the users that exist.
    Read(HashSet<LocalKey>),
    /// None of them exists: the other outcome of writes computed ahead for
    /// one user.
    Absent,
}

impl Known {
    /// Whether user `user_id` of environment `env` exists; its key is built
    /// only when a read set has to be searched.
    fn has(&self, env: &str, user_id: &str) -> bool {
        match self {
            Self::Assumed => true,
            Self::Absent => false,
            Self::Read(known) => known.contains(&user_key(env, user_id)),
        }
    }
}

/// What was read.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) records: HashMap<LocalKey, Value>,
    pub(crate) scopes: HashMap<(LocalKind, String), Vec<(String, Value)>>,
    pub(crate) users: Known,
}

fn user_key(env: &str, user_id: &str) -> LocalKey {
    LocalKey::new(env, LocalKind::User, "", user_id)
}

/// A trigger's recipients that the product would run for, given which
/// users exist: objects, and users that were identified.
fn reached<'a>(
    env: &str,
    recipients: &'a [RecipientRef],
    users: &Known,
) -> Cow<'a, [RecipientRef]> {
    let known = |r: &RecipientRef| match r {
        RecipientRef::User(id) => users.has(env, id),
        RecipientRef::Object { .. } => true,
    };
    if recipients.iter().all(known) {
        Cow::Borrowed(recipients)
    } else {
        Cow::Owned(recipients.iter().filter(|r| known(r)).cloned().collect())
    }
}

/// What applying `payload` did, given what it read: [`LocalEffect::Applied`]
/// unless a trigger named users that do not exist.
pub(crate) fn effect(env: &str, payload: &ActionPayload, loaded: &Loaded) -> LocalEffect {
    let unknown_recipients = unknown_recipients(env, payload, loaded);
    if unknown_recipients.is_empty() {
        return LocalEffect::Applied;
    }
    let run = match payload {
        ActionPayload::TriggerWorkflow { recipients, .. } => {
            !reached(env, recipients, &loaded.users).is_empty()
        }
        _ => false,
    };
    LocalEffect::AppliedSkipping {
        unknown_recipients,
        run,
    }
}

/// The user ids a trigger names that were never identified (or were
/// deleted), once each, in order: no run is made for them.
pub(crate) fn unknown_recipients(
    env: &str,
    payload: &ActionPayload,
    loaded: &Loaded,
) -> Vec<String> {
    let ActionPayload::TriggerWorkflow { recipients, .. } = payload else {
        return Vec::new();
    };
    let mut unknown: Vec<String> = Vec::new();
    for r in recipients {
        if let RecipientRef::User(id) = r
            && !loaded.users.has(env, id)
            && !unknown.contains(id)
        {
            unknown.push(id.clone());
        }
    }
    unknown
}

/// One write.
#[derive(Debug, PartialEq)]
pub(crate) enum LocalWrite {
    Put(LocalKey, Value),
    /// A put whose data is serialized already.
    PutJson(LocalKey, String),
    Delete(LocalKey),
}

/// A new workflow run as stored: the same JSON value as building it with
/// `json!` (top-level keys in the same order; an object recipient's keys come
/// in field order, not sorted, which no reader depends on).
#[derive(serde::Serialize)]
struct NewRun<'a> {
    actor: Option<&'a RecipientRef>,
    cancellation_key: Option<&'a str>,
    cancelled_recipients: [RecipientRef; 0],
    data: RunData<'a>,
    recipients: &'a [RecipientRef],
    status: &'static str,
    tenant: Option<&'a str>,
}

/// A run's trigger data: its JSON when that is written already, else the
/// value.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum RunData<'a> {
    Json(&'a RawValue),
    Value(&'a Value),
}

/// An event's `data`, for a trigger whose data is its event's, with its JSON
/// when the caller has it. The stored event's `raw` holds the same data, so
/// the store writes that JSON once for both, and a run copies the text
/// instead of serializing the data a second time (docs/PERFORMANCE.md).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventData<'a> {
    pub(crate) value: &'a Value,
    pub(crate) json: Option<&'a RawValue>,
}

impl<'a> EventData<'a> {
    /// The data without its JSON.
    pub(crate) fn value(value: &'a Value) -> Self {
        Self { value, json: None }
    }
}

pub(crate) fn reads(env: &str, payload: &ActionPayload) -> Reads {
    let mut r = Reads::default();
    match payload {
        ActionPayload::IdentifyUser { user_id, .. } => {
            r.records
                .push(LocalKey::new(env, LocalKind::User, "", user_id));
        }
        ActionPayload::SetObject { collection, id, .. } => {
            r.records
                .push(LocalKey::new(env, LocalKind::Object, collection, id));
        }
        ActionPayload::SetTenant { id, .. } => {
            r.records
                .push(LocalKey::new(env, LocalKind::Tenant, "", id));
        }
        ActionPayload::AddAudienceMember { audience, .. } => {
            r.records
                .push(LocalKey::new(env, LocalKind::Audience, "", audience));
        }
        ActionPayload::CancelWorkflow { workflow, .. } => {
            r.scopes
                .push((LocalKind::WorkflowRun, stored_scope(env, workflow)));
        }
        ActionPayload::TriggerWorkflow { recipients, .. } => {
            let mut seen = HashSet::new();
            for rec in recipients {
                if let RecipientRef::User(id) = rec
                    && seen.insert(id)
                {
                    r.users.push(user_key(env, id));
                }
            }
        }
        ActionPayload::DeleteUser { .. }
        | ActionPayload::DeleteObject { .. }
        | ActionPayload::DeleteTenant { .. }
        | ActionPayload::Subscribe { .. }
        | ActionPayload::Unsubscribe { .. }
        | ActionPayload::RemoveAudienceMember { .. } => {}
    }
    r
}

/// Merges `patch` into `target`: present keys replace, `null` removes.
pub(crate) fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

fn merged(loaded: &Loaded, key: &LocalKey, patch: &Map<String, Value>) -> Value {
    let mut current = match loaded.records.get(key) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    merge(&mut current, patch);
    Value::Object(current)
}

fn recipient_id(r: &RecipientRef) -> String {
    match r {
        RecipientRef::User(id) => id.clone(),
        RecipientRef::Object { id, collection } => format!("{collection}/{id}"),
    }
}

fn member_id(m: &AudienceMember) -> String {
    match &m.tenant {
        Some(t) => format!("{}@{t}", m.user_id),
        None => m.user_id.clone(),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The writes `payload` (action `action_id`) makes, given what it read.
/// `event_data` is its event's `data`, for a trigger whose data is the
/// event's (`TriggerData::OfEvent`); a payload read back from the store
/// holds its data and needs none.
pub(crate) fn writes(
    env: &str,
    action_id: &str,
    payload: &ActionPayload,
    event_data: Option<EventData<'_>>,
    loaded: &Loaded,
) -> Result<Vec<LocalWrite>, StoreError> {
    let mut w = Vec::new();
    match payload {
        ActionPayload::IdentifyUser {
            user_id,
            attributes,
        } => {
            let key = LocalKey::new(env, LocalKind::User, "", user_id);
            let v = merged(loaded, &key, attributes);
            w.push(LocalWrite::Put(key, v));
        }
        ActionPayload::DeleteUser { user_id } => {
            w.push(LocalWrite::Delete(LocalKey::new(
                env,
                LocalKind::User,
                "",
                user_id,
            )));
        }
        ActionPayload::SetObject {
            collection,
            id,
            attributes,
        } => {
            let key = LocalKey::new(env, LocalKind::Object, collection, id);
            let v = merged(loaded, &key, attributes);
            w.push(LocalWrite::Put(key, v));
        }
        ActionPayload::DeleteObject { collection, id } => {
            w.push(LocalWrite::Delete(LocalKey::new(
                env,
                LocalKind::Object,
                collection,
                id,
            )));
        }
        ActionPayload::SetTenant { id, attributes } => {
            let key = LocalKey::new(env, LocalKind::Tenant, "", id);
            let v = merged(loaded, &key, attributes);
            w.push(LocalWrite::Put(key, v));
        }
        ActionPayload::DeleteTenant { id } => {
            w.push(LocalWrite::Delete(LocalKey::new(
                env,
                LocalKind::Tenant,
                "",
                id,
            )));
        }
        ActionPayload::Subscribe {
            collection,
            object_id,
            recipients,
            properties,
        } => {
            let scope = format!("{collection}/{object_id}");
            for r in recipients {
                let data = json!({ "recipient": to_json(r), "properties": properties.clone().unwrap_or(Value::Null) });
                w.push(LocalWrite::Put(
                    LocalKey::new(env, LocalKind::Subscription, scope.clone(), recipient_id(r)),
                    data,
                ));
            }
        }
        ActionPayload::Unsubscribe {
            collection,
            object_id,
            recipients,
        } => {
            let scope = format!("{collection}/{object_id}");
            for r in recipients {
                w.push(LocalWrite::Delete(LocalKey::new(
                    env,
                    LocalKind::Subscription,
                    scope.clone(),
                    recipient_id(r),
                )));
            }
        }
        ActionPayload::AddAudienceMember {
            audience,
            members,
            create_audience,
        } => {
            let key = LocalKey::new(env, LocalKind::Audience, "", audience);
            if !loaded.records.contains_key(&key) {
                if !create_audience {
                    return Err(StoreError::NotFound {
                        what: "audience",
                        id: audience.clone(),
                    });
                }
                w.push(LocalWrite::Put(key, json!({})));
            }
            for m in members {
                w.push(LocalWrite::Put(
                    LocalKey::new(env, LocalKind::AudienceMember, audience, member_id(m)),
                    to_json(m),
                ));
            }
        }
        ActionPayload::RemoveAudienceMember { audience, members } => {
            for m in members {
                w.push(LocalWrite::Delete(LocalKey::new(
                    env,
                    LocalKind::AudienceMember,
                    audience,
                    member_id(m),
                )));
            }
        }
        ActionPayload::TriggerWorkflow {
            workflow,
            recipients,
            actor,
            tenant,
            data,
            cancellation_key,
        } => {
            // The product makes no run for a recipient never identified; with
            // none left there is no run at all (the action still succeeds).
            let recipients = reached(env, recipients, &loaded.users);
            if recipients.is_empty() {
                return Ok(w);
            }
            let data = match (event_data, data) {
                (
                    Some(EventData {
                        json: Some(json), ..
                    }),
                    TriggerData::OfEvent,
                ) => RunData::Json(json),
                (Some(event_data), data) => RunData::Value(data.resolve(event_data.value)),
                (None, data) => RunData::Value(data.given().ok_or_else(|| {
                    StoreError::InvalidInput {
                        field: "data",
                        problem: "the trigger's data is its event's, and the event was not given"
                            .to_owned(),
                    }
                })?),
            };
            // Serialized from the payload's own fields: building a `Value`
            // first would deep-copy the trigger data, the largest part.
            let run = NewRun {
                actor: actor.as_ref(),
                cancellation_key: cancellation_key.as_deref(),
                cancelled_recipients: [],
                data,
                recipients: &recipients,
                status: "triggered",
                tenant: tenant.as_deref(),
            };
            // Sized for the data and the run's other fields.
            let data_bytes = match run.data {
                RunData::Json(json) => json.get().len(),
                RunData::Value(_) => 512,
            };
            w.push(LocalWrite::PutJson(
                LocalKey::new(env, LocalKind::WorkflowRun, workflow, action_id),
                crate::rows::json_sized(&run, data_bytes + 256).map_err(|e| {
                    StoreError::InvalidInput {
                        field: "data",
                        problem: format!("cannot be stored: {e}"),
                    }
                })?,
            ));
        }
        ActionPayload::CancelWorkflow {
            workflow,
            cancellation_key,
            recipients,
        } => {
            let runs = loaded
                .scopes
                .get(&(LocalKind::WorkflowRun, stored_scope(env, workflow)))
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (id, run) in runs {
                if let Some(updated) = cancel_run(run, cancellation_key, recipients.as_deref()) {
                    w.push(LocalWrite::Put(
                        LocalKey::new(env, LocalKind::WorkflowRun, workflow, id),
                        updated,
                    ));
                }
            }
        }
    }
    Ok(w)
}

/// The run after a cancel, or `None` when the cancel does not touch it.
fn cancel_run(run: &Value, key: &str, only: Option<&[RecipientRef]>) -> Option<Value> {
    if run.get("status")?.as_str()? != "triggered" || run.get("cancellation_key")?.as_str()? != key
    {
        return None;
    }
    let mut run = run.clone();
    let obj = run.as_object_mut()?;
    let recipients: Vec<Value> = obj
        .get("recipients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (cancelled, kept): (Vec<Value>, Vec<Value>) = match only {
        None => (recipients, Vec::new()),
        Some(only) => {
            let only: Vec<Value> = only.iter().map(to_json).collect();
            recipients.into_iter().partition(|r| only.contains(r))
        }
    };
    if cancelled.is_empty() {
        return None;
    }
    let mut all_cancelled: Vec<Value> = obj
        .get("cancelled_recipients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    all_cancelled.extend(cancelled);
    if kept.is_empty() {
        obj.insert("status".into(), json!("cancelled"));
    }
    obj.insert("recipients".into(), Value::Array(kept));
    obj.insert("cancelled_recipients".into(), Value::Array(all_cancelled));
    Some(run)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_replaces_clears_and_keeps() {
        let mut t = json!({"a": 1, "b": 2, "c": 3})
            .as_object()
            .cloned()
            .unwrap();
        let p = json!({"a": 10, "b": null, "d": 4})
            .as_object()
            .cloned()
            .unwrap();
        merge(&mut t, &p);
        assert_eq!(Value::Object(t), json!({"a": 10, "c": 3, "d": 4}));
    }

    proptest::proptest! {
        /// A run whose data is its event's is the same text written from
        /// the data's JSON as from the value.
        #[test]
        fn a_run_from_the_event_datas_json_is_the_same_text(
            data in crate::stored_event::tests::value(),
        ) {
            let payload = ActionPayload::TriggerWorkflow {
                workflow: "receipt".into(),
                recipients: vec![RecipientRef::User("u1".into())],
                actor: None,
                tenant: Some("acme".into()),
                data: TriggerData::OfEvent,
                cancellation_key: Some("order-1".into()),
            };
            let json = serde_json::value::to_raw_value(&data).unwrap();
            let run = |event_data| writes("production", "a1", &payload, Some(event_data), &Loaded::default()).unwrap();
            let from_value = run(EventData::value(&data));
            let from_json = run(EventData { value: &data, json: Some(&json) });
            proptest::prop_assert_eq!(&from_json, &from_value);
            let [LocalWrite::PutJson(_, text)] = from_json.as_slice() else {
                panic!("one run: {from_json:?}");
            };
            let stored: Value = serde_json::from_str(text).unwrap();
            proptest::prop_assert_eq!(&stored["data"], &data);
        }

        /// After a merge: non-null patch keys hold the patch's value, null
        /// patch keys are gone, keys absent from the patch are unchanged.
        #[test]
        fn merge_follows_the_products_rules(
            target in proptest::collection::btree_map("[a-e]", 0i64..5, 0..6),
            patch in proptest::collection::btree_map("[a-g]", proptest::option::of(0i64..5), 0..6),
        ) {
            let mut t: Map<String, Value> = target.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let p: Map<String, Value> = patch.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            merge(&mut t, &p);
            for (k, v) in &patch {
                match v {
                    Some(v) => proptest::prop_assert_eq!(t.get(k), Some(&json!(v))),
                    None => proptest::prop_assert!(!t.contains_key(k)),
                }
            }
            for (k, v) in &target {
                if !patch.contains_key(k) {
                    proptest::prop_assert_eq!(t.get(k), Some(&json!(v)));
                }
            }
        }
    }

    #[test]
    fn cancel_with_recipients_keeps_the_others() {
        let run = json!({"status": "triggered", "cancellation_key": "k", "recipients": ["u1", "u2"], "cancelled_recipients": []});
        let only = [RecipientRef::User("u1".into())];
        let after = cancel_run(&run, "k", Some(&only)).unwrap();
        assert_eq!(after["recipients"], json!(["u2"]));
        assert_eq!(after["status"], "triggered");
        let all = cancel_run(&after, "k", None).unwrap();
        assert_eq!(all["status"], "cancelled");
        assert_eq!(all["cancelled_recipients"], json!(["u1", "u2"]));
        assert!(cancel_run(&run, "other", None).is_none());
    }
}
