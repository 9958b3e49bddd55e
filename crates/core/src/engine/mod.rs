//! The mapping engine: (event, configuration) -> ordered action plans with
//! resolved payloads, plus a typed error for every action that cannot run.
//!
//! Built once per configuration; [`MappingEngine::plan`] does no parsing and
//! no lookups beyond one hash probe per event, so it can run on the request path.

mod identify;
mod resolve;

use std::{collections::HashMap, sync::Arc};

use serde_json::{Map, Value};

use crate::{
    ActionType,
    config::{Config, Mapping, SourceConfig, SourceKind},
    event::{Event, EventKind},
    path::PathInput,
    plan::{
        ActionPayload, ActionPlan, AudienceMember, PlanError, PlanOrigin, PlanOutcome,
        RecipientRef, SkipReason, TriggerData, TriggerInline,
    },
    reserved::{self, Entity},
};
use resolve::{Inline, Resolver};

/// Runtime active/inactive toggles (persisted by the store, set through the
/// admin API), by source key, environment and mapping id. They win over the
/// `active` flag in the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    by_source: HashMap<String, HashMap<String, HashMap<String, bool>>>,
}

impl Overrides {
    /// No overrides.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets one toggle.
    pub fn set(&mut self, source: &str, environment: &str, mapping: &str, active: bool) {
        self.by_source
            .entry(source.to_owned())
            .or_default()
            .entry(environment.to_owned())
            .or_default()
            .insert(mapping.to_owned(), active);
    }

    /// The override for one mapping, if any.
    pub fn get(&self, source: &str, environment: &str, mapping: &str) -> Option<bool> {
        self.by_source
            .get(source)?
            .get(environment)?
            .get(mapping)
            .copied()
    }
}

/// One source environment's mappings, indexed by event type and sorted into
/// execution order once, at build time.
struct SourceEnvIndex {
    identify: bool,
    by_event: HashMap<String, Vec<Mapping>>,
}

fn index_source(source: &SourceConfig) -> HashMap<String, SourceEnvIndex> {
    source
        .environments
        .iter()
        .map(|(env, settings)| {
            let mut by_event: HashMap<String, Vec<Mapping>> = HashMap::new();
            for m in &settings.mappings {
                by_event.entry(m.event.clone()).or_default().push(m.clone());
            }
            for list in by_event.values_mut() {
                // Stable: mappings of one action type keep their file order.
                list.sort_by_key(|m| m.action.rank());
            }
            (
                env.clone(),
                SourceEnvIndex {
                    identify: settings.identify && source.kind != SourceKind::HttpLegacy,
                    by_event,
                },
            )
        })
        .collect()
}

/// Plans actions for events. Cheap to share (`Arc`) between request handlers.
#[derive(Clone, Default)]
pub struct MappingEngine {
    // source key -> environment -> index; one `Arc` per source, so a new
    // engine for a changed source shares every other source's index.
    sources: HashMap<String, Arc<HashMap<String, SourceEnvIndex>>>,
}

impl MappingEngine {
    /// Indexes every source environment of `config`.
    pub fn new(config: &Config) -> Self {
        Self::for_sources(&config.sources)
    }

