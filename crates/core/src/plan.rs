//! Action plans: what the mapping engine decides for one event, with every
//! payload resolved, before anything runs. The store keeps plans in its outbox;
//! the sinks execute them.
//!
//! One part of a payload may refer to the event instead of holding a copy: a
//! trigger's data when it is the event's own `data` ([`TriggerData::OfEvent`]),
//! which only [`crate::engine::MappingEngine::plan_by_reference`] gives, for
//! a consumer that keeps the plan beside its event (the store).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ActionType;

/// The most recipients (or audience members) one action may carry, as in the
/// product's API; more skips the action with [`PlanError::TooManyRecipients`].
pub const MAX_RECIPIENTS: usize = 1_000;

/// A reference to a recipient: a user id, or an object in a collection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecipientRef {
    /// A user, by id.
    User(String),
    /// An object, by collection and id.
    Object {
        /// Object id.
        id: String,
        /// Collection.
        collection: String,
    },
}

/// An audience member: a user, optionally scoped to a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceMember {
    /// The user's id.
    pub user_id: String,
    /// The tenant the membership is scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// A resolved action: exactly what a sink needs, no paths left.
///
/// Attribute maps are merged into the stored entity as the product's API
/// does: keys present replace, `null` clears, absent keys stay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionPayload {
    /// Create or update a user.
    IdentifyUser {
        /// User id.
        user_id: String,
        /// `name`, `email`, `phone_number`, `avatar`, `locale`, `timezone` and custom properties.
        attributes: Map<String, Value>,
    },
    /// Delete a user.
    DeleteUser {
        /// User id.
        user_id: String,
    },
    /// Create or update an object.
    SetObject {
        /// Collection.
        collection: String,
        /// Object id.
        id: String,
        /// Properties to merge.
        attributes: Map<String, Value>,
    },
    /// Delete an object.
    DeleteObject {
        /// Collection.
        collection: String,
        /// Object id.
        id: String,
    },
    /// Create or update a tenant.
    SetTenant {
        /// Tenant id.
        id: String,
        /// `name`, `settings` and custom properties to merge.
        attributes: Map<String, Value>,
    },
    /// Delete a tenant.
    DeleteTenant {
        /// Tenant id.
        id: String,
    },
    /// Subscribe recipients to an object.
    Subscribe {
        /// The object's collection.
        collection: String,
        /// The object's id.
        object_id: String,
        /// Who subscribes.
        recipients: Vec<RecipientRef>,
        /// Subscription properties.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        properties: Option<Value>,
    },
    /// Unsubscribe recipients from an object.
    Unsubscribe {
        /// The object's collection.
        collection: String,
        /// The object's id.
        object_id: String,
        /// Who unsubscribes.
        recipients: Vec<RecipientRef>,
    },
    /// Add members to an audience.
    AddAudienceMember {
        /// Audience key.
        audience: String,
        /// Members to add.
        members: Vec<AudienceMember>,
        /// Create the audience when it does not exist.
        create_audience: bool,
    },
    /// Remove members from an audience.
    RemoveAudienceMember {
        /// Audience key.
        audience: String,
        /// Members to remove.
        members: Vec<AudienceMember>,
    },
    /// Cancel runs of a workflow.
    CancelWorkflow {
        /// Workflow key.
        workflow: String,
        /// The key given at trigger time.
        cancellation_key: String,
        /// Limit the cancel to these recipients; all when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipients: Option<Vec<RecipientRef>>,
    },
    /// Trigger a workflow.
    TriggerWorkflow {
        /// Workflow key.
        workflow: String,
        /// Recipients (inline ones were turned into earlier identify/set-object
        /// plans; their attributes are also kept on the plan's origin, see
        /// [`PlanOrigin::MappingWithInline`]).
        recipients: Vec<RecipientRef>,
        /// Who performed the action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<RecipientRef>,
        /// Tenant id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
        /// Template data.
        data: TriggerData,
        /// Key a later cancel can use.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancellation_key: Option<String>,
    },
}

