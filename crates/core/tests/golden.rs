//! Golden tests: `fixtures/mapping/<case>/{config.toml, event.json}` ->
//! `plans.json`. See fixtures/mapping/README.md.

use std::{fs, path::Path};

use chrono::DateTime;
use serde_json::{Value, json};
use tributary_core::{
    MappingEngine, Overrides, config,
    event::{Event, EventId, EventKind},
};

const TOKEN: &str = "tok_golden_0123456789abcdef";

/// Builds the full config around a case's source-environment snippet. A
/// `kind = "..."` line in the snippet picks the source kind (default segment).
fn config_for(snippet: &str) -> config::Config {
    let mut kind = "segment".to_owned();
    let body: Vec<&str> = snippet
        .lines()
        .filter(|line| match line.strip_prefix("kind = ") {
            Some(k) => {
                kind = k.trim_matches('"').to_owned();
                false
            }
            None => true,
        })
        .collect();
    let text = format!(
        "[environments.development]\n[[sources]]\nkey = \"src\"\nkind = \"{kind}\"\n[sources.environments.development]\ntoken = \"{TOKEN}\"\n{}\n",
        body.join("\n")
    );
    config::load("config.toml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// Fills in the parts of a normalized event a case does not care about.
pub fn event_from(spec: &Value) -> Event {
    let kind: EventKind = serde_json::from_value(spec["kind"].clone()).unwrap();
    let raw = spec["raw"].clone();
    let data = spec.get("data").cloned().unwrap_or_else(|| {
        let field = match kind {
            EventKind::Track | EventKind::Page | EventKind::Screen => "properties",
            EventKind::Identify | EventKind::Group => "traits",
            _ => return raw.clone(),
        };
        raw.get(field).cloned().unwrap_or_else(|| json!({}))
    });
    let at = DateTime::from_timestamp_millis(1_740_823_200_000).unwrap();
    Event {
        id: EventId::from_parts(1_740_823_200_000, 1),
        environment: "development".to_owned(),
        source: "src".to_owned(),
        kind,
        event: spec["event"].as_str().unwrap().to_owned(),
        user_id: spec["user_id"].as_str().map(str::to_owned),
        anonymous_id: None,
        data,
        timestamp: at,
        received_at: at,
        message_id: None,
        raw,
        headers: serde_json::from_value(spec.get("headers").cloned().unwrap_or(json!({}))).unwrap(),
        preprocess: None,
    }
}

fn run_case(dir: &Path) -> Result<(), String> {
    let config = config_for(&fs::read_to_string(dir.join("config.toml")).unwrap());
    let spec: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("event.json")).unwrap()).unwrap();
    let engine = MappingEngine::new(&config);
    let plans = engine.plan(&event_from(&spec), &Overrides::none());
    let actual = serde_json::to_value(&plans).unwrap();
    let expected_path = dir.join("plans.json");
    if std::env::var_os("TRIBUTARY_BLESS").is_some() {
        let mut text = serde_json::to_string_pretty(&actual).unwrap();
        text.push('\n');
        fs::write(&expected_path, text).unwrap();
        return Ok(());
    }
    let expected: Value = serde_json::from_str(
        &fs::read_to_string(&expected_path)
            .map_err(|e| format!("{}: {e}", expected_path.display()))?,
    )
    .unwrap();
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{}: plans differ\nexpected: {}\nactual:   {}",
            dir.display(),
            serde_json::to_string_pretty(&expected).unwrap(),
            serde_json::to_string_pretty(&actual).unwrap()
        ))
    }
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mapping");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected the golden cases in {}",
        root.display()
    );
    let failures: Vec<_> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
