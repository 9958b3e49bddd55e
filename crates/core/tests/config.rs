//! Configuration loading: defaults, `${ENV}` secrets, and errors that name
//! the file, line and field, all of them collected in one pass.

use std::time::Duration;

use serde_json::json;
use tributary_core::{
    ActionType,
    config::{
        self, Config, ConfigError, SchemeKind, SinkConfig, SourceKind, StoreBackend, ValueSource,
        VerificationScheme,
    },
};

const TOKEN: &str = "tok_0123456789abcdefghijkl";

fn env(name: &str) -> Option<String> {
    match name {
        "SEGMENT_SECRET" => Some("s3cret".to_owned()),
        "KNOCK_KEY" => Some("sk_test_123".to_owned()),
        "DEV_TOKEN" => Some(TOKEN.to_owned()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
    config::load("tributary.toml", text, &env).map_err(|e| e.0)
}

fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

fn one_source(kind: &str, body: &str) -> String {
    format!(
        "[environments.development]\n\n[[sources]]\nkey = \"src\"\nkind = \"{kind}\"\n\n[sources.environments.development]\ntoken = \"{TOKEN}\"\n{body}"
    )
}

#[test]
fn the_example_config_loads() {
    let text = include_str!("../../../fixtures/config/example.toml");
    let config = config::load("example.toml", text, &|_| None).unwrap();
    assert_eq!(config.sources.len(), 4);
    assert!(matches!(config.store.backend, StoreBackend::Sqlite { .. }));
    let segment = config.source("segment").unwrap();
    let dev = &segment.environments["development"];
    assert_eq!(dev.mappings.len(), 5);
    assert!(dev.identify);
    assert!(matches!(
        dev.verification.as_ref().unwrap().scheme,
        VerificationScheme::SegmentSignature { .. }
    ));
    let audience = dev
        .mappings
        .iter()
        .find(|m| m.action == ActionType::AddAudienceMember)
        .unwrap();
    assert!(audience.params.create_audience);
    let tasks = &config.source("tasks").unwrap().environments["development"];
    assert_eq!(tasks.mappings[0].params.data_fields.len(), 2);
}

#[test]
fn defaults_follow_the_contract() {
    let config = load(&one_source("segment", "")).unwrap();
    let se = &config.sources[0].environments["development"];
    assert!(se.identify, "identify is on by default for CDP kinds");
    assert!(se.dedup.enabled);
    assert_eq!(se.dedup.key_path.as_str(), "messageId");
    assert_eq!(se.dedup.window, Duration::from_secs(86_400));
    assert_eq!(config.environments["development"].sink, SinkConfig::Local);
    assert_eq!(config.server.public_url, "http://127.0.0.1:8080");
    assert_eq!(config.store.retention_days, 30);

    let config = load(&one_source("http", "")).unwrap();
    assert!(!config.sources[0].environments["development"].identify);
}

#[test]
fn mapping_defaults_and_literal_keys() {
    let config = load(&one_source(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"Signed Up\"\naction = \"workflows_trigger\"\nworkflow = \"welcome\"\n",
    ))
    .unwrap();
    let m = &config.sources[0].environments["development"].mappings[0];
    assert_eq!(m.id, "Signed Up:trigger_workflow");
    assert_eq!(m.action, ActionType::TriggerWorkflow);
    assert!(m.active);
    assert_eq!(
        m.params.workflow,
        Some(ValueSource::Literal(json!("welcome")))
    );
    match &m.params.recipients {
        Some(ValueSource::Path(p)) => assert_eq!(p.as_str(), "userId"),
        other => panic!("recipients default should be userId, got {other:?}"),
    }
}

#[test]
fn derived_mapping_ids_are_unique() {
    let m =
        "[[sources.environments.development.mappings]]\nevent = \"A\"\naction = \"delete_user\"\n";
    let config = load(&one_source("segment", &format!("{m}{m}"))).unwrap();
    let ids: Vec<_> = config.sources[0].environments["development"]
        .mappings
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(ids, ["A:delete_user", "A:delete_user#2"]);
}

#[test]
fn secrets_come_from_the_environment_and_never_print() {
    let text = "[environments.production.sink]\nkind = \"knock\"\nsecret_key = \"${KNOCK_KEY}\"\n\n[[sources]]\nkey = \"s\"\nkind = \"segment\"\n[sources.environments.production]\ntoken = \"${DEV_TOKEN}\"\n[sources.environments.production.verification]\nscheme = \"segment-signature\"\nsecret = \"${SEGMENT_SECRET}\"\n";
    let config = load(text).unwrap();
    match &config.environments["production"].sink {
        SinkConfig::Knock {
            secret_key,
            base_url,
        } => {
            assert_eq!(secret_key.expose(), "sk_test_123");
            assert_eq!(base_url, "https://api.knock.app");
        }
        other => panic!("{other:?}"),
    }
    let se = &config.sources[0].environments["production"];
    assert_eq!(se.token.expose(), TOKEN);
    let printed = format!("{config:?}");
    assert!(!printed.contains("sk_test_123"));
    assert!(!printed.contains("s3cret"));
    assert!(!printed.contains(TOKEN));
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = r#"[environments.development]

[[sources]]
key = "seg"
kind = "segment"

[sources.environments.development]
token = "tok_0123456789abcdefghijkl"

[[sources.environments.development.mappings]]
event = "A"
action = "trigger"

[[sources.environments.development.mappings]]
event = "B"
action = "trigger_workflow"

[[sources.environments.development.mappings]]
event = "C"
action = "identify_user"
user_id = "properties..id"
workflw = "x"

[[sources]]
key = "seg"
kind = "segment"

[sources.environments.staging]
token = "${NOT_SET}"
"#;
    let errs = errors(text);
    let lines: Vec<_> = errs
        .iter()
        .map(|e| (e.line, e.field.as_str(), e.message.as_str()))
        .collect();
    let find = |needle: &str| {
        errs.iter()
            .find(|e| e.message.contains(needle))
            .unwrap_or_else(|| panic!("no error mentioning {needle:?} in {lines:#?}"))
    };
    let unknown_action = find("unknown action `trigger`");
    assert_eq!(unknown_action.line, 12);
    assert!(unknown_action.field.ends_with("mappings[0].action"));
    let missing_workflow = find("needs `workflow`");
    assert_eq!(missing_workflow.line, 14);
    let bad_path = find("empty segment");
    assert_eq!(bad_path.line, 21);
    assert!(bad_path.field.ends_with("mappings[2].user_id"));
    let unknown_key = find("unknown key `workflw`");
    assert_eq!(unknown_key.line, 22);
    let duplicate = find("duplicate source key `seg`");
    assert!(duplicate.message.contains("line 3"), "{duplicate}");
    let undeclared = find("environment `staging` is not declared");
    assert!(undeclared.line >= 28);
    let unset = find("`NOT_SET` is not set");
    assert_eq!(unset.line, 29);
    assert!(errs.len() >= 7, "{lines:#?}");
    // Sorted by position, each rendered as file:line:column: field: message.
    assert!(errs.windows(2).all(|w| w[0].line <= w[1].line));
    assert!(
        unknown_action
            .to_string()
            .starts_with("tributary.toml:12:10: sources[seg]")
    );
}

#[test]
fn parameters_that_do_not_apply_are_refused() {
    let errs = errors(&one_source(
        "segment",
        "[[sources.environments.development.mappings]]\nevent = \"A\"\naction = \"identify_user\"\nworkflow = \"w\"\n",
    ));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .message
            .contains("`workflow` does not apply to `identify_user`")
    );
}

#[test]
fn regex_jsonpath_is_refused() {
    let errs = errors(&one_source(
        "http",
        "event_type_path = \"$.items[?match(@.t, 'a.*')].t\"\n",
    ));
    assert!(errs[0].message.contains("regex filter"), "{errs:?}");
}

#[test]
fn tokens_must_carry_128_bits_and_be_unique() {
    let errs = errors(&one_source("segment", "").replace(TOKEN, "short"));
    assert!(errs[0].message.contains("at least 22"), "{errs:?}");

    let text = format!(
        "{}\n[[sources]]\nkey = \"other\"\nkind = \"http\"\n[sources.environments.development]\ntoken = \"${{DEV_TOKEN}}\"\n",
        one_source("segment", "")
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.message.contains("same token is already used")),
        "{errs:?}"
    );
}

