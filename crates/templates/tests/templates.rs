//! Every template loads, compiles through the configuration file's own
//! loader, and its documents and provider answers hold what it defines.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tributary_core::config::{self, SourceKind, load_with_templates};
use tributary_templates::{Include, TemplateError, all, get, lookup, parse};

const KEYS: [&str; 14] = [
    "stripe",
    "clerk",
    "workos",
    "supabase",
    "posthog",
    "shopify",
    "amplitude",
    "clay",
    "segment",
    "rudderstack",
    "jitsu",
    "freshpaint",
    "http-legacy",
    "http",
];

fn file_for(template: &str, secret_needed: bool) -> String {
    let verification = if secret_needed {
        "verification = { secret = \"${SECRET}\" }\n"
    } else {
        ""
    };
    format!(
        "[environments.production]\n[environments.development]\n\n[[sources]]\nkey = \"src\"\ntemplate = \"{template}\"\n\n[sources.environments.production]\ntoken = \"tok_production_0123456789abcdef\"\n{verification}\n[sources.environments.development]\ntoken = \"tok_development_0123456789abcd\"\n{verification}"
    )
}

fn env(name: &str) -> Option<String> {
    (name == "SECRET").then(|| "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned())
}

#[test]
fn every_template_is_embedded_and_loads() {
    let keys: Vec<&str> = all().iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, KEYS, "a template failed to parse or is missing");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/templates");
    for t in all() {
        // Every file in the template's directory is embedded and used.
        let on_disk: BTreeSet<String> = std::fs::read_dir(format!("{root}/{}", t.key))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        let used: BTreeSet<String> = t.examples.iter().map(|e| e.file.clone()).collect();
        assert_eq!(
            on_disk, used,
            "{}: example files on disk vs manifest",
            t.key
        );
        assert!(!t.examples.is_empty(), "{} has no example", t.key);
    }
}

#[test]
fn every_template_compiles_through_the_file_loader() {
    for t in all() {
        let needs_secret = t.verification_scheme().is_some();
        let text = file_for(&t.key, needs_secret);
        let loaded = load_with_templates("t.toml", &text, &env, &lookup)
            .unwrap_or_else(|e| panic!("{}: {e}", t.key));
        let source = &loaded.sources[0];
        assert_eq!(source.kind, t.kind.parse::<SourceKind>().unwrap());
        let mappings = t
            .environment_defaults()
            .get("mappings")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for (slug, se) in &source.environments {
            assert_eq!(se.mappings.len(), mappings, "{} {slug}", t.key);
            assert_eq!(se.verification.is_some(), needs_secret, "{} {slug}", t.key);
        }
    }
}

#[test]
fn a_template_that_needs_a_secret_is_refused_without_one_at_the_template_line() {
    let text = file_for("stripe", false);
    let errors = load_with_templates("t.toml", &text, &env, &lookup).unwrap_err();
    let e = errors
        .0
        .iter()
        .find(|e| e.field.ends_with("verification.secret"))
        .unwrap_or_else(|| panic!("{errors}"));
    assert_eq!(e.line, 6, "{errors}");
}

#[test]
fn what_the_table_sets_wins_over_the_template() {
    let text = r#"
[environments.production]

[[sources]]
key = "billing"
template = "stripe"
name = "Billing"

[sources.environments.production]
token = "tok_production_0123456789abcdef"
event_type_path = "body.kind"
mappings = []

[sources.environments.production.verification]
scheme = "bearer"
secret = "a-bearer-secret"
"#;
    let loaded = load_with_templates("t.toml", text, &|_| None, &lookup).unwrap();
    let s = &loaded.sources[0];
    assert_eq!(s.name, "Billing");
    let se = &s.environments["production"];
    assert!(se.mappings.is_empty());
    assert_eq!(
        se.event_type_path.as_ref().unwrap().to_string(),
        "body.kind"
    );
    // Another scheme replaces the template's verification whole (no stray
    // `header` from the timestamped scheme).
    let v = serde_json::to_value(se.verification.as_ref().unwrap()).unwrap();
    assert_eq!(v["scheme"]["scheme"], "bearer", "{v}");
    // Settings the table leaves out still come from the template.
    assert_eq!(se.dedup.key_path.to_string(), "body.id");
}

