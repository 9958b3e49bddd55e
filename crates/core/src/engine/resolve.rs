//! Reading action parameters out of an event: typed getters that turn a
//! missing value or a wrong type into a [`PlanError`] naming the parameter.

use std::{borrow::Cow, cell::RefCell};

use serde_json::{Map, Value};

use crate::{
    config::ValueSource,
    json::json_type,
    path::PathInput,
    plan::{
        ActionPayload, InlineRecipient, MAX_RECIPIENTS, PlanError, PlanNote, RecipientRef,
        TriggerInline,
    },
};

/// An inline entity's attributes (everything but `id` and `collection`).
type Attributes = Map<String, Value>;

/// Parameters resolved against one event.
pub(super) struct Resolver<'a> {
    pub(super) input: PathInput<'a>,
    /// Optional parameters whose path reached nothing, since the last take.
    pub(super) unreached: RefCell<Vec<PlanNote>>,
}

/// Inline entities found while resolving: identified or set before the action runs.
#[derive(Default)]
pub(super) struct Inline {
    pub(super) payloads: Vec<(String, ActionPayload)>,
    /// A trigger's inline entities again, as its call can carry them.
    pub(super) trigger: TriggerInline,
}

impl Inline {
    fn push(&mut self, field: &str, payload: ActionPayload) {
        // The same inline user named twice (recipient and actor) is identified once.
        if !self.payloads.iter().any(|(_, p)| *p == payload) {
            self.payloads.push((field.to_owned(), payload));
        }
    }
}

pub(super) fn path_of(source: &ValueSource) -> String {
    match source {
        ValueSource::Path(p) => p.as_str().to_owned(),
        ValueSource::Literal(_) => "(constant)".to_owned(),
    }
}

fn missing(field: &str, source: &ValueSource) -> PlanError {
    PlanError::MissingField {
        field: field.to_owned(),
        path: path_of(source),
    }
}

fn mismatch(field: &str, source: &ValueSource, expected: &str, found: &Value) -> PlanError {
    PlanError::TypeMismatch {
        field: field.to_owned(),
        path: path_of(source),
        expected: expected.to_owned(),
        found: json_type(found).to_owned(),
    }
}

