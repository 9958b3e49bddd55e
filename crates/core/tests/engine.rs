//! The mapping engine and dedup functions, one test per rule of
//! docs/product-decisions.md, "Mappings" and "Dedup".

use std::time::Duration;

use chrono::DateTime;
use serde_json::{Value, json};
use tributary_core::{
    ActionType, FieldPath, MappingEngine, Overrides,
    config::{self, Config, DedupSettings},
    dedup::{self, DedupDecision, InvalidKey},
    event::{Event, EventId, EventKind},
    path::DataAlias,
    plan::{
        ActionPayload, ActionPlan, PlanError, PlanNote, PlanOrigin, PlanOutcome, RecipientRef,
        SkipReason, TriggerData,
    },
};

const TOKEN: &str = "tok_engine_0123456789abcdef";

fn config(kind: &str, source_env: &str) -> Config {
    let text = format!(
        "[environments.development]\n[[sources]]\nkey = \"src\"\nkind = \"{kind}\"\n[sources.environments.development]\ntoken = \"{TOKEN}\"\n{source_env}\n"
    );
    config::load("t.toml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn track(event: &str, raw: Value) -> Event {
    let at = DateTime::from_timestamp_millis(1_740_823_200_000).unwrap();
    Event {
        id: EventId::from_parts(1, 1),
        environment: "development".into(),
        source: "src".into(),
        kind: EventKind::Track,
        event: event.into(),
        user_id: raw.get("userId").and_then(tributary_core::event::coerce_id),
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

fn plans(config: &Config, event: &Event) -> Vec<ActionPlan> {
    MappingEngine::new(config).plan(event, &Overrides::none())
}

fn skip_error(plan: &ActionPlan) -> &PlanError {
    match &plan.outcome {
        PlanOutcome::Skipped {
            reason: SkipReason::Invalid { error },
        } => error,
        other => panic!("expected an invalid skip, got {other:?}"),
    }
}

const TRIGGER: &str = "[[sources.environments.development.mappings]]\nid = \"t\"\nevent = \"E\"\naction = \"trigger_workflow\"\nworkflow = \"w\"\nrecipients = \"properties.to\"\n";

#[test]
fn at_most_1000_recipients() {
    let c = config("segment", TRIGGER);
    let ids = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
    let ok = plans(&c, &track("E", json!({"properties": {"to": ids(1000)}})));
    match ok[0].payload() {
        Some(ActionPayload::TriggerWorkflow { recipients, .. }) => {
            assert_eq!(recipients.len(), 1000)
        }
        other => panic!("{other:?}"),
    }
    let too_many = plans(&c, &track("E", json!({"properties": {"to": ids(1001)}})));
    assert_eq!(
        skip_error(&too_many[0]),
        &PlanError::TooManyRecipients {
            field: "recipients".into(),
            count: 1001,
            limit: 1000
        }
    );
}

#[test]
fn recipients_default_to_user_id_and_missing_one_skips() {
    let c = config(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"E\"\naction = \"trigger_workflow\"\nworkflow = \"w\"\n",
    );
    let p = plans(&c, &track("E", json!({"userId": 7})));
    match p[0].payload() {
        Some(ActionPayload::TriggerWorkflow { recipients, .. }) => {
            assert_eq!(recipients, &[RecipientRef::User("7".into())])
        }
        other => panic!("{other:?}"),
    }
    let anonymous = plans(&c, &track("E", json!({"anonymousId": "a"})));
    assert_eq!(
        skip_error(&anonymous[0]),
        &PlanError::MissingField {
            field: "recipients".into(),
            path: "userId".into()
        }
    );
}

#[test]
fn recipient_type_mismatches_name_the_field() {
    let c = config("segment", TRIGGER);
    for (value, field) in [
        (json!(true), "recipients"),
        (json!([["nested"]]), "recipients"),
        (json!([{"name": "no id"}]), "recipients.id"),
        (
            json!([{"id": "x", "collection": 5}]),
            "recipients.collection",
        ),
    ] {
        let p = plans(&c, &track("E", json!({"properties": {"to": value}})));
        match skip_error(&p[0]) {
            PlanError::TypeMismatch { field: f, path, .. } => {
                assert_eq!(f, field);
                assert_eq!(path, "properties.to");
            }
            other => panic!("{other:?}"),
        }
    }
    let empty = plans(&c, &track("E", json!({"properties": {"to": []}})));
    assert!(matches!(
        skip_error(&empty[0]),
        PlanError::MissingField { .. }
    ));
}

#[test]
fn a_failed_action_drops_its_inline_identifications() {
    let c = config(
        "segment",
        &format!("{TRIGGER}actor = \"properties.actor\"\n"),
    );
    let p = plans(
        &c,
        &track(
            "E",
            json!({"properties": {"to": [{"id": "u1", "email": "e"}], "actor": ["a", "b"]}}),
        ),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(matches!(skip_error(&p[0]), PlanError::TypeMismatch { field, .. } if field == "actor"));
}

#[test]
fn inline_users_are_identified_before_the_trigger() {
    let c = config("segment", TRIGGER);
    let p = plans(
        &c,
        &track(
            "E",
            json!({"properties": {"to": [{"id": "u1", "email": "a@b.c"}, {"id": "u1", "email": "a@b.c"}]}}),
        ),
    );
    let actions: Vec<_> = p.iter().map(|p| p.action).collect();
    assert_eq!(
        actions,
        [ActionType::IdentifyUser, ActionType::TriggerWorkflow]
    );
    assert_eq!(
        p[0].origin,
        PlanOrigin::Inline {
            mapping: "t".into(),
            field: "recipients".into(),
            with_trigger: true,
        }
    );
    // The trigger keeps the inline attributes of both positions, for sinks
    // whose trigger call carries inline identification.
    let inline = p[1]
        .origin
        .trigger_inline()
        .expect("the trigger carries them");
    assert_eq!(inline.recipients.len(), 2);
    assert_eq!(inline.recipient(1).unwrap()["email"], "a@b.c");
    assert!(inline.actor.is_none() && inline.tenant.is_none());
}

#[test]
fn inline_identification_for_other_actions_is_not_sent_with_a_trigger() {
    let subscribe = "[[sources.environments.development.mappings]]\nid = \"s\"\nevent = \"E\"\naction = \"subscribe\"\ncollection = \"c\"\nobject_id = \"properties.o\"\nrecipients = \"properties.to\"\n";
    let c = config("segment", subscribe);
    let p = plans(
        &c,
        &track(
            "E",
            json!({"properties": {"o": "o1", "to": [{"id": "u1", "email": "a@b.c"}]}}),
        ),
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(
        p[0].origin,
        PlanOrigin::Inline {
            mapping: "s".into(),
            field: "recipients".into(),
            with_trigger: false,
        }
    );
    assert_eq!(
        p[1].origin,
        PlanOrigin::Mapping {
            mapping: "s".into()
        }
    );
}

#[test]
fn a_trigger_without_inline_entities_serializes_as_before() {
    let c = config("segment", TRIGGER);
    let p = plans(
        &c,
        &track(
            "E",
            json!({"properties": {"to": ["u1", {"id": "p", "collection": "c"}]}}),
        ),
    );
    assert_eq!(p.len(), 1);
    assert_eq!(
        serde_json::to_value(&p[0]).unwrap()["origin"],
        json!({"type": "mapping", "mapping": "t"})
    );
}

/// `{"id": "u2"}` among a trigger's recipients is how a sender has the
/// product create `u2` before the run: it is identified (with nothing but
/// its id) and travels inline with the trigger.
#[test]
fn a_trigger_identifies_an_inline_user_with_only_an_id() {
    let c = config("segment", TRIGGER);
    let p = plans(
        &c,
        &track("E", json!({"properties": {"to": ["u1", {"id": "u2"}]}})),
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(
        p[0].payload(),
        Some(&ActionPayload::IdentifyUser {
            user_id: "u2".into(),
            attributes: Default::default(),
        })
    );
    assert!(p[0].origin.is_sent_with_trigger());
    let inline = p[1].origin.trigger_inline().expect("carried inline");
    assert!(inline.recipient(0).is_none());
    assert_eq!(inline.recipient(1), Some(&Default::default()));
}

#[test]
fn plans_stored_before_inline_triggers_still_decode() {
    let old: ActionPlan = serde_json::from_value(json!({
        "action": "identify_user",
        "origin": {"type": "inline", "mapping": "t", "field": "recipients"},
        "status": "planned",
        "payload": {"action": "identify_user", "user_id": "u1", "attributes": {"email": "a@b.c"}}
    }))
    .unwrap();
    assert!(!old.origin.is_sent_with_trigger());
    assert_eq!(old.origin.mapping(), Some("t"));
}

#[test]
fn overrides_win_over_the_file_and_are_per_environment() {
    let c = config("segment", TRIGGER);
    let engine = MappingEngine::new(&c);
    let e = track("E", json!({"properties": {"to": "u1"}}));
    let mut o = Overrides::none();
    o.set("src", "production", "t", false);
    assert!(
        engine.plan(&e, &o)[0].is_planned(),
        "other environment's toggle"
    );
    o.set("src", "development", "t", false);
    assert_eq!(
        engine.plan(&e, &o)[0].outcome,
        PlanOutcome::Skipped {
            reason: SkipReason::Inactive
        }
    );
    let inactive = config("segment", &format!("{TRIGGER}active = false\n"));
    let mut on = Overrides::none();
    on.set("src", "development", "t", true);
    assert!(MappingEngine::new(&inactive).plan(&e, &on)[0].is_planned());
}

#[test]
fn no_matching_mapping_means_no_plans() {
    let c = config("segment", TRIGGER);
    assert!(
        plans(&c, &track("e", json!({}))).is_empty(),
        "matching is case-sensitive"
    );
    assert!(plans(&c, &track("Other", json!({}))).is_empty());
    let mut unknown = track("E", json!({"properties": {"to": "u"}}));
    unknown.environment = "production".into();
    assert!(plans(&c, &unknown).is_empty());
    assert!(!MappingEngine::new(&c).has_mappings_for(&unknown));
}

#[test]
fn identify_without_user_id_is_skipped_with_an_error() {
    let c = config("segment", "");
    let mut e = track("identify", json!({"traits": {"email": "x"}}));
    e.kind = EventKind::Identify;
    let p = plans(&c, &e);
    assert_eq!(
        skip_error(&p[0]),
        &PlanError::MissingField {
            field: "user_id".into(),
            path: "userId".into()
        }
    );
}

/// Issue 18 item 12: an identify whose traits use a name the product
/// reserves, with a value of another shape, keeps the value under another
/// name (and says so on the plan) rather than have the product refuse the
/// whole call; a value of the reserved shape passes through.
#[test]
fn identify_traits_under_reserved_names_are_renamed_when_misshapen() {
    let c = config("segment", "");
    let mut e = track(
        "identify",
        json!({"userId": "u1", "traits": {
            "preferences": {"newsletter": true},
            "channel_data": {"97c5837d-c65c-4d54-aa39-080eeb81c69d": {"tokens": ["t1"]}},
            "created_at": "2024-05-22",
            "email": "a@b.c",
        }}),
    );
    e.kind = EventKind::Identify;
    let p = plans(&c, &e);
    assert_eq!(
        serde_json::to_value(p[0].payload().unwrap()).unwrap()["attributes"],
        json!({
            "custom_preferences": {"newsletter": true},
            "channel_data": {"97c5837d-c65c-4d54-aa39-080eeb81c69d": {"tokens": ["t1"]}},
            "custom_created_at": "2024-05-22",
            "email": "a@b.c",
        })
    );
    let noted: Vec<_> = p[0]
        .notes
        .iter()
        .filter_map(|n| match n {
            PlanNote::ReservedKey { key, kept_as, .. } => Some((key.as_str(), kept_as.as_deref())),
            PlanNote::PathReachedNothing { .. } => None,
        })
        .collect();
    assert_eq!(
        noted,
        [
            ("created_at", Some("custom_created_at")),
            ("preferences", Some("custom_preferences")),
        ]
    );
    // The notes are stored with the plan.
    let stored = serde_json::to_value(&p[0]).unwrap();
    assert_eq!(stored["notes"][1]["code"], "reserved_key");
    assert_eq!(stored["notes"][1]["kept_as"], "custom_preferences");
    let back: ActionPlan = serde_json::from_value(stored).unwrap();
    assert_eq!(back, p[0]);
}

/// The inline plan and the attributes its trigger carries (what the knock
/// sink sends) are conformed alike; the inline plan carries the note.
#[test]
fn inline_entities_under_reserved_names_are_renamed_alike() {
    let c = config(
        "segment",
        "[[sources.environments.development.mappings]]\nid = \"t\"\nevent = \"E\"\naction = \"trigger_workflow\"\nworkflow = \"w\"\nrecipients = \"properties.to\"\ntenant = \"properties.org\"\n",
    );
    let p = plans(
        &c,
        &track(
            "E",
            json!({"properties": {
                "to": [{"id": "u1", "preferences": "all"}, {"id": "p1", "collection": "c", "channel_data": null}],
                "org": {"id": "o1", "settings": {"branding": "blue"}},
            }}),
        ),
    );
    let actions: Vec<_> = p.iter().map(|p| p.action).collect();
    assert_eq!(
        actions,
        [
            ActionType::IdentifyUser,
            ActionType::SetObject,
            ActionType::SetTenant,
            ActionType::TriggerWorkflow
        ]
    );
    let attributes = |i: usize| match p[i].payload() {
        Some(
            ActionPayload::IdentifyUser { attributes, .. }
            | ActionPayload::SetObject { attributes, .. }
            | ActionPayload::SetTenant { attributes, .. },
        ) => Value::Object(attributes.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(attributes(0), json!({"custom_preferences": "all"}));
    // An object's channel data cannot be cleared with null: dropped.
    assert_eq!(attributes(1), json!({}));
    assert_eq!(
        attributes(2),
        json!({"custom_settings": {"branding": "blue"}})
    );
    assert!(p[..3].iter().all(|p| p.notes.len() == 1), "{p:?}");
    assert!(p[3].notes.is_empty());
    let inline = p[3].origin.trigger_inline().unwrap();
    assert_eq!(
        Value::Object(inline.recipient(0).unwrap().clone()),
        attributes(0)
    );
    assert_eq!(
        Value::Object(inline.recipient(1).unwrap().clone()),
        attributes(1)
    );
    assert_eq!(Value::Object(inline.tenant.clone().unwrap()), attributes(2));
}

#[test]
fn identify_mapping_builds_user_fields_and_clears_with_null() {
    let c = config(
        "http",
        "[[sources.environments.development.mappings]]\nevent = \"user.updated\"\naction = \"identify_user\"\nuser_id = \"body.user.id\"\nemail = \"body.user.email\"\nname = \"body.user.name\"\nproperties = \"body.user.extra\"\n",
    );
    let mut e = track(
        "user.updated",
        json!({"user": {"id": 5, "email": "e@x", "name": null, "extra": {"plan": "pro", "email": "old"}}}),
    );
    e.kind = EventKind::Webhook;
    match plans(&c, &e)[0].payload() {
        Some(ActionPayload::IdentifyUser {
            user_id,
            attributes,
        }) => {
            assert_eq!(user_id, "5");
            assert_eq!(
                Value::Object(attributes.clone()),
                json!({"email": "e@x", "name": null, "plan": "pro"})
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn audiences_take_users_only() {
    let c = config(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"E\"\naction = \"add_audience_member\"\naudience = \"a\"\nmembers = \"properties.m\"\n",
    );
    let p = plans(
        &c,
        &track(
            "E",
            json!({"properties": {"m": [{"id": "o", "collection": "c"}]}}),
        ),
    );
    assert!(
        matches!(skip_error(&p[0]), PlanError::TypeMismatch { field, .. } if field == "members")
    );
}

#[test]
fn cancel_without_recipients_cancels_for_all() {
    let c = config(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"E\"\naction = \"cancel_workflow\"\nworkflow = \"w\"\ncancellation_key = \"properties.k\"\nrecipients = \"properties.r\"\n",
    );
    match plans(&c, &track("E", json!({"properties": {"k": "x"}})))[0].payload() {
        Some(ActionPayload::CancelWorkflow { recipients, .. }) => assert!(recipients.is_none()),
        other => panic!("{other:?}"),
    }
    let missing_key = plans(&c, &track("E", json!({"properties": {}})));
    assert!(
        matches!(skip_error(&missing_key[0]), PlanError::MissingField { field, .. } if field == "cancellation_key")
    );
}

#[test]
fn workflow_key_can_come_from_the_event() {
    let c = config(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"E\"\naction = \"trigger_workflow\"\nworkflow = { path = \"properties.wf\" }\n",
    );
    match plans(
        &c,
        &track("E", json!({"userId": "u", "properties": {"wf": "dyn"}})),
    )[0]
    .payload()
    {
        Some(ActionPayload::TriggerWorkflow { workflow, .. }) => assert_eq!(workflow, "dyn"),
        other => panic!("{other:?}"),
    }
}

fn dedup_settings(window: u64) -> DedupSettings {
    DedupSettings {
        enabled: true,
        key_path: FieldPath::compile("messageId", DataAlias::EventData).unwrap(),
        window: Duration::from_secs(window),
    }
}

#[test]
fn dedup_scope_is_key_event_type_source_environment() {
    let e = track("E", json!({"messageId": "m-1"}));
    match dedup::decide(&e, &dedup_settings(60)) {
        DedupDecision::Check(scope) => {
            assert_eq!(scope.key, "m-1");
            assert_eq!(scope.event_type, "E");
            assert_eq!(scope.source, "src");
            assert_eq!(scope.environment, "development");
            assert_eq!(scope.window, Duration::from_secs(60));
        }
        other => panic!("{other:?}"),
    }
    let mut off = dedup_settings(60);
    off.enabled = false;
    assert_eq!(dedup::decide(&e, &off), DedupDecision::Disabled);
    assert_eq!(
        dedup::decide(&track("E", json!({})), &dedup_settings(60)),
        DedupDecision::NoKey
    );
    assert_eq!(
        dedup::decide(&track("E", json!({"messageId": null})), &dedup_settings(60)),
        DedupDecision::NoKey
    );
}

#[test]
fn invalid_keys_are_dropped_and_the_event_runs() {
    let s = dedup_settings(60);
    let long_ascii = "k".repeat(256);
    let long_unicode = "é".repeat(255); // 510 bytes, 255 characters: valid.
    let cases = [
        (
            json!(42),
            Some(InvalidKey::NotAString {
                found: "number".into(),
            }),
        ),
        (json!(""), Some(InvalidKey::Empty)),
        (json!(long_ascii), Some(InvalidKey::TooLong { chars: 256 })),
        (json!("k".repeat(255)), None),
        (json!(long_unicode), None),
    ];
    for (key, expected) in cases {
        let mut e = track("E", json!({"messageId": key}));
        e.message_id = Some("from-adapter".into());
        let decision = dedup::apply(&mut e, &s);
        match expected {
            Some(reason) => {
                assert_eq!(decision, DedupDecision::Dropped { reason });
                assert_eq!(e.message_id, None, "a dropped key is not logged");
            }
            None => {
                assert!(matches!(decision, DedupDecision::Check(_)));
                assert_eq!(e.message_id.as_deref(), key.as_str());
            }
        }
    }
}

#[test]
fn an_optional_path_that_reaches_nothing_is_noted_on_the_plan() {
    let c = config(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"E\"\naction = \"trigger_workflow\"\n\
         workflow = \"w\"\ntenant = \"context.groupId\"\n\
         data_fields = { plan = \"properties.plan\", seats = \"properties.seats\" }\n",
    );
    let p = plans(
        &c,
        &track("E", json!({"userId": "u1", "properties": {"plan": "team"}})),
    );
    assert!(p[0].payload().is_some(), "the trigger still runs: {p:?}");
    assert_eq!(
        p[0].notes,
        [
            PlanNote::PathReachedNothing {
                parameter: "tenant".into(),
                path: "context.groupId".into()
            },
            PlanNote::PathReachedNothing {
                parameter: "data_fields.seats".into(),
                path: "properties.seats".into()
            },
        ]
    );
    let stored = serde_json::to_value(&p[0]).unwrap();
    assert_eq!(stored["notes"][0]["code"], "path_reached_nothing");
    // Present values leave no note.
    let full = plans(
        &c,
        &track(
            "E",
            json!({"userId": "u1", "context": {"groupId": "g"},
                   "properties": {"plan": "team", "seats": 3}}),
        ),
    );
    assert!(full[0].notes.is_empty(), "{:?}", full[0].notes);
}

/// The trigger data of the first plan.
fn trigger_data(plans: &[ActionPlan]) -> &TriggerData {
    plans[0]
        .trigger_data()
        .unwrap_or_else(|| panic!("not a trigger: {:?}", plans[0]))
}

#[test]
fn a_plan_by_reference_leaves_the_default_trigger_data_to_its_event() {
    let engine = |mappings: &str| MappingEngine::new(&config("segment", mappings));
    let event = track(
        "E",
        json!({"userId": "u1", "properties": {"to": "u1", "total": 12.5}}),
    );
    let overrides = Overrides::none();

    // The default: the event's data, by reference or copied.
    let default = engine(TRIGGER);
    let by_reference = default.plan_by_reference(&event, &overrides);
    assert_eq!(trigger_data(&by_reference), &TriggerData::OfEvent);
    assert!(by_reference[0].refers_to_event_data());
    let plans = default.plan(&event, &overrides);
    assert_eq!(trigger_data(&plans), &event.data);
    assert!(!plans[0].refers_to_event_data());
    // Resolving the one gives the other.
    let mut resolved = by_reference;
    resolved[0].resolve_event_data(&event.data);
    assert_eq!(resolved, plans);
    // A plan is serialized with its data; one by reference writes `null`.
    let json = |plan: &ActionPlan| serde_json::to_value(plan).unwrap()["payload"]["data"].clone();
    assert_eq!(json(&plans[0])["total"], 12.5);
    let by_reference = default.plan_by_reference(&event, &overrides);
    assert_eq!(json(&by_reference[0]), Value::Null);

    // Mapped data is the plan's own either way.
    let mapped = engine(&format!(
        "{TRIGGER}data_fields = {{ sum = \"properties.total\" }}\n"
    ));
    let by_reference = mapped.plan_by_reference(&event, &overrides);
    assert_eq!(trigger_data(&by_reference), &json!({"sum": 12.5}));
    assert_eq!(by_reference, mapped.plan(&event, &overrides));

    // An event whose data is not an object sends an empty object.
    let mut odd = event;
    odd.data = json!("text");
    let by_reference = default.plan_by_reference(&odd, &overrides);
    assert_eq!(trigger_data(&by_reference), &json!({}));
}