/// A trigger's template data.
///
/// A mapping that maps neither `data` nor `data_fields` sends the event's
/// own `data` (its properties). A copy in every trigger cost a clone and a
/// drop of the event's largest part; a plan made for a consumer that keeps
/// it beside its event says [`Self::OfEvent`] instead, and that consumer
/// resolves it ([`ActionPlan::resolve_event_data`]).
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerData {
    /// The event's own `data`, not copied here.
    OfEvent,
    /// The data itself: mapped, given by an API call, or resolved.
    Given(Value),
}

impl TriggerData {
    /// The data, taking `event_data` (the event's `data`) for [`Self::OfEvent`].
    pub fn resolve<'a>(&'a self, event_data: &'a Value) -> &'a Value {
        match self {
            Self::OfEvent => event_data,
            Self::Given(v) => v,
        }
    }

    /// The data when this holds it: `None` for [`Self::OfEvent`].
    pub fn given(&self) -> Option<&Value> {
        match self {
            Self::OfEvent => None,
            Self::Given(v) => Some(v),
        }
    }
}

impl From<Value> for TriggerData {
    fn from(v: Value) -> Self {
        Self::Given(v)
    }
}

/// Compares the data held; [`TriggerData::OfEvent`] equals no value, since
/// it holds none.
impl PartialEq<Value> for TriggerData {
    fn eq(&self, other: &Value) -> bool {
        self.given() == Some(other)
    }
}

/// The data as JSON. [`TriggerData::OfEvent`] is written as `null` (the
/// engine and the resource API give a trigger an object otherwise); a
/// consumer that shows or sends a plan resolves it first.
impl Serialize for TriggerData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::OfEvent => s.serialize_unit(),
            Self::Given(v) => v.serialize(s),
        }
    }
}

/// Any JSON value reads as [`TriggerData::Given`]: whether a `null` meant
/// "the event's" is for the reader that wrote it to say.
impl<'de> Deserialize<'de> for TriggerData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::Given)
    }
}

impl ActionPayload {
    /// The action this payload belongs to.
    pub fn action_type(&self) -> ActionType {
        match self {
            Self::IdentifyUser { .. } => ActionType::IdentifyUser,
            Self::DeleteUser { .. } => ActionType::DeleteUser,
            Self::SetObject { .. } => ActionType::SetObject,
            Self::DeleteObject { .. } => ActionType::DeleteObject,
            Self::SetTenant { .. } => ActionType::SetTenant,
            Self::DeleteTenant { .. } => ActionType::DeleteTenant,
            Self::Subscribe { .. } => ActionType::Subscribe,
            Self::Unsubscribe { .. } => ActionType::Unsubscribe,
            Self::AddAudienceMember { .. } => ActionType::AddAudienceMember,
            Self::RemoveAudienceMember { .. } => ActionType::RemoveAudienceMember,
            Self::CancelWorkflow { .. } => ActionType::CancelWorkflow,
            Self::TriggerWorkflow { .. } => ActionType::TriggerWorkflow,
        }
    }
}

/// Why an action could not be planned. Each variant names the action parameter
/// (`field`) and, where one was configured, the path it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PlanError {
    /// A required parameter resolved to nothing.
    #[error("missing required field `{field}`: path `{path}` resolved to nothing")]
    MissingField {
        /// Action parameter.
        field: String,
        /// Configured (or default) path.
        path: String,
    },
    /// A parameter resolved to a value of the wrong type.
    #[error("type mismatch for `{field}` (path `{path}`): expected {expected}, found {found}")]
    TypeMismatch {
        /// Action parameter.
        field: String,
        /// Configured (or default) path.
        path: String,
        /// What the parameter takes.
        expected: String,
        /// What the event had.
        found: String,
    },
    /// More than [`MAX_RECIPIENTS`] recipients or members.
    #[error("`{field}` has {count} entries; at most {limit} are allowed")]
    TooManyRecipients {
        /// Action parameter.
        field: String,
        /// How many there were.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// Something the engine changed in a payload so the product accepts it,
/// kept on the plan so the event log says what was sent and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PlanNote {
    /// An attribute under a name the product reserves did not have the shape
    /// the product requires there (see [`crate::reserved`]): sent as is, it
    /// would have had the whole call refused.
    ReservedKey {
        /// The reserved name (`preferences`, `channel_data`, ...).
        key: String,
        /// The shape the product requires under it.
        expected: String,
        /// The custom property the value was kept under; `None` when it was
        /// dropped (a `null`, which cannot clear a key the product refuses
        /// `null` for, or a value whose other name the attributes already use).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept_as: Option<String>,
    },
    /// An optional parameter's path reached nothing in this event, so the
    /// parameter was left out of the call. (A required one skips the action
    /// with [`PlanError::MissingField`] instead.)
    PathReachedNothing {
        /// The parameter (`tenant`, `data_fields.plan`, ...).
        parameter: String,
        /// Its path as written in the mapping.
        path: String,
    },
}

