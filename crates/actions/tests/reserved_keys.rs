//! Issue 18 item 12: a CDP trait (or mapped property, or inline attribute)
//! under a name the product reserves on users, objects and tenants
//! (`preferences`, `channel_data`, `created_at`, `settings`, ...) must never
//! make a call the product refuses. Events are planned by the mapping engine,
//! turned into the knock sink's API calls, and each call's body is checked
//! against our extraction of the product's request schemas
//! (fixtures/knock-api/request-schemas.json).

#[path = "support/schema.rs"]
mod schema;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tributary_actions::{ActionRequest, api_calls};
use tributary_core::{
    MappingEngine, Overrides, config,
    event::{Event, EventId, EventKind},
    plan::PlanNote,
};

use schema::Schemas;

const TOKEN: &str = "tok_reserved_0123456789abcdef";

/// The identify toggle (on by default for segment), a trigger whose
/// recipients, actor and tenant may be inline, and set / identify mappings
/// whose `properties` come from the event.
fn engine() -> MappingEngine {
    let text = format!(
        r#"
[environments.development]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.development]
token = "{TOKEN}"

[[sources.environments.development.mappings]]
id = "notify"
event = "Notify"
action = "trigger_workflow"
workflow = "w"
recipients = "properties.to"
actor = "properties.actor"
tenant = "properties.org"

[[sources.environments.development.mappings]]
id = "object"
event = "Object"
action = "set_object"
collection = "projects"
object_id = "properties.id"
properties = "properties.attributes"

[[sources.environments.development.mappings]]
id = "tenant"
event = "Tenant"
action = "set_tenant"
tenant_id = "properties.id"
properties = "properties.attributes"

[[sources.environments.development.mappings]]
id = "user"
event = "User"
action = "identify_user"
user_id = "properties.id"
properties = "properties.attributes"
"#
    );
    let config = config::load("t.toml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    MappingEngine::new(&config)
}

fn event(kind: EventKind, name: &str, raw: Value) -> Event {
    let at = chrono::DateTime::from_timestamp_millis(1_740_823_200_000).unwrap();
    Event {
        id: EventId::from_parts(1, 1),
        environment: "development".into(),
        source: "web".into(),
        kind,
        event: name.into(),
        user_id: raw.get("userId").and_then(Value::as_str).map(str::to_owned),
        anonymous_id: None,
        data: raw.get("properties").cloned().unwrap_or(json!({})),
        timestamp: at,
        received_at: at,
        message_id: None,
        raw,
        headers: Default::default(),
        preprocess: None,
    }
}

fn identify(traits: Value) -> Event {
    event(
        EventKind::Identify,
        "identify",
        json!({"type": "identify", "userId": "u1", "traits": traits}),
    )
}

fn track(name: &str, properties: Value) -> Event {
    event(
        EventKind::Track,
        name,
        json!({"type": "track", "event": name, "userId": "u1", "properties": properties}),
    )
}

/// The request schema a call's body must satisfy.
fn schema_of(path: &[String]) -> Option<&'static str> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["v1", "users", _] => Some("IdentifyUserRequest"),
        ["v1", "objects", _, _] => Some("SetObjectRequest"),
        ["v1", "tenants", _] => Some("SetTenantRequest"),
        ["v1", "workflows", _, "trigger"] => Some("TriggerWorkflowRequest"),
        _ => None,
    }
}

