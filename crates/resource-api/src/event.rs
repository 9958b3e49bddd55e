//! Resource calls as normalized events: kind `resource`, the event type the
//! operation's name, and the call itself as the action plans.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tributary_core::{
    event::{Event, EventId, EventKind, Headers},
    plan::{ActionPayload, ActionPlan, PlanOrigin, PlanOutcome, TriggerInline},
};

/// The mapping name recorded as the origin of a resource call's plans:
/// core has no origin variant for "the call itself" yet, so the plans name
/// a pseudo-mapping `api:<event type>`.
pub const RESOURCE_ORIGIN_PREFIX: &str = "api:";

/// Where an event comes from and when, for [`resource_event`].
#[derive(Clone, Debug)]
pub struct EventContext {
    /// The event id.
    pub id: EventId,
    /// Source key.
    pub source: String,
    /// Environment slug.
    pub environment: String,
    /// Receipt time (also the event time: the API carries none).
    pub received_at: DateTime<Utc>,
    /// Request headers, secrets removed.
    pub headers: Headers,
}

/// A resource event: `data` is the body, `raw` the request.
pub fn resource_event(
    ctx: EventContext,
    event_type: &str,
    user_id: Option<String>,
    data: Value,
    raw: Value,
    message_id: Option<String>,
) -> Event {
    Event {
        id: ctx.id,
        environment: ctx.environment,
        source: ctx.source,
        kind: EventKind::Resource,
        event: event_type.to_owned(),
        user_id,
        anonymous_id: None,
        data,
        timestamp: ctx.received_at,
        received_at: ctx.received_at,
        message_id,
        raw,
        headers: ctx.headers,
        preprocess: None,
    }
}

/// A call's payloads as plans, in order. `inline` is what a trigger call
/// named inline ([`crate::ResourceCall::trigger_inline`]; empty for
/// anything else): its identify/set payloads, which come first, are then
/// marked as sent with the trigger and the trigger carries their attributes,
/// exactly as the mapping engine plans a mapped trigger, so a sink whose
/// trigger call takes inline identification makes one call.
pub fn resource_plans(
    event_type: &str,
    payloads: Vec<ActionPayload>,
    inline: TriggerInline,
) -> Vec<ActionPlan> {
    let mapping = format!("{RESOURCE_ORIGIN_PREFIX}{event_type}");
    let with_trigger = !inline.is_empty()
        && matches!(payloads.last(), Some(ActionPayload::TriggerWorkflow { .. }));
    if !with_trigger {
        return payloads
            .into_iter()
            .map(|payload| ActionPlan {
                action: payload.action_type(),
                origin: PlanOrigin::Mapping {
                    mapping: mapping.clone(),
                },
                outcome: PlanOutcome::Planned { payload },
                notes: Vec::new(),
            })
            .collect();
    }
    // The trigger parser pushes recipients' inline payloads, then the
    // actor's, then the tenant's: the counts say which field each came from.
    let mut fields = Vec::with_capacity(payloads.len());
    fields.extend(std::iter::repeat_n("recipients", inline.recipients.len()));
    fields.extend(inline.actor.as_ref().map(|_| "actor"));
    fields.extend(inline.tenant.as_ref().map(|_| "tenant"));
    let last = payloads.len() - 1;
    debug_assert_eq!(fields.len(), last, "one inline payload per inline entity");
    let mut inline = Some(inline);
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let origin = if i == last {
                PlanOrigin::MappingWithInline {
                    mapping: mapping.clone(),
                    inline: inline.take().unwrap_or_default(),
                }
            } else {
                PlanOrigin::Inline {
                    mapping: mapping.clone(),
                    field: fields.get(i).copied().unwrap_or("recipients").to_owned(),
                    with_trigger: true,
                }
            };
            ActionPlan {
                action: payload.action_type(),
                origin,
                outcome: PlanOutcome::Planned { payload },
                notes: Vec::new(),
            }
        })
        .collect()
}

/// A workflow run id derived from the event that triggered it: the event
/// id's 128 bits as an RFC 9562 version-8 UUID. A replayed Idempotency-Key
/// maps to the original event and so to the same run id, with nothing stored.
pub fn workflow_run_id(event: EventId) -> String {
    let mut v = event.as_u128();
    v = (v & !(0xF_u128 << 76)) | (0x8_u128 << 76);
    v = (v & !(0x3_u128 << 62)) | (0x2_u128 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_uuid_shaped_and_deterministic() {
        let id = EventId::from_parts(1_700_000_000_000, 42);
        let a = workflow_run_id(id);
        assert_eq!(a, workflow_run_id(id));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(
            a,
            workflow_run_id(EventId::from_parts(1_700_000_000_000, 43))
        );
    }
}