#[test]
fn an_unknown_template_is_an_error_naming_it() {
    let text = file_for("stripes", false);
    let errors = load_with_templates("t.toml", &text, &env, &lookup).unwrap_err();
    assert!(
        errors.0.iter().any(|e| e.field == "sources[0].template"
            && e.message.contains("unknown template `stripes`")
            && e.line == 6),
        "{errors}"
    );
    // The plain loader knows no template at all.
    let errors = config::load("t.toml", &file_for("stripe", true), &env).unwrap_err();
    assert!(
        errors.to_string().contains("unknown template `stripe`"),
        "{errors}"
    );
}

#[test]
fn a_source_document_is_a_copy_that_compiles() {
    let stripe = get("stripe").unwrap();
    let mut doc =
        tributary_templates::source_document(stripe, "billing", "Billing", &["production"]);
    assert_eq!(doc["kind"], "http");
    assert_eq!(doc["name"], "Billing");
    let env = doc["environments"]["production"].as_object_mut().unwrap();
    assert_eq!(env["event_type_path"], "body.type");
    assert_eq!(env["verification"]["scheme"], "timestamped");
    env.insert("token".into(), json!("tok_production_0123456789abcdef"));
    env["verification"]
        .as_object_mut()
        .unwrap()
        .insert("secret".into(), json!("whsec_x"));
    let envs = config::load("e.toml", "[environments.production]\n", &|_| None)
        .unwrap()
        .environments;
    let source = config::source_from_document(&Value::Object(doc), &envs).unwrap();
    assert_eq!(source.environments["production"].mappings.len(), 3);
}

#[test]
fn an_api_request_naming_a_template_is_filled_under_what_it_sets() {
    let request: Map<String, Value> = serde_json::from_value(json!({
        "key": "auth", "template": "clerk", "name": "Auth",
        "environments": {"production": {"verification": {"secret": "whsec_abc"}}}
    }))
    .unwrap();
    let doc =
        tributary_templates::fill_from_template(&request, &["production", "development"]).unwrap();
    assert!(!doc.contains_key("template"));
    assert_eq!(doc["kind"], "http");
    let prod = &doc["environments"]["production"];
    assert_eq!(prod["verification"]["scheme"], "standard-webhooks");
    assert_eq!(prod["verification"]["secret"], "whsec_abc");
    assert_eq!(
        doc["environments"]["development"]["dedup"]["key_path"],
        "headers.svix-id"
    );
    let unknown: Map<String, Value> =
        serde_json::from_value(json!({"key": "x", "template": "nope"})).unwrap();
    assert_eq!(
        tributary_templates::fill_from_template(&unknown, &[]).unwrap_err(),
        TemplateError::Unknown("nope".into())
    );
    let plain: Map<String, Value> = serde_json::from_value(json!({"key": "x"})).unwrap();
    assert_eq!(
        tributary_templates::fill_from_template(&plain, &[]).unwrap(),
        plain
    );
}

#[test]
fn provider_answers_hold_the_defaults_mappings_and_examples() {
    let list = tributary_templates::providers();
    assert_eq!(list["entries"].as_array().unwrap().len(), KEYS.len());
    assert!(list["entries"][0].get("default_action_mappings").is_none());
    let stripe = get("stripe").unwrap();
    let all_of_it = Include::parse("default_action_mappings,example_payloads").unwrap();
    let p = tributary_templates::provider(stripe, &all_of_it);
    assert_eq!(p["default_settings"]["idempotency_key_path"], "body.id");
    assert_eq!(p["default_settings"]["event_type_path"], "body.type");
    assert_eq!(p["default_settings"]["enforce_verification"], true);
    assert_eq!(
        p["default_action_mappings"][0]["action_type"],
        "users_identify"
    );
    assert_eq!(
        p["default_action_mappings"][0]["event_type"],
        "customer.created"
    );
    assert_eq!(
        p["example_payloads"]["invoice.paid"]["body"]["type"],
        "invoice.paid"
    );
    assert!(matches!(
        Include::parse("example_payloads,secrets"),
        Err(TemplateError::UnknownInclude(i, _)) if i == "secrets"
    ));
    assert_eq!(Include::parse("").unwrap(), Include::default());
}