#[test]
fn api_keys_are_unique() {
    let text = format!(
        "[environments.development]\n[[sources]]\nkey = \"ht\"\nkind = \"hightouch\"\n[sources.environments.development]\ntoken = \"{TOKEN}\"\napi_key = \"sk_same\"\n[[sources]]\nkey = \"census\"\nkind = \"census\"\n[sources.environments.development]\ntoken = \"tok_other_0123456789abcdefgh\"\napi_key = \"sk_same\"\n"
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.message.contains("same api_key is already used")),
        "{errs:?}"
    );
}

#[test]
fn identify_toggle_is_only_for_cdp_kinds() {
    let errs = errors(&one_source("http-legacy", "identify = true\n"));
    assert!(errs[0].message.contains("do not receive identify calls"));
    assert!(load(&one_source("rudderstack", "identify = false\n")).is_ok());
}

#[test]
fn configurable_paths_only_for_custom_sources() {
    let errs = errors(&one_source("segment", "event_type_path = \"body.event\"\n"));
    assert!(errs[0].message.contains("fixed format"));
    let errs = errors(&one_source("rudderstack", "event_type = \"x\"\n"));
    assert!(errs[0].message.contains("fixed format"));
    let rows = load(&one_source("hightouch", "event_type = \"user.changed\"\n")).unwrap();
    assert_eq!(
        rows.sources[0].environments["development"]
            .event_type
            .as_deref(),
        Some("user.changed")
    );
    let config = load(&one_source("http", "event_type_path = \"body.event\"\n")).unwrap();
    assert_eq!(
        config.sources[0].environments["development"]
            .event_type_path
            .as_ref()
            .unwrap()
            .as_str(),
        "body.event"
    );
}