/// A JSON id: a non-empty string, or a number in its decimal form.
fn as_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl<'a> Resolver<'a> {
    pub(super) fn get<'s>(&self, source: &'s ValueSource) -> Option<Cow<'s, Value>>
    where
        'a: 's,
    {
        match source {
            ValueSource::Path(p) => p.resolve(self.input),
            ValueSource::Literal(v) => Some(Cow::Borrowed(v)),
        }
    }

    /// An optional parameter's value; a path that reaches nothing is noted
    /// for the plan, so the log says why the parameter is not in the call.
    pub(super) fn optional<'s>(
        &self,
        field: &str,
        source: &'s ValueSource,
    ) -> Option<Cow<'s, Value>>
    where
        'a: 's,
    {
        let value = self.get(source);
        if value.is_none() {
            self.unreached
                .borrow_mut()
                .push(PlanNote::PathReachedNothing {
                    parameter: field.to_owned(),
                    path: path_of(source),
                });
        }
        value
    }

    /// The notes of the parameters resolved since the last take.
    pub(super) fn take_notes(&self) -> Vec<PlanNote> {
        std::mem::take(&mut self.unreached.borrow_mut())
    }

    /// A present, non-null value.
    fn present<'s>(&self, source: &'s ValueSource) -> Option<Cow<'s, Value>>
    where
        'a: 's,
    {
        self.get(source).filter(|v| !v.is_null())
    }

    /// A required id-like string (numbers coerced).
    pub(super) fn id(
        &self,
        field: &str,
        source: Option<&ValueSource>,
    ) -> Result<String, PlanError> {
        let Some(source) = source else {
            return Err(PlanError::MissingField {
                field: field.to_owned(),
                path: "(not mapped)".to_owned(),
            });
        };
        let value = self.present(source).ok_or_else(|| missing(field, source))?;
        match value.as_ref() {
            Value::String(s) if s.is_empty() => Err(missing(field, source)),
            v => as_id(v).ok_or_else(|| mismatch(field, source, "a string", v)),
        }
    }

    /// An optional id-like string; absent or null is `None`.
    pub(super) fn optional_id(
        &self,
        field: &str,
        source: Option<&ValueSource>,
    ) -> Result<Option<String>, PlanError> {
        let Some(source) = source else {
            return Ok(None);
        };
        match self.optional(field, source).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => as_id(&v)
                .map(Some)
                .ok_or_else(|| mismatch(field, source, "a string", &v)),
        }
    }

    /// An optional object; absent or null is `None`.
    pub(super) fn optional_object(
        &self,
        field: &str,
        source: Option<&ValueSource>,
    ) -> Result<Option<Map<String, Value>>, PlanError> {
        let Some(source) = source else {
            return Ok(None);
        };
        match self.optional(field, source).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(Cow::Owned(Value::Object(map))) => Ok(Some(map)),
            Some(Cow::Borrowed(Value::Object(map))) => Ok(Some(map.clone())),
            Some(v) => Err(mismatch(field, source, "an object", &v)),
        }
    }

    /// A string attribute that may be explicitly `null` (which clears it).
    pub(super) fn attribute(
        &self,
        field: &str,
        source: Option<&ValueSource>,
        into: &mut Map<String, Value>,
    ) -> Result<(), PlanError> {
        let Some(source) = source else {
            return Ok(());
        };
        match self.optional(field, source) {
            None => Ok(()),
            Some(v) if v.is_null() || v.is_string() => {
                into.insert(field.to_owned(), v.into_owned());
                Ok(())
            }
            Some(v) => Err(mismatch(field, source, "a string or null", &v)),
        }
    }

    /// Recipients: an id, a list of ids, inline users or objects, or a mix.
    /// Inline ones become identify / set-object payloads in `inline`.
    pub(super) fn recipients(
        &self,
        field: &str,
        source: &ValueSource,
        inline: &mut Inline,
    ) -> Result<Vec<RecipientRef>, PlanError> {
        self.recipients_keeping(field, source, inline, None)
    }

    /// [`Self::recipients`] for a trigger: also keeps each inline recipient's
    /// attributes in `kept`, in order, for the trigger call.
    pub(super) fn trigger_recipients(
        &self,
        field: &str,
        source: &ValueSource,
        inline: &mut Inline,
        kept: &mut Vec<InlineRecipient>,
    ) -> Result<Vec<RecipientRef>, PlanError> {
        self.recipients_keeping(field, source, inline, Some(kept))
    }

    fn recipients_keeping(
        &self,
        field: &str,
        source: &ValueSource,
        inline: &mut Inline,
        mut kept: Option<&mut Vec<InlineRecipient>>,
    ) -> Result<Vec<RecipientRef>, PlanError> {
        let value = self.present(source).ok_or_else(|| missing(field, source))?;
        let items: &[Value] = match value.as_ref() {
            Value::Array(items) => items,
            single => std::slice::from_ref(single),
        };
        if items.len() > MAX_RECIPIENTS {
            return Err(PlanError::TooManyRecipients {
                field: field.to_owned(),
                count: items.len(),
                limit: MAX_RECIPIENTS,
            });
        }
        if items.is_empty() {
            return Err(missing(field, source));
        }
        let mut refs = Vec::with_capacity(items.len());
        for (position, item) in items.iter().enumerate() {
            let (r, attributes) = recipient(field, source, item, inline, kept.is_some())?;
            if let (Some(kept), Some(attributes)) = (kept.as_deref_mut(), attributes) {
                kept.push(InlineRecipient {
                    position,
                    attributes,
                });
            }
            refs.push(r);
        }
        Ok(refs)
    }

    /// One recipient (a trigger's actor): a list is a type mismatch. An inline
    /// actor's attributes come back too, for the trigger call.
    pub(super) fn single_recipient(
        &self,
        field: &str,
        source: Option<&ValueSource>,
        inline: &mut Inline,
    ) -> Result<(Option<RecipientRef>, Option<Attributes>), PlanError> {
        let Some(source) = source else {
            return Ok((None, None));
        };
        match self.optional(field, source).filter(|v| !v.is_null()) {
            None => Ok((None, None)),
            Some(v) if v.is_array() => Err(mismatch(field, source, "one user id or object", &v)),
            Some(v) => recipient(field, source, &v, inline, true).map(|(r, a)| (Some(r), a)),
        }
    }

    /// A tenant: an id, or an inline tenant that becomes a set-tenant payload.
    pub(super) fn tenant(
        &self,
        field: &str,
        source: Option<&ValueSource>,
        inline: &mut Inline,
    ) -> Result<Option<String>, PlanError> {
        self.tenant_keeping(field, source, inline, false)
            .map(|(id, _)| id)
    }

    /// A tenant, and with `keep` an inline tenant's attributes, for the trigger call.
    pub(super) fn tenant_keeping(
        &self,
        field: &str,
        source: Option<&ValueSource>,
        inline: &mut Inline,
        keep: bool,
    ) -> Result<(Option<String>, Option<Attributes>), PlanError> {
        let Some(source) = source else {
            return Ok((None, None));
        };
        let Some(value) = self.optional(field, source).filter(|v| !v.is_null()) else {
            return Ok((None, None));
        };
        if let Value::Object(map) = value.as_ref() {
            let id = map.get("id").and_then(as_id).ok_or_else(|| {
                mismatch(
                    &format!("{field}.id"),
                    source,
                    "a string",
                    map.get("id").unwrap_or(&Value::Null),
                )
            })?;
            let attributes = without(map, &["id"]);
            let kept = (keep && !attributes.is_empty()).then(|| attributes.clone());
            if !attributes.is_empty() {
                inline.push(
                    field,
                    ActionPayload::SetTenant {
                        id: id.clone(),
                        attributes,
                    },
                );
            }
            return Ok((Some(id), kept));
        }
        as_id(&value)
            .map(|id| (Some(id), None))
            .ok_or_else(|| mismatch(field, source, "a tenant id or object", &value))
    }
}

