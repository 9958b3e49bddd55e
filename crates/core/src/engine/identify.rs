//! The built-in handling of `identify` calls (docs/product-decisions.md,
//! "Mappings"): `userId` -> id, `traits.phone` -> `phone_number`, every other
//! trait kept by name (the product's reserved user fields, `name`, `email`,
//! `preferences`, ..., are checked for their shape with every other plan's, see
//! [`crate::reserved`]; the rest become custom properties).

use serde_json::{Map, Value};

use crate::{
    ActionType,
    event::Event,
    plan::{ActionPayload, ActionPlan, PlanError, PlanOrigin, PlanOutcome, SkipReason},
};

/// Top-level `traits` when it is an object, else `context.traits` (RudderStack
/// puts them there), else none.
pub(super) fn traits(raw: &Value) -> Option<&Map<String, Value>> {
    raw.get("traits")
        .and_then(Value::as_object)
        .or_else(|| raw.pointer("/context/traits").and_then(Value::as_object))
}

pub(super) fn from_traits(event: &Event) -> ActionPlan {
    let origin = PlanOrigin::IdentifyToggle;
    let Some(user_id) = event.user_id.clone().filter(|id| !id.is_empty()) else {
        return ActionPlan {
            action: ActionType::IdentifyUser,
            origin,
            outcome: PlanOutcome::Skipped {
                reason: SkipReason::Invalid {
                    error: PlanError::MissingField {
                        field: "user_id".to_owned(),
                        path: "userId".to_owned(),
                    },
                },
            },
            notes: Vec::new(),
        };
    };
    let mut attributes = Map::new();
    if let Some(traits) = traits(&event.raw) {
        for (key, value) in traits {
            match key.as_str() {
                // The user's id is `userId`; a trait `id` would fight it.
                "id" => {}
                // `phone_number` wins when both are sent.
                "phone" if traits.contains_key("phone_number") => {}
                "phone" => {
                    attributes.insert("phone_number".to_owned(), value.clone());
                }
                _ => {
                    attributes.insert(key.clone(), value.clone());
                }
            }
        }
    }
    ActionPlan {
        action: ActionType::IdentifyUser,
        origin,
        outcome: PlanOutcome::Planned {
            payload: ActionPayload::IdentifyUser {
                user_id,
                attributes,
            },
        },
        notes: Vec::new(),
    }
}
