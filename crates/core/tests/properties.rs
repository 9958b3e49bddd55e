//! Properties: parsers never panic; the engine never panics on arbitrary
//! events and arbitrary valid configurations, and plans deterministically in
//! execution order, one plan per matching mapping.

use chrono::DateTime;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tributary_core::{
    ActionType, FieldPath, MappingEngine, Overrides,
    config::{self, parse_duration},
    dedup,
    event::{Event, EventId, EventKind, Headers},
    path::{DataAlias, PathInput},
    plan::PlanOrigin,
};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9 ]{0,8}".prop_map(Value::String),
        prop_oneof!["u1", "u2", "acme", "projects", ""].prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "id",
                    "collection",
                    "name",
                    "email",
                    "a",
                    "list",
                    "obj",
                    "x",
                    "0"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const PATHS: &[&str] = &[
    "userId",
    "properties",
    "properties.a",
    "properties.list",
    "properties.obj",
    "properties.obj.id",
    "data.a",
    "data.list.0",
    "body.x.0.id",
    "headers.h",
    "headers",
    "$.properties.list[*]",
    "$..id",
    "$.properties.obj",
    "context.traits",
    "traits.email",
];

const EVENTS: &[&str] = &["A", "B", "identify"];

#[derive(Debug, Clone)]
struct MappingSpec {
    event: &'static str,
    action: ActionType,
    active: bool,
    optional: Vec<(&'static str, &'static str)>,
    required_paths: Vec<&'static str>,
}

fn arb_mapping() -> impl Strategy<Value = MappingSpec> {
    (
        prop::sample::select(EVENTS),
        prop::sample::select(ActionType::ALL.to_vec()),
        any::<bool>(),
        prop::collection::vec(prop::sample::select(PATHS), 4),
        prop::collection::vec(prop::sample::select(PATHS), 4),
    )
        .prop_map(|(event, action, active, opt_paths, required_paths)| {
            let optional_names: &[&str] = match action {
                ActionType::TriggerWorkflow => &["recipients", "actor", "tenant", "data"],
                ActionType::IdentifyUser => &["name", "email", "properties", "user_id"],
                ActionType::SetTenant => &["name", "settings", "properties"],
                ActionType::Subscribe => &["recipients", "properties"],
                ActionType::AddAudienceMember => &["members", "tenant"],
                ActionType::CancelWorkflow => &["recipients"],
                _ => &[],
            };
            MappingSpec {
                event,
                action,
                active,
                optional: optional_names.iter().copied().zip(opt_paths).collect(),
                required_paths,
            }
        })
}

fn render(kind: &str, mappings: &[MappingSpec]) -> String {
    let mut text = format!(
        "[environments.development]\n[[sources]]\nkey = \"src\"\nkind = \"{kind}\"\n[sources.environments.development]\ntoken = \"tok_prop_0123456789abcdefg\"\n"
    );
    for m in mappings {
        text.push_str(&format!(
            "[[sources.environments.development.mappings]]\nevent = \"{}\"\naction = \"{}\"\nactive = {}\n",
            m.event, m.action, m.active
        ));
        let mut paths = m.required_paths.iter();
        let mut next = || *paths.next().unwrap_or(&"userId");
        let required: &[(&str, bool)] = match m.action {
            ActionType::TriggerWorkflow => &[("workflow", true)],
            ActionType::CancelWorkflow => &[("workflow", true), ("cancellation_key", false)],
            ActionType::SetObject
            | ActionType::DeleteObject
            | ActionType::Unsubscribe
            | ActionType::Subscribe => &[("collection", true), ("object_id", false)],
            ActionType::SetTenant | ActionType::DeleteTenant => &[("tenant_id", false)],
            ActionType::AddAudienceMember | ActionType::RemoveAudienceMember => {
                &[("audience", true)]
            }
            ActionType::IdentifyUser | ActionType::DeleteUser => &[],
        };
        for (name, literal) in required {
            if *literal {
                text.push_str(&format!("{name} = \"k\"\n"));
            } else {
                text.push_str(&format!("{name} = \"{}\"\n", next()));
            }
        }
        for (name, path) in &m.optional {
            text.push_str(&format!("{name} = \"{path}\"\n"));
        }
    }
    text
}

