//! Append items for the crate's own tests, one copy for both backends.

use std::time::Duration;

use chrono::Utc;
use tributary_core::{
    action::ActionType,
    dedup::DedupScope,
    event::EventId,
    plan::{ActionPayload, ActionPlan, PlanOrigin, PlanOutcome, RecipientRef, TriggerData},
};

use crate::AppendItem;

/// A track event received now with message id `key`, deduplicated on it
/// for an hour, its data padded with `pad` bytes, with no plans.
pub(crate) fn keyed(key: &str, pad: usize) -> AppendItem {
    let now = Utc::now();
    let mut event = crate::stored_event::tests::event(
        serde_json::json!({ "pad": "x".repeat(pad) }),
        serde_json::json!({"type": "track"}),
    );
    event.id = EventId::generate(now);
    event.timestamp = now;
    event.received_at = now;
    event.message_id = Some(key.into());
    AppendItem {
        dedup: Some(DedupScope {
            key: key.into(),
            event_type: event.event.clone(),
            source: event.source.clone(),
            environment: event.environment.clone(),
            window: Duration::from_secs(3600),
        }),
        event,
        plans: Vec::new(),
        provenance: Default::default(),
    }
}

/// Mapping `m1`'s plan to trigger `order-confirmation` for users
/// `recipients` with `data`.
pub(crate) fn trigger_plan(data: TriggerData, recipients: &[&str]) -> ActionPlan {
    ActionPlan {
        action: ActionType::TriggerWorkflow,
        origin: PlanOrigin::Mapping {
            mapping: "m1".into(),
        },
        outcome: PlanOutcome::Planned {
            payload: ActionPayload::TriggerWorkflow {
                workflow: "order-confirmation".into(),
                recipients: recipients
                    .iter()
                    .map(|id| RecipientRef::User((*id).into()))
                    .collect(),
                actor: None,
                tenant: None,
                data,
                cancellation_key: None,
            },
        },
        notes: Vec::new(),
    }
}