fn without(map: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One recipient, and with `keep` an inline one's attributes (for the trigger call).
fn recipient(
    field: &str,
    source: &ValueSource,
    item: &Value,
    inline: &mut Inline,
    keep: bool,
) -> Result<(RecipientRef, Option<Attributes>), PlanError> {
    const EXPECTED: &str = "a user id, an inline user `{id, ...}` or an object `{id, collection}`";
    let Value::Object(map) = item else {
        return as_id(item)
            .map(|id| (RecipientRef::User(id), None))
            .ok_or_else(|| mismatch(field, source, EXPECTED, item));
    };
    let Some(id) = map.get("id").and_then(as_id) else {
        return Err(mismatch(
            &format!("{field}.id"),
            source,
            "a string",
            map.get("id").unwrap_or(&Value::Null),
        ));
    };
    match map.get("collection") {
        // A recipient is an object when `collection` is present (the product's rule).
        Some(Value::String(collection)) if !collection.is_empty() => {
            let attributes = without(map, &["id", "collection"]);
            let kept = (keep && !attributes.is_empty()).then(|| attributes.clone());
            if !attributes.is_empty() {
                inline.push(
                    field,
                    ActionPayload::SetObject {
                        collection: collection.clone(),
                        id: id.clone(),
                        attributes,
                    },
                );
            }
            let r = RecipientRef::Object {
                id,
                collection: collection.clone(),
            };
            Ok((r, kept))
        }
        Some(other) => Err(mismatch(
            &format!("{field}.collection"),
            source,
            "a non-empty string",
            other,
        )),
        None => {
            let attributes = without(map, &["id"]);
            // A trigger's inline user is identified even with nothing but its
            // id: the product upserts it, and a trigger reaches only
            // identified users (docs/platform-payloads.md, "Knock's API"), so
            // `{"id": "u1"}` is how a sender makes sure `u1` gets a run.
            let kept = keep.then(|| attributes.clone());
            if keep || !attributes.is_empty() {
                inline.push(
                    field,
                    ActionPayload::IdentifyUser {
                        user_id: id.clone(),
                        attributes,
                    },
                );
            }
            Ok((RecipientRef::User(id), kept))
        }
    }
}