fn event_from(kind: EventKind, name: &str, raw: Value, headers: Headers) -> Event {
    let at = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    Event {
        id: EventId::from_parts(1, 2),
        environment: "development".into(),
        source: "src".into(),
        kind,
        event: name.into(),
        user_id: raw.get("userId").and_then(tributary_core::event::coerce_id),
        anonymous_id: None,
        data: raw.get("properties").cloned().unwrap_or(Value::Null),
        timestamp: at,
        received_at: at,
        message_id: None,
        raw,
        headers,
        preprocess: None,
    }
}

fn arb_raw() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop_oneof![
            "userId",
            "properties",
            "traits",
            "context",
            "x",
            "messageId"
        ],
        arb_json(),
        0..6,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_never_panics_and_is_deterministic(
        kind in prop::sample::select(vec!["segment", "http", "http-legacy", "rudderstack"]),
        mappings in prop::collection::vec(arb_mapping(), 0..10),
        name in prop::sample::select(EVENTS),
        identify in any::<bool>(),
        raw in arb_raw(),
        header in "[a-z]{0,4}",
    ) {
        let text = render(kind, &mappings);
        let config = config::load("p.toml", &text, &|_| None)
            .unwrap_or_else(|e| panic!("generated config must be valid: {e}\n{text}"));
        let engine = MappingEngine::new(&config);
        let event_kind = if identify { EventKind::Identify } else { EventKind::Track };
        let headers: Headers = [("h".to_owned(), header)].into();
        let event = event_from(event_kind, name, raw, headers);
        let first = engine.plan(&event, &Overrides::none());
        let second = engine.plan(&event, &Overrides::none());
        prop_assert_eq!(&first, &second);
        // Execution order.
        prop_assert!(first.windows(2).all(|w| w[0].action.rank() <= w[1].action.rank()));
        // Exactly one plan per matching mapping; everything else is inline or the toggle.
        let matching = mappings.iter().filter(|m| m.event == name).count();
        let from_mappings = first.iter().filter(|p| p.origin.is_mapping()).count();
        prop_assert_eq!(matching, from_mappings);
        // Inactive mappings never run.
        let active = mappings.iter().filter(|m| m.event == name && m.active).count();
        let runnable_mappings = first.iter().filter(|p| p.origin.is_mapping() && p.is_planned()).count();
        prop_assert!(runnable_mappings <= active);
        // Payloads match their action; only triggers carry inline entities,
        // and only inline plans of such a trigger say they are sent with it.
        for p in &first {
            if let Some(payload) = p.payload() {
                prop_assert_eq!(payload.action_type(), p.action);
            }
            if p.origin.trigger_inline().is_some() {
                prop_assert_eq!(p.action, ActionType::TriggerWorkflow);
            }
            if p.origin.is_sent_with_trigger() {
                let mapping = p.origin.mapping();
                prop_assert!(first.iter().any(|t| t.origin.trigger_inline().is_some() && t.origin.mapping() == mapping));
            }
        }
    }

    #[test]
    fn an_inline_trigger_carries_exactly_its_inline_entities(
        recipients in prop::collection::vec(arb_recipient(), 1..8),
        actor in prop::option::of(arb_recipient()),
        tenant in prop::option::of(arb_tenant()),
    ) {
        let mut properties = serde_json::json!({"to": recipients});
        if let Some(a) = &actor {
            properties["by"] = a.clone();
        }
        if let Some(t) = &tenant {
            properties["ws"] = t.clone();
        }
        let text = "[environments.development]\n[[sources]]\nkey = \"src\"\nkind = \"segment\"\n[sources.environments.development]\ntoken = \"tok_prop_0123456789abcdefg\"\n[[sources.environments.development.mappings]]\nid = \"t\"\nevent = \"A\"\naction = \"trigger_workflow\"\nworkflow = \"w\"\nrecipients = \"properties.to\"\nactor = \"properties.by\"\ntenant = \"properties.ws\"\n";
        let config = config::load("p.toml", text, &|_| None).unwrap();
        let raw = serde_json::json!({"userId": "u0", "properties": properties});
        let plans = MappingEngine::new(&config).plan(&event_from(EventKind::Track, "A", raw, Headers::new()), &Overrides::none());
        let trigger = plans.last().unwrap();
        let Some(tributary_core::plan::ActionPayload::TriggerWorkflow { recipients: refs, actor: actor_ref, tenant: tenant_id, .. }) = trigger.payload() else {
            panic!("the trigger is planned: {plans:?}");
        };
        // Rebuilt the way the product's trigger call takes them, the ids and
        // the kept attributes give back every entity as the event sent it.
        let empty = tributary_core::plan::TriggerInline::default();
        let inline = trigger.origin.trigger_inline().unwrap_or(&empty);
        prop_assert_eq!(refs.len(), recipients.len());
        for (i, (r, sent)) in refs.iter().zip(&recipients).enumerate() {
            prop_assert_eq!(rebuild(r, inline.recipient(i)), expected(sent));
        }
        prop_assert!(inline.recipients.iter().all(|r| r.position < refs.len()));
        prop_assert!(inline.recipients.windows(2).all(|w| w[0].position < w[1].position));
        match (&actor, actor_ref) {
            (Some(sent), Some(r)) => prop_assert_eq!(rebuild(r, inline.actor.as_ref()), expected(sent)),
            (None, None) => prop_assert!(inline.actor.is_none()),
            other => panic!("actor: {other:?}"),
        }
        match (&tenant, tenant_id) {
            (Some(sent), Some(id)) => {
                let mut t = inline.tenant.clone().unwrap_or_default();
                let rebuilt = if t.is_empty() { Value::String(id.clone()) } else { t.insert("id".into(), id.clone().into()); Value::Object(t) };
                prop_assert_eq!(rebuilt, expected(sent));
            }
            (None, None) => prop_assert!(inline.tenant.is_none()),
            other => panic!("tenant: {other:?}"),
        }
        // Inline plans say they are sent with the trigger exactly when it carries them.
        let inline_plans: Vec<_> = plans.iter().filter(|p| matches!(p.origin, PlanOrigin::Inline { .. })).collect();
        prop_assert_eq!(inline_plans.is_empty(), inline.is_empty());
        prop_assert!(inline_plans.iter().all(|p| p.origin.is_sent_with_trigger()));
        // A trigger with nothing inline serializes as it always has.
        if inline.is_empty() {
            prop_assert_eq!(serde_json::to_value(&trigger.origin).unwrap(), serde_json::json!({"type": "mapping", "mapping": "t"}));
        }
        let back: tributary_core::plan::ActionPlan = serde_json::from_value(serde_json::to_value(trigger).unwrap()).unwrap();
        prop_assert_eq!(&back, trigger);
    }

    #[test]
    fn paths_compile_or_refuse_without_panicking(path in any::<String>(), raw in arb_json()) {
        for alias in [DataAlias::EventData, DataAlias::Literal] {
            if let Ok(p) = FieldPath::compile(&path, alias) {
                let headers = Headers::new();
                let _ = p.resolve(PathInput { body: &raw, data: &raw, headers: &headers, preprocess: None });
            }
        }
    }

    #[test]
    fn path_like_strings_resolve_without_panicking(
        path in "(\\$|body|data|headers|properties)?([.][a-z0-9*\\[\\]?@=' ]{0,6}){0,5}",
        raw in arb_json(),
    ) {
        if let Ok(p) = FieldPath::compile(&path, DataAlias::EventData) {
            let headers = Headers::new();
            let _ = p.resolve(PathInput { body: &raw, data: &raw, headers: &headers, preprocess: None });
        }
    }

    #[test]
    fn config_loader_never_panics(text in any::<String>()) {
        let _ = config::load("fuzz.toml", &text, &|_| Some("x".to_owned()));
    }

    #[test]
    fn config_loader_never_panics_on_mutated_examples(
        cut in 0usize..4000,
        insert in "[\\[\\]=\"{}.a-z0-9 \n$]{0,12}",
    ) {
        let example = include_str!("../../../fixtures/config/example.toml");
        let mut text = example.to_owned();
        let at = cut.min(text.len());
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        if let Err(errors) = config::load("m.toml", &text, &|_| None) {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
    }

    #[test]
    fn durations_parse_or_refuse(text in any::<String>()) {
        let _ = parse_duration(&text);
    }

    #[test]
    fn dedup_never_panics(raw in arb_raw()) {
        let settings = config::DedupSettings {
            enabled: true,
            key_path: FieldPath::compile("messageId", DataAlias::EventData).unwrap(),
            window: std::time::Duration::from_secs(1),
        };
        let mut event = event_from(EventKind::Track, "A", raw, Headers::new());
        let decision = dedup::apply(&mut event, &settings);
        if let dedup::DedupDecision::Check(scope) = decision {
            prop_assert!(!scope.key.is_empty() && scope.key.chars().count() <= 255);
        }
    }
}