    /// Indexes every source environment of `sources`.
    pub fn for_sources<'a>(sources: impl IntoIterator<Item = &'a SourceConfig>) -> Self {
        Self {
            sources: sources
                .into_iter()
                .map(|s| (s.key.clone(), Arc::new(index_source(s))))
                .collect(),
        }
    }

    /// Replaces, adds (`Some`) or removes (`None`) one source in place. A
    /// copy of the engine shares every source's index (`Arc`): a new
    /// revision copies the engine once and sets each changed source, so
    /// applying n changes costs one copy of the map, not n.
    pub fn set_source(&mut self, key: &str, source: Option<&SourceConfig>) {
        match source {
            Some(s) => {
                self.sources
                    .insert(key.to_owned(), Arc::new(index_source(s)));
            }
            None => {
                self.sources.remove(key);
            }
        }
    }

    /// True when some mapping (or the identify toggle) could act on `event`:
    /// lets callers skip work for events nobody maps.
    pub fn has_mappings_for(&self, event: &Event) -> bool {
        self.index(event).is_some_and(|idx| {
            (event.kind == EventKind::Identify && idx.identify)
                || idx.by_event.contains_key(&event.event)
        })
    }

    fn index(&self, event: &Event) -> Option<&SourceEnvIndex> {
        self.sources.get(&event.source)?.get(&event.environment)
    }

    /// The plans for `event`, in execution order. An event of a source or
    /// environment the configuration does not know gets no plans.
    pub fn plan(&self, event: &Event, overrides: &Overrides) -> Vec<ActionPlan> {
        let mut plans = self.plan_by_reference(event, overrides);
        for plan in &mut plans {
            plan.resolve_event_data(&event.data);
        }
        plans
    }

    /// [`Self::plan`], except that a trigger whose data is the event's own
    /// `data` says so ([`TriggerData::OfEvent`]) instead of holding a copy.
    /// For a consumer that keeps the plans with their event, as the store
    /// does; anything else resolves them first
    /// ([`ActionPlan::resolve_event_data`]).
    pub fn plan_by_reference(&self, event: &Event, overrides: &Overrides) -> Vec<ActionPlan> {
        let Some(idx) = self.index(event) else {
            return Vec::new();
        };
        let mut staged: Vec<ActionPlan> = Vec::new();
        let resolver = Resolver {
            input: PathInput::of(event),
            unreached: std::cell::RefCell::new(Vec::new()),
        };
        if event.kind == EventKind::Identify && idx.identify {
            staged.push(identify::from_traits(event));
        }
        if let Some(mappings) = idx.by_event.get(&event.event) {
            for mapping in mappings {
                let active = overrides
                    .get(&event.source, &event.environment, &mapping.id)
                    .unwrap_or(mapping.active);
                let origin = PlanOrigin::Mapping {
                    mapping: mapping.id.clone(),
                };
                if !active {
                    staged.push(ActionPlan {
                        action: mapping.action,
                        origin,
                        outcome: PlanOutcome::Skipped {
                            reason: SkipReason::Inactive,
                        },
                        notes: Vec::new(),
                    });
                    continue;
                }
                let mut inline = Inline::default();
                let built = build(mapping, event, &resolver, &mut inline);
                let unreached = resolver.take_notes();
                match built {
                    Ok(payload) => {
                        // A trigger carries its inline entities itself (for sinks
                        // whose trigger call takes them); its inline plans say so.
                        let with_trigger = !inline.trigger.is_empty();
                        for (field, payload) in inline.payloads {
                            staged.push(ActionPlan {
                                action: payload.action_type(),
                                origin: PlanOrigin::Inline {
                                    mapping: mapping.id.clone(),
                                    field,
                                    with_trigger,
                                },
                                outcome: PlanOutcome::Planned { payload },
                                notes: Vec::new(),
                            });
                        }
                        let origin = if with_trigger {
                            PlanOrigin::MappingWithInline {
                                mapping: mapping.id.clone(),
                                inline: inline.trigger,
                            }
                        } else {
                            origin
                        };
                        staged.push(ActionPlan {
                            action: mapping.action,
                            origin,
                            outcome: PlanOutcome::Planned { payload },
                            notes: unreached,
                        });
                    }
                    // The action is skipped whole: its inline identifications
                    // would act for a trigger that never runs.
                    Err(error) => staged.push(ActionPlan {
                        action: mapping.action,
                        origin,
                        outcome: PlanOutcome::Skipped {
                            reason: SkipReason::Invalid { error },
                        },
                        notes: Vec::new(),
                    }),
                }
            }
        }
        staged.sort_by_key(|p| p.action.rank());
        for plan in &mut staged {
            conform_reserved(plan);
        }
        staged
    }
}