#[test]
fn verification_schemes_parse_with_defaults() {
    let config = load(&one_source(
        "http",
        "[sources.environments.development.verification]\nscheme = \"shared-secret\"\nsecret = \"x\"\nenforce = false\n",
    ))
    .unwrap();
    let v = config.sources[0].environments["development"]
        .verification
        .clone()
        .unwrap();
    assert!(!v.enforce);
    match v.scheme {
        VerificationScheme::SharedSecret { header, .. } => assert_eq!(header, "x-webhook-secret"),
        other => panic!("{other:?}"),
    }
    let errs = errors(&one_source(
        "http",
        "[sources.environments.development.verification]\nscheme = \"hmac-sha256\"\nsecret = \"x\"\ntolerance = \"5m\"\n",
    ));
    let messages: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`tolerance` does not apply"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("required for this scheme"))
    );
}

/// Each scheme name loads as its own scheme, reads only its own keys, and
/// the errors list every name.
#[test]
fn each_scheme_loads_as_itself_and_refuses_keys_it_does_not_read() {
    let table = "[sources.environments.development.verification]";
    for kind in SchemeKind::ALL {
        let name = kind.name();
        assert_eq!(SchemeKind::from_name(name), Some(kind));
        let config = load(&one_source(
            "http",
            &format!("{table}\nscheme = \"{name}\"\nsecret = \"x\"\nheader = \"x-sig\"\n"),
        ));
        let reads_header = matches!(
            kind,
            SchemeKind::HmacSha256 | SchemeKind::Timestamped | SchemeKind::SharedSecret
        );
        match config {
            Ok(config) => {
                assert!(reads_header, "{name} took `header`");
                let v = config.sources[0].environments["development"]
                    .verification
                    .clone()
                    .unwrap();
                assert_eq!(v.scheme.kind(), kind);
                assert_eq!(v.scheme.name(), name);
            }
            Err(e) => {
                assert!(!reads_header, "{name}: {e:?}");
                assert_eq!(e.len(), 1, "{name}: {e:?}");
                assert!(e[0].field.ends_with("verification.header"), "{name}: {e:?}");
            }
        }
        let errs = errors(&one_source(
            "http",
            &format!("{table}\nscheme = \"{name}\"\nsecret = \"x\"\nprefix = \"sha256=\"\n"),
        ));
        let refused = errs.iter().any(|e| {
            e.field.ends_with("verification.prefix")
                && e.message == format!("`prefix` does not apply to the `{name}` scheme")
        });
        assert_eq!(refused, kind != SchemeKind::HmacSha256, "{name}: {errs:?}");
    }
    let names =
        "segment-signature, hmac-sha256, timestamped, shared-secret, bearer or standard-webhooks";
    let errs = errors(&one_source(
        "http",
        &format!("{table}\nscheme = \"hmac\"\nsecret = \"x\"\n"),
    ));
    assert_eq!(
        errs[0].field,
        "sources[src].environments.development.verification.scheme"
    );
    assert_eq!(
        errs[0].message,
        format!("unknown scheme `hmac`; expected {names}")
    );
    assert_eq!(errs[0].line, 10);
    let errs = errors(&one_source("http", &format!("{table}\nsecret = \"x\"\n")));
    assert_eq!(errs[0].message, format!("is required: {names}"));
}

#[test]
fn syntax_errors_name_the_line() {
    let errs = errors("[environments.development]\nsink = \n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 2);
}

#[test]
fn sinks_and_store_are_validated() {
    let errs = errors("[store]\nbackend = \"postgres\"\n[environments.a]\nsink = \"knock\"\n");
    let messages: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("needs `url`")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("needs settings")),
        "{messages:?}"
    );
    let ok = load("[environments.a.sink]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nsecret = \"whsec_abc\"\n").unwrap();
    assert!(matches!(
        ok.environments["a"].sink,
        SinkConfig::Webhook { .. }
    ));
}