/// A recipient as an event may send it: an id, a bare `{id}`, an inline user,
/// an object reference or an inline object.
fn arb_recipient() -> impl Strategy<Value = Value> {
    let id = prop_oneof!["u[0-9]", "p[0-9]"];
    let attrs = prop::collection::btree_map(
        prop_oneof!["name", "email", "locale", "plan"],
        "[a-z ]{0,6}".prop_map(Value::String),
        0..3,
    );
    (
        id,
        prop::option::of(prop_oneof!["projects", "teams"]),
        attrs,
        0..3u8,
    )
        .prop_map(|(id, collection, attrs, shape)| {
            if shape == 0 && collection.is_none() {
                return Value::String(id);
            }
            let mut m: Map<String, Value> = attrs.into_iter().collect();
            m.insert("id".into(), id.into());
            if let Some(c) = collection {
                m.insert("collection".into(), c.into());
            }
            Value::Object(m)
        })
}

fn arb_tenant() -> impl Strategy<Value = Value> {
    prop_oneof![
        "t[0-9]".prop_map(Value::String),
        ("t[0-9]", prop::option::of("[A-Z][a-z]{0,5}")).prop_map(|(id, name)| {
            let mut m = Map::new();
            m.insert("id".into(), id.into());
            if let Some(n) = name {
                m.insert("name".into(), n.into());
            }
            Value::Object(m)
        }),
    ]
}