impl std::fmt::Display for PlanNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReservedKey {
                key,
                expected,
                kept_as: Some(other),
            } => write!(
                f,
                "`{key}` is reserved by the product for {expected}; kept as the custom property `{other}`"
            ),
            Self::ReservedKey {
                key,
                expected,
                kept_as: None,
            } => write!(
                f,
                "`{key}` is reserved by the product for {expected}; dropped"
            ),
            Self::PathReachedNothing { parameter, path } => write!(
                f,
                "`{parameter}` reads `{path}`, which this event does not have; left out"
            ),
        }
    }
}

/// Why a plan will not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// The mapping is inactive in this environment.
    Inactive,
    /// The action's parameters could not be resolved.
    Invalid {
        /// What was wrong.
        error: PlanError,
    },
}

/// The attributes of a trigger's inline recipients, actor and tenant, for a
/// sink whose trigger call takes inline identification (the product's API
/// upserts them before it runs the workflow). Ids stay in the trigger payload;
/// this holds only what the ids alone do not say, so a trigger with no inline
/// entity needs none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerInline {
    /// The inline recipients, in the order of the payload's `recipients`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<InlineRecipient>,
    /// The actor's attributes, when the actor was inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Map<String, Value>>,
    /// The tenant's attributes, when the tenant was inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Map<String, Value>>,
}

impl TriggerInline {
    /// True when the trigger named no inline entity.
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty() && self.actor.is_none() && self.tenant.is_none()
    }

    /// The attributes of the recipient at `position`, when it was inline.
    pub fn recipient(&self, position: usize) -> Option<&Map<String, Value>> {
        self.recipients
            .binary_search_by_key(&position, |r| r.position)
            .ok()
            .map(|i| &self.recipients[i].attributes)
    }
}

/// One inline recipient of a trigger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineRecipient {
    /// Its position in the payload's `recipients`.
    pub position: usize,
    /// Its attributes, without `id` and `collection`.
    pub attributes: Map<String, Value>,
}

/// What made the engine produce a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlanOrigin {
    /// A configured mapping, by id.
    Mapping {
        /// The mapping's id (unique within its source environment).
        mapping: String,
    },
    /// A configured `trigger_workflow` mapping whose recipients, actor or
    /// tenant were inline. Every inline entity is also an earlier
    /// [`PlanOrigin::Inline`] plan (which the local and webhook sinks run);
    /// the knock sink instead sends the entities inside the trigger call, as
    /// the product does, and those plans make no call of their own.
    ///
    /// Kept beside the payload rather than in it: the payload is what every
    /// sink acts on, and it stays the same for every sink.
    MappingWithInline {
        /// The mapping's id (unique within its source environment).
        mapping: String,
        /// The inline entities' attributes.
        inline: TriggerInline,
    },
    /// An inline user, object or tenant found in a mapping's parameters.
    Inline {
        /// The mapping whose parameters held it.
        mapping: String,
        /// The parameter (`recipients`, `actor`, `tenant`, ...).
        field: String,
        /// True when the mapping is a trigger that carries this entity inline
        /// too ([`PlanOrigin::MappingWithInline`]): a sink that sends inline
        /// identification with the trigger call needs no call for this plan.
        /// Plans stored before this existed decode as `false`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        with_trigger: bool,
    },
    /// The source environment's identify toggle, for an `identify` call.
    IdentifyToggle,
}