/// Every body the knock sink would send for `event`, with its schema, and
/// every note the plans carry.
fn calls(engine: &MappingEngine, event: &Event) -> (Vec<(&'static str, Value)>, Vec<PlanNote>) {
    let mut bodies = Vec::new();
    let mut notes = Vec::new();
    for (i, plan) in engine
        .plan(event, &Overrides::none())
        .into_iter()
        .enumerate()
    {
        notes.extend(plan.notes.iter().cloned());
        let Some(payload) = plan.payload().cloned() else {
            continue;
        };
        let request = ActionRequest {
            action_id: format!("a{i}"),
            event_id: event.id.to_string(),
            environment: event.environment.clone(),
            source: event.source.clone(),
            payload,
            origin: plan.origin.clone(),
            attempt: 1,
        };
        for call in api_calls(&request) {
            if let (Some(schema), Some(body)) = (schema_of(&call.path), call.body) {
                bodies.push((schema, body));
            }
        }
    }
    (bodies, notes)
}

fn assert_all_valid(schemas: &Schemas, bodies: &[(&'static str, Value)]) {
    assert!(!bodies.is_empty(), "no call was made");
    for (schema, body) in bodies {
        if let Err(e) = schemas.check(schema, body) {
            panic!("{schema} refuses {body}: {e}");
        }
    }
}

fn one(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    Value::Object(m)
}

/// Values of the wrong shape for each reserved name, as CDP traits carry them.
fn wrong_values() -> Vec<(&'static str, Value)> {
    vec![
        ("preferences", json!({"newsletter": true})),
        ("preferences", json!("all")),
        (
            "preferences",
            json!({"default": {"channel_types": {"email": "yes"}}}),
        ),
        ("channel_data", json!({"ios": "token-1"})),
        ("channel_data", json!(["t1"])),
        ("channel_data", json!({"c": {"tokens": "t1"}})),
        ("created_at", json!(1_700_000_000)),
        ("created_at", json!("2024-05-22")),
        ("name", json!({"first": "Ada", "last": "Lovelace"})),
        ("email", json!(["a@b.c"])),
        ("phone_number", json!(15551234567u64)),
        ("avatar", json!({"url": "x"})),
        ("locale", json!(7)),
        ("timezone", json!(-5)),
        ("settings", json!("dark")),
        ("settings", json!({"branding": {"primary_color": 3}})),
    ]
}

/// Values of the reserved shape: they reach the product unchanged.
fn right_values() -> Vec<(&'static str, Value)> {
    vec![
        (
            "preferences",
            json!({"default": {
                "channel_types": {"email": true, "sms": {"conditions": [
                    {"variable": "recipient.country", "operator": "equal_to", "argument": "US"}]}},
                "workflows": {"dinosaurs-loose": {"channel_types": {"email": true}}},
                "categories": {"marketing": false},
                "commercial_subscribed": true,
                "__persistence_strategy__": "merge"}}),
        ),
        (
            "channel_data",
            json!({
                "97c5837d-c65c-4d54-aa39-080eeb81c69d": {"tokens": ["push_token_123"]},
                "c2": {"connections": [{"incoming_webhook": {"url": "https://example.com/h"}}]},
                "c3": {"player_ids": ["97c5837d-c65c-4d54-aa39-080eeb81c69d"]},
            }),
        ),
        ("created_at", json!("2024-05-22T12:00:00Z")),
        ("name", json!("Ada")),
        ("timezone", json!("America/New_York")),
        (
            "settings",
            json!({"branding": {"primary_color": "#ffffff"}, "preference_set": {"channel_types": {"email": false}}}),
        ),
    ]
}

/// The events that put `attributes` on a user (identify call, identify
/// mapping, inline recipient and actor), an object (set mapping, inline
/// recipient) and a tenant (set mapping, inline tenant).
fn carriers(attributes: &Value) -> Vec<Event> {
    let inline = |id: &str, extra: Option<(&str, &str)>| {
        let mut m = attributes.as_object().cloned().unwrap_or_default();
        m.insert("id".into(), json!(id));
        if let Some((k, v)) = extra {
            m.insert(k.into(), json!(v));
        }
        Value::Object(m)
    };
    vec![
        identify(attributes.clone()),
        track("User", json!({"id": "u2", "attributes": attributes})),
        track("Object", json!({"id": "p1", "attributes": attributes})),
        track("Tenant", json!({"id": "t1", "attributes": attributes})),
        track(
            "Notify",
            json!({
                "to": ["u9", inline("u3", None), inline("p2", Some(("collection", "projects")))],
                "actor": inline("u4", None),
                "org": inline("t2", None),
            }),
        ),
    ]
}

#[test]
fn a_misshapen_reserved_attribute_never_makes_a_refused_call() {
    let schemas = Schemas::load();
    let engine = engine();
    for (key, value) in wrong_values() {
        let attributes = one(key, value.clone());
        for event in carriers(&attributes) {
            let (bodies, _) = calls(&engine, &event);
            assert_all_valid(&schemas, &bodies);
            for (schema, body) in &bodies {
                // The value is kept under the other name wherever the
                // entity reserves the name, and as it is elsewhere.
                let bodies_with_it: Vec<&Value> = match *schema {
                    "TriggerWorkflowRequest" => body["recipients"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain([&body["actor"], &body["tenant"]])
                        .filter(|v| v.is_object())
                        .collect(),
                    _ => vec![body],
                };
                for b in bodies_with_it {
                    let kept = b.get(key) == Some(&value)
                        || b.get(format!("custom_{key}").as_str()) == Some(&value);
                    assert!(kept, "{key}: {value} lost from {b}");
                }
            }
        }
    }
}

#[test]
fn the_schema_refuses_each_misshapen_value_as_it_was_sent() {
    // Without the renaming these bodies would be sent: each is refused, so
    // the test above would fail if the engine passed them through.
    let schemas = Schemas::load();
    let entity_of = |key: &str| match key {
        "settings" => "SetTenantRequest",
        _ => "IdentifyUserRequest",
    };
    for (key, value) in wrong_values() {
        let body = one(key, value.clone());
        assert!(
            schemas.check(entity_of(key), &body).is_err(),
            "the schema takes {body}"
        );
    }
    let engine = engine();
    let (bodies, notes) = calls(
        &engine,
        &identify(json!({"preferences": {"newsletter": true}})),
    );
    assert_eq!(
        bodies[0].1,
        json!({"custom_preferences": {"newsletter": true}})
    );
    assert_eq!(
        notes,
        [PlanNote::ReservedKey {
            key: "preferences".into(),
            expected: "preference sets (an object of preference set id -> preference set) or null"
                .into(),
            kept_as: Some("custom_preferences".into()),
        }]
    );
}

#[test]
fn a_reserved_attribute_of_the_right_shape_reaches_the_product_unchanged() {
    let schemas = Schemas::load();
    let engine = engine();
    for (key, value) in right_values() {
        let attributes = one(key, value.clone());
        let events = carriers(&attributes);
        // A user (every name but `settings` is reserved for users; that one
        // is an ordinary custom property there) and a tenant.
        for event in [&events[0], &events[3]] {
            let (bodies, notes) = calls(&engine, event);
            assert_all_valid(&schemas, &bodies);
            assert_eq!(bodies[0].1, attributes, "{key}");
            assert!(notes.is_empty(), "{notes:?}");
        }
    }
}

/// JSON values from a vocabulary that often makes the reserved shapes (and
/// often almost makes them).
fn shaped_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "tokens",
        "devices",
        "token",
        "target_arn",
        "target_arns",
        "player_ids",
        "connections",
        "incoming_webhook",
        "url",
        "channel_id",
        "access_token",
        "ms_teams_tenant_id",
        "default",
        "channel_types",
        "channels",
        "email",
        "sms",
        "workflows",
        "categories",
        "conditions",
        "variable",
        "operator",
        "argument",
        "__persistence_strategy__",
        "commercial_subscribed",
        "branding",
        "preference_set",
        "primary_color",
        "97c5837d-c65c-4d54-aa39-080eeb81c69d",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "x",
            "equal_to",
            "merge",
            "2024-05-22T12:00:00Z",
            "2024-05-22",
            "97c5837d-c65c-4d54-aa39-080eeb81c69d",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 48, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "preferences",
        "channel_data",
        "created_at",
        "settings",
        "name",
        "email",
        "phone_number",
        "avatar",
        "locale",
        "timezone",
        "custom_preferences",
        "plan",
    ]);
    prop::collection::btree_map(names, shaped_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the attributes, on whichever entity, every call the knock
    /// sink makes has a body the product's request schema accepts.
    #[test]
    fn arbitrary_attributes_never_make_a_refused_call(attributes in attributes()) {
        let schemas = Schemas::load();
        let engine = engine();
        for event in carriers(&attributes) {
            let (bodies, _) = calls(&engine, &event);
            for (schema, body) in &bodies {
                let checked = schemas.check(schema, body);
                prop_assert!(checked.is_ok(), "{} refuses {}: {:?}", schema, body, checked);
            }
        }
    }
}
