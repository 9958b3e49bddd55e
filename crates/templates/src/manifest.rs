//! A template as stored under `fixtures/templates/<key>/`: `template.toml`
//! (what people read: name, description, category, how the platform signs,
//! which secret, the example payloads), `defaults.toml` (what a new source
//! starts from, the form `tributary_core::config::load_with_templates`
//! reads) and one JSON file per example payload.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use tributary_core::config::toml_to_json;

use crate::{Example, Template, TemplateError};

/// Categories the product sorts its templates into.
pub const CATEGORIES: [&str; 7] = [
    "Billing",
    "Infrastructure",
    "Analytics",
    "CRM",
    "Ecommerce",
    "Communications",
    "Identity",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    description: String,
    categories: Vec<String>,
    #[serde(default)]
    website_url: Option<String>,
    #[serde(default)]
    webhooks_docs_url: Option<String>,
    signing: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    examples: Vec<RawExample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExample {
    event_type: String,
    file: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Builds a template from its three parts. `files` holds the example
/// payloads by file name. Every problem is a [`TemplateError`] naming the
/// template and the file or field; nothing here panics on any input.
pub fn parse(
    key: &str,
    manifest: &str,
    defaults: &'static str,
    files: &[(&str, &str)],
) -> Result<Template, TemplateError> {
    let invalid = |file: &str, message: String| TemplateError::Invalid {
        template: key.to_owned(),
        file: file.to_owned(),
        message,
    };
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "",
            "a template key uses lowercase letters, digits, `-` and `_`".into(),
        ));
    }
    let raw: RawManifest = toml::from_str(manifest)
        .map_err(|e| invalid("template.toml", e.message().trim().to_owned()))?;
    for c in &raw.categories {
        if !CATEGORIES.contains(&c.as_str()) {
            return Err(invalid(
                "template.toml",
                format!(
                    "categories: unknown category `{c}`; expected one of {}",
                    CATEGORIES.join(", ")
                ),
            ));
        }
    }
    let table: toml::Table = toml::from_str(defaults)
        .map_err(|e| invalid("defaults.toml", e.message().trim().to_owned()))?;
    let Value::Object(defaults_json) = toml_to_json(&toml::Value::Table(table)) else {
        return Err(invalid("defaults.toml", "is not a table".into()));
    };
    let kind = match defaults_json.get("kind") {
        Some(Value::String(k)) if k.parse::<tributary_core::config::SourceKind>().is_ok() => {
            k.clone()
        }
        _ => {
            return Err(invalid(
                "defaults.toml",
                "kind: a source kind is required".into(),
            ));
        }
    };
    for forbidden in ["key", "environments", "template"] {
        if defaults_json.contains_key(forbidden) {
            return Err(invalid(
                "defaults.toml",
                format!("`{forbidden}` belongs to the source, not its template"),
            ));
        }
    }
    let mut examples = Vec::new();
    for ex in raw.examples {
        let Some((_, text)) = files.iter().find(|(name, _)| *name == ex.file) else {
            return Err(invalid(&ex.file, "the example's file is missing".into()));
        };
        let body: Value = serde_json::from_str(text)
            .map_err(|e| invalid(&ex.file, format!("is not JSON: {e}")))?;
        if !body.is_object() {
            return Err(invalid(&ex.file, "an example body is a JSON object".into()));
        }
        if examples
            .iter()
            .any(|e: &Example| e.event_type == ex.event_type)
        {
            return Err(invalid(
                "template.toml",
                format!("two examples for event type `{}`", ex.event_type),
            ));
        }
        examples.push(Example {
            event_type: ex.event_type,
            file: ex.file,
            body,
            headers: ex
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        });
    }
    Ok(Template {
        key: key.to_owned(),
        name: raw.name,
        description: raw.description,
        categories: raw.categories,
        website_url: raw.website_url,
        webhooks_docs_url: raw.webhooks_docs_url,
        signing: raw.signing,
        secret: raw.secret,
        kind,
        defaults_toml: defaults,
        defaults: defaults_json,
        examples,
    })
}
