//! The mapping engine alone: a configuration, an event, the plans it gives.
//! No store, no HTTP, no async: what a service that only wants Tributary's
//! mappings would use.
//!
//! Run: `cargo run -p tributary-core --example plan_events`. CI runs it
//! through its test.

use serde_json::json;
use tributary_core::{
    MappingEngine, Overrides, config,
    event::{Event, EventId, EventKind},
    plan::PlanOutcome,
};

const CONFIG: &str = r#"
[environments.production]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.production]
token = "tok_plan_events_example_012345"

[[sources.environments.production.mappings]]
event = "Order Completed"
action = "trigger_workflow"
workflow = "order-receipt"
recipients = "userId"
data_fields = { total = "properties.total", coupon = "properties.coupon" }
"#;

/// The plans for one `Order Completed` track call, as (action, outcome) lines.
fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let config = config::load("example.toml", CONFIG, &|_| None)?;
    let engine = MappingEngine::new(&config);
    let now = chrono::Utc::now();
    let raw = json!({"type": "track", "event": "Order Completed", "userId": "u-7",
                     "properties": {"total": 129.5}});
    let event = Event {
        id: EventId::generate(now),
        environment: "production".into(),
        source: "web".into(),
        kind: EventKind::Track,
        event: "Order Completed".into(),
        user_id: Some("u-7".into()),
        anonymous_id: None,
        data: raw["properties"].clone(),
        timestamp: now,
        received_at: now,
        message_id: None,
        raw,
        headers: Default::default(),
        preprocess: None,
    };
    let mut lines = Vec::new();
    for plan in engine.plan(&event, &Overrides::none()) {
        let outcome = match &plan.outcome {
            PlanOutcome::Planned { payload } => serde_json::to_string(payload)?,
            other => format!("{other:?}"),
        };
        lines.push(format!("{}: {outcome}", plan.action));
        // `coupon` was not in this event: the plan says so.
        for note in &plan.notes {
            lines.push(format!("  note: {note}"));
        }
    }
    Ok(lines)
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    for line in run()? {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_plans_a_trigger_and_notes_the_missing_coupon() {
        let lines = super::run().unwrap();
        assert!(lines[0].starts_with("trigger_workflow: "), "{lines:?}");
        assert!(lines[0].contains("\"total\":129.5"), "{lines:?}");
        assert!(lines[1].contains("properties.coupon"), "{lines:?}");
    }
}