impl PlanOrigin {
    /// The id of the mapping behind the plan; `None` for the identify toggle.
    pub fn mapping(&self) -> Option<&str> {
        match self {
            Self::Mapping { mapping }
            | Self::MappingWithInline { mapping, .. }
            | Self::Inline { mapping, .. } => Some(mapping),
            Self::IdentifyToggle => None,
        }
    }

    /// True for a configured mapping's own plan (not an inline entity's, not the toggle's).
    pub fn is_mapping(&self) -> bool {
        matches!(self, Self::Mapping { .. } | Self::MappingWithInline { .. })
    }

    /// The inline entities a trigger carries, when it has any.
    pub fn trigger_inline(&self) -> Option<&TriggerInline> {
        match self {
            Self::MappingWithInline { inline, .. } => Some(inline),
            _ => None,
        }
    }

    /// True for an inline entity that its trigger also carries inline.
    pub fn is_sent_with_trigger(&self) -> bool {
        matches!(
            self,
            Self::Inline {
                with_trigger: true,
                ..
            }
        )
    }
}

/// The decision for one action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlanOutcome {
    /// Ready to run with this payload.
    Planned {
        /// The resolved payload.
        payload: ActionPayload,
    },
    /// Logged as skipped, never run.
    Skipped {
        /// Why.
        #[serde(flatten)]
        reason: SkipReason,
    },
}

/// One planned (or skipped) action for an event, in execution order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionPlan {
    /// The action.
    pub action: ActionType,
    /// What produced it.
    pub origin: PlanOrigin,
    /// Run or skip.
    #[serde(flatten)]
    pub outcome: PlanOutcome,
    /// What the engine changed in the payload, and why. Plans stored before
    /// notes existed decode with none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<PlanNote>,
}

impl ActionPlan {
    /// The payload, when the plan will run.
    pub fn payload(&self) -> Option<&ActionPayload> {
        match &self.outcome {
            PlanOutcome::Planned { payload } => Some(payload),
            PlanOutcome::Skipped { .. } => None,
        }
    }

    /// True when the plan will run.
    pub fn is_planned(&self) -> bool {
        matches!(self.outcome, PlanOutcome::Planned { .. })
    }

    /// The trigger's data, when the plan is a planned trigger.
    pub fn trigger_data(&self) -> Option<&TriggerData> {
        match self.payload() {
            Some(ActionPayload::TriggerWorkflow { data, .. }) => Some(data),
            _ => None,
        }
    }

    /// [`Self::trigger_data`], to change.
    pub fn trigger_data_mut(&mut self) -> Option<&mut TriggerData> {
        match &mut self.outcome {
            PlanOutcome::Planned {
                payload: ActionPayload::TriggerWorkflow { data, .. },
            } => Some(data),
            _ => None,
        }
    }

    /// True when the plan is a trigger whose data is [`TriggerData::OfEvent`].
    pub fn refers_to_event_data(&self) -> bool {
        matches!(self.trigger_data(), Some(TriggerData::OfEvent))
    }

    /// Copies `event_data` (the planned event's `data`) into a trigger whose
    /// data is [`TriggerData::OfEvent`], so the plan stands on its own.
    pub fn resolve_event_data(&mut self, event_data: &Value) {
        self.resolve_event_data_with(|| event_data.clone());
    }

    /// [`Self::resolve_event_data`] with the data made by `event_data`, which
    /// runs only when the plan refers to it (a caller may move the data in).
    pub fn resolve_event_data_with(&mut self, event_data: impl FnOnce() -> Value) {
        if let Some(data @ TriggerData::OfEvent) = self.trigger_data_mut() {
            *data = TriggerData::Given(event_data());
        }
    }
}