#[test]
fn postgres_pool_and_committers_are_optional_counts_for_postgres_only() {
    let pg = "[store]\nbackend = \"postgres\"\nurl = \"postgres://db/x\"\n";
    let unset = load(&one_source("segment", "")).unwrap();
    assert!(matches!(unset.store.backend, StoreBackend::Sqlite { .. }));
    let defaults = load(&format!("{pg}{}", one_source("segment", ""))).unwrap();
    assert!(matches!(
        defaults.store.backend,
        StoreBackend::Postgres {
            pool_size: None,
            committers: None,
            ..
        }
    ));
    let set = load(&format!(
        "{pg}pool_size = 8\ncommitters = 2\n{}",
        one_source("segment", "")
    ))
    .unwrap();
    assert!(matches!(
        set.store.backend,
        StoreBackend::Postgres {
            pool_size: Some(8),
            committers: Some(2),
            ..
        }
    ));

    for (line, expected) in [
        (
            "pool_size = 0",
            ("store.pool_size", "must be from 1 to 1000"),
        ),
        (
            "pool_size = 1001",
            ("store.pool_size", "must be from 1 to 1000"),
        ),
        (
            "committers = 0",
            ("store.committers", "must be from 1 to 64"),
        ),
        (
            "committers = -3",
            ("store.committers", "must be from 1 to 64"),
        ),
        (
            "committers = 65",
            ("store.committers", "must be from 1 to 64"),
        ),
    ] {
        let errs = errors(&format!("{pg}{line}\n{}", one_source("segment", "")));
        assert_eq!(errs.len(), 1, "{line}: {errs:?}");
        assert_eq!((errs[0].field.as_str(), errs[0].message.as_str()), expected);
        assert_eq!(errs[0].line, 4, "{line}");
    }

    // On SQLite they would be silently ignored; an error says so instead.
    let errs = errors(&format!(
        "[store]\npath = \"./data\"\ncommitters = 2\npool_size = 4\n{}",
        one_source("segment", "")
    ));
    let found: Vec<_> = errs
        .iter()
        .map(|e| (e.line, e.field.as_str(), e.message.as_str()))
        .collect();
    assert!(
        found.contains(&(
            3,
            "store.committers",
            "`committers` is for the postgres backend"
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            4,
            "store.pool_size",
            "`pool_size` is for the postgres backend"
        )),
        "{found:?}"
    );
}

#[test]
fn source_kinds_round_trip() {
    for kind in SourceKind::ALL {
        assert_eq!(kind.as_str().parse::<SourceKind>(), Ok(kind));
    }
}

#[test]
fn workers_and_rate_limits() {
    let config = load(
        "[workers]\nconcurrency_per_sink = 4\nmax_attempts = 3\nretry_base = \"1s\"\nretry_cap = \"1m\"\n[environments.production.rate_limits]\nidentify_user = 10\nworkflows_trigger = 500\n",
    )
    .unwrap();
    assert_eq!(config.workers.concurrency_per_sink, 4);
    assert_eq!(config.workers.max_attempts, 3);
    assert_eq!(config.workers.retry_cap, Duration::from_secs(60));
    let limits = &config.environments["production"].rate_limits;
    assert_eq!(limits[&ActionType::IdentifyUser].get(), 10);
    assert_eq!(limits[&ActionType::TriggerWorkflow].get(), 500);

    let errs = errors(
        "[workers]\nmax_in_flight = 0\n[environments.a.rate_limits]\nidentify = 5\ntrigger_workflow = 0\n",
    );
    let messages: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("at least 1")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("unknown action `identify`")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("positive number")),
        "{messages:?}"
    );
}

