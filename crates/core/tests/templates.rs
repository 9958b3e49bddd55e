//! `template = "<key>"` in a `[[sources]]` table, with a lookup made up
//! here: the table starts from the template's defaults, what it sets wins,
//! and problems in supplied values point at the `template` line.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tributary_core::config::{self, fill_document, load_with_templates};

const TOKEN: &str = "tok_0123456789abcdefghijkl";

const HOOKS: &str = r#"
kind = "http"
description = "Hooks"

[environment]
event_type_path = "body.kind"

[environment.verification]
scheme = "hmac-sha256"
header = "x-hook-signature"

[environment.dedup]
key_path = "body.id"
window = "48h"

[[environment.mappings]]
id = "hook-welcome"
event = "signed_up"
action = "trigger_workflow"
workflow = "welcome"
recipients = "body.user"
"#;

fn lookup(key: &str) -> Option<&'static str> {
    match key {
        "hooks" => Some(HOOKS),
        "broken" => Some("kind = "),
        "bad-path" => {
            Some("kind = \"http\"\n[environment]\nevent_type_path = \"$[?match(@, 'x')]\"\n")
        }
        _ => None,
    }
}

fn file(source_body: &str, env_body: &str) -> String {
    format!(
        "[environments.production]\n\n[[sources]]\nkey = \"src\"\n{source_body}\n[sources.environments.production]\ntoken = \"{TOKEN}\"\n{env_body}"
    )
}

#[test]
fn a_table_starts_from_its_template_and_keeps_what_it_sets() {
    let text = file(
        "template = \"hooks\"\nname = \"Mine\"\n",
        "verification = { secret = \"s3cret\" }\ndedup = { window = \"1h\" }\n",
    );
    let c = load_with_templates("t.toml", &text, &|_| None, &lookup).unwrap();
    let s = &c.sources[0];
    assert_eq!(s.kind, config::SourceKind::Http);
    assert_eq!(s.name, "Mine");
    let se = &s.environments["production"];
    assert_eq!(
        se.event_type_path.as_ref().unwrap().to_string(),
        "body.kind"
    );
    assert_eq!(se.dedup.key_path.to_string(), "body.id");
    assert_eq!(se.dedup.window.as_secs(), 3600, "the table's window wins");
    assert_eq!(se.mappings.len(), 1);
    let v = serde_json::to_value(se.verification.as_ref().unwrap()).unwrap();
    assert_eq!(v["scheme"]["header"], "x-hook-signature", "{v}");
}

/// The errors of a file whose source names `template_line`'s template.
fn refused(template_line: &str) -> config::ConfigErrors {
    load_with_templates("t.toml", &file(template_line, ""), &|_| None, &lookup).unwrap_err()
}

#[test]
fn problems_in_supplied_values_point_at_the_template_line() {
    // No secret: reported at line 5, `template = ...`.
    let errors = refused("template = \"hooks\"\n");
    let e = errors
        .0
        .iter()
        .find(|e| e.field.ends_with("verification.secret"));
    assert_eq!(e.map(|e| (e.line, e.column)), Some((5, 12)), "{errors}");
    let cases = [
        ("template = \"bad-path\"\n", "event_type_path", "regex"),
        (
            "template = \"broken\"\n",
            "sources[0].template",
            "template `broken` does not parse",
        ),
        (
            "template = 7\n",
            "sources[0].template",
            "must be a template key",
        ),
        (
            "template = \"nope\"\n",
            "sources[0].template",
            "unknown template `nope`",
        ),
    ];
    for (line, field, message) in cases {
        let errors = refused(line);
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.field.ends_with(field) && e.message.contains(message) && e.line == 5),
            "{line}: {errors}"
        );
    }
}

#[test]
fn fill_document_copies_under_what_the_request_sets() {
    let Value::Object(defaults) = toml::from_str::<toml::Value>(HOOKS)
        .map(|v| config::toml_to_json(&v))
        .unwrap()
    else {
        panic!()
    };
    let request: Map<String, Value> = serde_json::from_value(json!({
        "key": "src", "template": "hooks",
        "environments": {"production": {"dedup": {"window": "1h"}, "verification": {"scheme": "bearer", "secret": "x"}}}
    }))
    .unwrap();
    let doc = fill_document(&request, &defaults, &["production", "staging"]);
    assert!(!doc.contains_key("template"));
    assert_eq!(doc["kind"], "http");
    let prod = &doc["environments"]["production"];
    assert_eq!(
        prod["dedup"],
        json!({"window": "1h", "key_path": "body.id"})
    );
    assert_eq!(
        prod["verification"],
        json!({"scheme": "bearer", "secret": "x"}),
        "another scheme replaces the template's"
    );
    assert_eq!(
        doc["environments"]["staging"]["verification"]["header"],
        "x-hook-signature"
    );
}

proptest! {
    /// Any template text and any table: the loader answers without
    /// panicking, and a setting the table writes is the one loaded.
    #[test]
    fn any_template_text_loads_or_errors_and_the_table_wins(
        template_text in "\\PC{0,120}",
        window_hours in 1u32..1000,
    ) {
        // A lookup answers `'static` text (templates are embedded data); a
        // few leaked bytes per case stand in for that here.
        let leaked: &'static str = Box::leak(template_text.into_boxed_str());
        let any = move |_: &str| Some(leaked);
        let text = file("template = \"any\"\nkind = \"http\"\n", &format!("dedup = {{ window = \"{window_hours}h\" }}\n"));
        if let Ok(c) = load_with_templates("p.toml", &text, &|_| None, &any) {
            let se = &c.sources[0].environments["production"];
            prop_assert_eq!(se.dedup.window.as_secs(), u64::from(window_hours) * 3600);
        }
        let table = file("template = \"hooks\"\n", &format!("verification = {{ secret = \"s\" }}\ndedup = {{ window = \"{window_hours}h\" }}\n"));
        let c = load_with_templates("p.toml", &table, &|_| None, &lookup).unwrap();
        prop_assert_eq!(c.sources[0].environments["production"].dedup.window.as_secs(), u64::from(window_hours) * 3600);
    }
}