/// Moves misshapen reserved attributes out of the way in a planned payload
/// (the plan notes each) and in the inline attributes a trigger carries for
/// the same entities (their own inline plans carry those notes).
fn conform_reserved(plan: &mut ActionPlan) {
    let PlanOutcome::Planned { payload } = &mut plan.outcome else {
        return;
    };
    plan.notes.extend(reserved::conform_payload(payload));
    let (
        PlanOrigin::MappingWithInline { inline, .. },
        ActionPayload::TriggerWorkflow {
            recipients, actor, ..
        },
    ) = (&mut plan.origin, &*payload)
    else {
        return;
    };
    let entity = |r: Option<&RecipientRef>| match r {
        Some(RecipientRef::Object { .. }) => Entity::Object,
        _ => Entity::User,
    };
    for r in &mut inline.recipients {
        reserved::conform(entity(recipients.get(r.position)), &mut r.attributes);
    }
    if let Some(attributes) = &mut inline.actor {
        reserved::conform(entity(actor.as_ref()), attributes);
    }
    if let Some(attributes) = &mut inline.tenant {
        reserved::conform(Entity::Tenant, attributes);
    }
}

/// Resolves one mapping's parameters into its payload.
fn build(
    mapping: &Mapping,
    event: &Event,
    r: &Resolver<'_>,
    inline: &mut Inline,
) -> Result<ActionPayload, PlanError> {
    let p = &mapping.params;
    Ok(match mapping.action {
        ActionType::TriggerWorkflow => {
            let workflow = r.id("workflow", p.workflow.as_ref())?;
            let mut kept = Vec::new();
            let recipients = r.trigger_recipients(
                "recipients",
                p.recipients
                    .as_ref()
                    .ok_or_else(|| not_mapped("recipients"))?,
                inline,
                &mut kept,
            )?;
            let (actor, actor_inline) = r.single_recipient("actor", p.actor.as_ref(), inline)?;
            let (tenant, tenant_inline) =
                r.tenant_keeping("tenant", p.tenant.as_ref(), inline, true)?;
            inline.trigger = TriggerInline {
                recipients: kept,
                actor: actor_inline,
                tenant: tenant_inline,
            };
            let data = trigger_data(mapping, event, r)?;
            let cancellation_key =
                r.optional_id("cancellation_key", p.cancellation_key.as_ref())?;
            ActionPayload::TriggerWorkflow {
                workflow,
                recipients,
                actor,
                tenant,
                data,
                cancellation_key,
            }
        }
        ActionType::CancelWorkflow => {
            let workflow = r.id("workflow", p.workflow.as_ref())?;
            let cancellation_key = r.id("cancellation_key", p.cancellation_key.as_ref())?;
            let recipients = match &p.recipients {
                Some(source)
                    if r.optional("recipients", source)
                        .is_some_and(|v| !v.is_null()) =>
                {
                    Some(r.recipients("recipients", source, inline)?)
                }
                _ => None,
            };
            ActionPayload::CancelWorkflow {
                workflow,
                cancellation_key,
                recipients,
            }
        }
        ActionType::IdentifyUser => {
            let user_id = r.id("user_id", p.user_id.as_ref())?;
            let mut attributes = r
                .optional_object("properties", p.properties.as_ref())?
                .unwrap_or_default();
            for (name, source) in [
                ("name", &p.name),
                ("email", &p.email),
                ("phone_number", &p.phone_number),
                ("avatar", &p.avatar),
                ("locale", &p.locale),
                ("timezone", &p.timezone),
            ] {
                r.attribute(name, source.as_ref(), &mut attributes)?;
            }
            attributes.remove("id");
            ActionPayload::IdentifyUser {
                user_id,
                attributes,
            }
        }
        ActionType::DeleteUser => ActionPayload::DeleteUser {
            user_id: r.id("user_id", p.user_id.as_ref())?,
        },
        ActionType::SetObject => {
            let collection = r.id("collection", p.collection.as_ref())?;
            let id = r.id("object_id", p.object_id.as_ref())?;
            let mut attributes = r
                .optional_object("properties", p.properties.as_ref())?
                .unwrap_or_default();
            r.attribute("name", p.name.as_ref(), &mut attributes)?;
            attributes.remove("id");
            attributes.remove("collection");
            ActionPayload::SetObject {
                collection,
                id,
                attributes,
            }
        }
        ActionType::DeleteObject => ActionPayload::DeleteObject {
            collection: r.id("collection", p.collection.as_ref())?,
            id: r.id("object_id", p.object_id.as_ref())?,
        },
        ActionType::SetTenant => {
            let id = r.id("tenant_id", p.tenant_id.as_ref())?;
            let mut attributes = r
                .optional_object("properties", p.properties.as_ref())?
                .unwrap_or_default();
            r.attribute("name", p.name.as_ref(), &mut attributes)?;
            if let Some(settings) = r.optional_object("settings", p.settings.as_ref())? {
                attributes.insert("settings".to_owned(), Value::Object(settings));
            }
            attributes.remove("id");
            ActionPayload::SetTenant { id, attributes }
        }
        ActionType::DeleteTenant => ActionPayload::DeleteTenant {
            id: r.id("tenant_id", p.tenant_id.as_ref())?,
        },
        ActionType::Subscribe | ActionType::Unsubscribe => {
            let collection = r.id("collection", p.collection.as_ref())?;
            let object_id = r.id("object_id", p.object_id.as_ref())?;
            let recipients = r.recipients(
                "recipients",
                p.recipients
                    .as_ref()
                    .ok_or_else(|| not_mapped("recipients"))?,
                inline,
            )?;
            if mapping.action == ActionType::Subscribe {
                let properties = r
                    .optional_object("properties", p.properties.as_ref())?
                    .map(Value::Object);
                ActionPayload::Subscribe {
                    collection,
                    object_id,
                    recipients,
                    properties,
                }
            } else {
                ActionPayload::Unsubscribe {
                    collection,
                    object_id,
                    recipients,
                }
            }
        }
        ActionType::AddAudienceMember | ActionType::RemoveAudienceMember => {
            let audience = r.id("audience", p.audience.as_ref())?;
            let source = p.members.as_ref().ok_or_else(|| not_mapped("members"))?;
            let tenant = r.tenant("tenant", p.tenant.as_ref(), inline)?;
            let members = r
                .recipients("members", source, inline)?
                .into_iter()
                .map(|m| match m {
                    RecipientRef::User(user_id) => Ok(AudienceMember {
                        user_id,
                        tenant: tenant.clone(),
                    }),
                    RecipientRef::Object { .. } => Err(PlanError::TypeMismatch {
                        field: "members".to_owned(),
                        path: resolve::path_of(source),
                        expected: "user ids or inline users (audiences hold users only)".to_owned(),
                        found: "object".to_owned(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if mapping.action == ActionType::AddAudienceMember {
                ActionPayload::AddAudienceMember {
                    audience,
                    members,
                    create_audience: p.create_audience,
                }
            } else {
                ActionPayload::RemoveAudienceMember { audience, members }
            }
        }
    })
}

fn not_mapped(field: &str) -> PlanError {
    PlanError::MissingField {
        field: field.to_owned(),
        path: "(not mapped)".to_owned(),
    }
}

/// Trigger data: the event's data unless `data` or `data_fields` are mapped;
/// `data_fields` build an object (over `data` when both are given).
fn trigger_data(
    mapping: &Mapping,
    event: &Event,
    r: &Resolver<'_>,
) -> Result<TriggerData, PlanError> {
    let p = &mapping.params;
    if p.data.is_none() && p.data_fields.is_empty() {
        return Ok(match &event.data {
            Value::Object(_) => TriggerData::OfEvent,
            _ => TriggerData::Given(Value::Object(Map::new())),
        });
    }
    let mut data = r
        .optional_object("data", p.data.as_ref())?
        .unwrap_or_default();
    for (name, source) in &p.data_fields {
        if let Some(v) = r.optional(&format!("data_fields.{name}"), source) {
            data.insert(name.clone(), v.into_owned());
        }
    }
    Ok(TriggerData::Given(Value::Object(data)))
}