#[test]
fn runtime_threads_leave_a_core_to_the_sqlite_writer_unless_set() {
    let config = load(&one_source("segment", "")).unwrap();
    assert_eq!(config.server.worker_threads, None);
    let sqlite = &config.store.backend;
    assert!(matches!(sqlite, StoreBackend::Sqlite { .. }));
    assert_eq!(config.server.runtime_threads(sqlite, 8), 7);
    assert_eq!(config.server.runtime_threads(sqlite, 2), 1);
    assert_eq!(config.server.runtime_threads(sqlite, 1), 1);
    let postgres = StoreBackend::Postgres {
        url: tributary_core::secret::Secret::new("postgres://db/x"),
        pool_size: None,
        committers: None,
    };
    assert_eq!(config.server.runtime_threads(&postgres, 8), 8);

    let set = load(&format!(
        "[server]\nworker_threads = 3\n{}",
        one_source("segment", "")
    ))
    .unwrap();
    assert_eq!(set.server.worker_threads, Some(3));
    assert_eq!(set.server.runtime_threads(sqlite, 2), 3);
    assert_eq!(set.server.runtime_threads(&postgres, 16), 3);

    for bad in ["0", "-1", "5000"] {
        let errs = errors(&format!(
            "[server]\nworker_threads = {bad}\n{}",
            one_source("segment", "")
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "server.worker_threads");
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("from 1 to 1024"), "{}", errs[0]);
    }
}

#[test]
fn edge_limits_default_sanely_and_are_read() {
    let config = load(&one_source("segment", "")).unwrap();
    let s = &config.server;
    assert_eq!(s.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, Duration::from_secs(60));
    assert_eq!(s.body_read_timeout, Duration::from_secs(30));
    assert_eq!(s.max_connections, 4_096);
    assert_eq!(s.body_budget_bytes, 16 * s.max_body_bytes);

    let set = load(&format!(
        "[server]\nheader_read_timeout = \"2s\"\nidle_timeout = \"5m\"\nbody_read_timeout = \"7s\"\nmax_connections = 50\nmax_body_bytes = 1000\nbody_budget_bytes = 5000\n{}",
        one_source("segment", "")
    ))
    .unwrap();
    let s = &set.server;
    assert_eq!(s.header_read_timeout, Duration::from_secs(2));
    assert_eq!(s.idle_timeout, Duration::from_secs(300));
    assert_eq!(s.body_read_timeout, Duration::from_secs(7));
    assert_eq!(s.max_connections, 50);
    assert_eq!(s.body_budget_bytes, 5_000);
}

#[test]
fn bad_edge_limits_are_named_with_their_line() {
    for (line, key, says) in [
        (
            "header_read_timeout = \"0s\"",
            "server.header_read_timeout",
            "longer than zero",
        ),
        (
            "idle_timeout = \"soon\"",
            "server.idle_timeout",
            "not a duration",
        ),
        (
            "body_read_timeout = \"0\"",
            "server.body_read_timeout",
            "longer than zero",
        ),
        (
            "max_connections = 0",
            "server.max_connections",
            "from 1 to 1000000",
        ),
        (
            "max_connections = 2000000",
            "server.max_connections",
            "from 1 to 1000000",
        ),
        (
            "body_budget_bytes = 10",
            "server.body_budget_bytes",
            "at least server.max_body_bytes",
        ),
        (
            "body_budget_bytes = -1",
            "server.body_budget_bytes",
            "at least server.max_body_bytes",
        ),
    ] {
        let errs = errors(&format!("[server]\n{line}\n{}", one_source("segment", "")));
        assert_eq!(errs.len(), 1, "{line}: {errs:?}");
        assert_eq!(errs[0].field, key, "{line}");
        assert_eq!(errs[0].line, 2, "{line}");
        assert!(errs[0].message.contains(says), "{line}: {}", errs[0]);
    }
}

/// Every parameter an action takes, written in a mapping, reaches its field in
/// the loaded parameters, and no other field is set.
#[test]
fn every_parameter_an_action_takes_reaches_its_field() {
    for action in ActionType::ALL {
        let parameters = config::action_parameters(action);
        let mut mapping = format!(
            "[[sources.environments.development.mappings]]\nevent = \"e\"\naction = \"{action}\"\n"
        );
        for p in &parameters {
            let value = match p.name {
                "create_audience" => "true".to_owned(),
                "data_fields" => "{ plan = \"properties.plan\" }".to_owned(),
                _ if p.literal_key => "\"k\"".to_owned(),
                _ => format!("\"properties.{}\"", p.name),
            };
            mapping.push_str(&format!("{} = {value}\n", p.name));
        }
        let config =
            load(&one_source("http", &mapping)).unwrap_or_else(|e| panic!("{action}: {e:?}"));
        let loaded = &config.sources[0].environments["development"].mappings[0].params;
        let loaded = serde_json::to_value(loaded).unwrap();
        for (key, value) in loaded.as_object().unwrap() {
            let set = !matches!(
                value,
                serde_json::Value::Null | serde_json::Value::Bool(false)
            ) && value.as_array().is_none_or(|a| !a.is_empty());
            let taken = parameters.iter().any(|p| p.name == key);
            assert_eq!(set, taken, "{action}.{key} = {value}");
        }
    }
}