/// What the product's trigger call should receive for what the event sent:
/// inline entities whole, a bare `{id}` as its id.
fn expected(sent: &Value) -> Value {
    match sent {
        Value::Object(m) if m.len() == 1 => m["id"].clone(),
        other => other.clone(),
    }
}

fn rebuild(r: &tributary_core::plan::RecipientRef, attrs: Option<&Map<String, Value>>) -> Value {
    use tributary_core::plan::RecipientRef;
    let mut m = attrs.cloned().unwrap_or_default();
    match r {
        RecipientRef::User(id) if m.is_empty() => return Value::String(id.clone()),
        RecipientRef::User(id) => {
            m.insert("id".into(), id.clone().into());
        }
        RecipientRef::Object { id, collection } => {
            m.insert("id".into(), id.clone().into());
            m.insert("collection".into(), collection.clone().into());
        }
    }
    Value::Object(m)
}

#[test]
fn the_generated_config_shape_is_valid() {
    // Guards the property above against silently testing nothing.
    let spec = MappingSpec {
        event: "A",
        action: ActionType::TriggerWorkflow,
        active: true,
        optional: vec![("recipients", "properties.list")],
        required_paths: vec![],
    };
    let config = config::load("p.toml", &render("segment", &[spec]), &|_| None).unwrap();
    assert_eq!(
        config.sources[0].environments["development"].mappings.len(),
        1
    );
}