#[test]
fn manifest_problems_name_the_template_and_file() {
    let err = parse("x", "name = 1", "kind = \"http\"", &[]).unwrap_err();
    assert!(
        err.to_string().starts_with("template `x`: template.toml:"),
        "{err}"
    );
    let manifest = "name = \"X\"\ndescription = \"d\"\ncategories = [\"Billing\"]\nsigning = \"s\"\n[[examples]]\nevent_type = \"a\"\nfile = \"a.json\"\n";
    let err = parse("x", manifest, "kind = \"http\"", &[]).unwrap_err();
    assert!(err.to_string().contains("a.json"), "{err}");
    let err = parse("x", manifest, "kind = \"http\"", &[("a.json", "[1]")]).unwrap_err();
    assert!(err.to_string().contains("JSON object"), "{err}");
    let err = parse(
        "x",
        manifest,
        "kind = \"carrier-pigeon\"",
        &[("a.json", "{}")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
    let bad_category = manifest.replace("Billing", "Gossip");
    let err = parse("x", &bad_category, "kind = \"http\"", &[("a.json", "{}")]).unwrap_err();
    assert!(err.to_string().contains("Gossip"), "{err}");
    assert!(parse("x", manifest, "kind = \"http\"", &[("a.json", "{}")]).is_ok());
}

proptest! {
    /// The manifest parser never panics, whatever its three inputs.
    #[test]
    fn the_manifest_parser_never_panics(
        key in "\\PC{0,12}",
        manifest in "\\PC{0,200}",
        body in "\\PC{0,60}",
    ) {
        let _ = parse(&key, &manifest, "kind = \"http\"", &[("a.json", &body)]);
    }

    /// `include` parses any text without panicking, and a known list is
    /// read in any order.
    #[test]
    fn include_parses_any_text(text in "\\PC{0,80}", swap in any::<bool>()) {
        let _ = Include::parse(&text);
        let list = if swap { "example_payloads,default_action_mappings" } else { "default_action_mappings, example_payloads" };
        let i = Include::parse(list).unwrap();
        prop_assert!(i.example_payloads && i.default_action_mappings);
    }

    /// Whatever a `[[sources]]` table that names a template also sets, the
    /// loader answers (a config or errors) without panicking, and a key
    /// the table sets is never overwritten by the template's.
    #[test]
    fn the_loader_with_templates_never_panics_and_the_table_wins(
        template in prop::sample::select(KEYS.to_vec()),
        event_type_path in "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
        junk in "\\PC{0,40}",
    ) {
        let text = format!(
            "[environments.production]\n[[sources]]\nkey = \"s\"\ntemplate = \"{template}\"\n[sources.environments.production]\ntoken = \"tok_production_0123456789abcdef\"\nevent_type_path = \"body.{event_type_path}\"\nverification = {{ secret = \"whsec_x\" }}\n"
        );
        match load_with_templates("p.toml", &text, &|_| None, &lookup) {
            Ok(c) => {
                let se = &c.sources[0].environments["production"];
                prop_assert_eq!(
                    se.event_type_path.as_ref().unwrap().to_string(),
                    format!("body.{event_type_path}")
                );
            }
            // CDP kinds refuse event_type_path: refused, with the field named.
            Err(e) => prop_assert!(e.to_string().contains("event_type_path"), "{}", e),
        }
        let _ = load_with_templates("p.toml", &format!("{text}{junk}"), &|_| None, &lookup);
        let junk_template = format!("[[sources]]\nkey = \"s\"\ntemplate = {junk:?}\n");
        let _ = load_with_templates("p.toml", &junk_template, &|_| None, &lookup);
    }
}

#[test]
fn docs_templates_md_lists_every_template_with_its_defaults() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/templates.md"
    ))
    .unwrap();
    for t in all() {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", t.key)))
            .unwrap_or_else(|| panic!("docs/templates.md has no row for `{}`", t.key));
        let env = t.environment_defaults();
        for key in ["event_type_path", "timestamp_path"] {
            if let Some(Value::String(path)) = env.get(key) {
                assert!(
                    row.contains(&format!("`{path}`")),
                    "{}: {key} {path} not in {row}",
                    t.key
                );
            }
        }
        if let Some(Value::String(path)) = env.get("dedup").and_then(|d| d.get("key_path")) {
            assert!(
                row.contains(&format!("`{path}`")),
                "{}: dedup {path} not in {row}",
                t.key
            );
        }
        if let Some(scheme) = t.verification_scheme() {
            assert!(
                row.contains(&format!("`{scheme}`")),
                "{}: {scheme} not in {row}",
                t.key
            );
        }
    }
}
