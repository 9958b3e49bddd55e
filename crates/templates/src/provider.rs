//! Templates in the product's Management API shape (its "source
//! providers"): what `GET /api/v1/source_providers` and
//! `GET /api/v1/source_providers/{key}` answer (docs/templates.md,
//! "The source providers API").

use serde_json::{Map, Value, json};
use tributary_core::ActionType;

use crate::{Template, TemplateError, all};

const INCLUDES: &str =
    "default_action_mappings, example_payloads, preprocessing_script, branding, static_fields";

/// What a provider answer holds beyond its summary (the `include` query
/// parameter: a comma-separated list of the product's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// The mappings a new source starts with.
    pub default_action_mappings: bool,
    /// The example payloads, by event type.
    pub example_payloads: bool,
    /// The product's verification script. Tributary verifies with its
    /// declarative schemes, so this is always `null`.
    pub preprocessing_script: bool,
    /// Logos and colours: none are shipped, always `null`.
    pub branding: bool,
    /// Extra configuration fields: templates need none, always `null`.
    pub static_fields: bool,
}

impl Include {
    /// Parses `include` (`a,b` or repeated values already joined with
    /// commas). Empty items are ignored; an unknown one is an error naming it.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut include = Self::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let flag = match item {
                "default_action_mappings" => &mut include.default_action_mappings,
                "example_payloads" => &mut include.example_payloads,
                "preprocessing_script" => &mut include.preprocessing_script,
                "branding" => &mut include.branding,
                "static_fields" => &mut include.static_fields,
                other => {
                    let shown: String = other.chars().take(64).collect();
                    return Err(TemplateError::UnknownInclude(shown, INCLUDES));
                }
            };
            *flag = true;
        }
        Ok(include)
    }
}

/// Every template's summary, as the product lists them: `entries` and a
/// `page_info` (one page holds them all).
pub fn providers() -> Value {
    let entries: Vec<Value> = all().iter().map(summary).collect();
    json!({
        "entries": entries,
        "page_info": {"after": null, "before": null, "page_size": entries.len()},
    })
}

/// One template with what `include` asks for.
pub fn provider(template: &Template, include: &Include) -> Value {
    let mut out = summary(template);
    let Value::Object(fields) = &mut out else {
        return out;
    };
    if include.default_action_mappings {
        fields.insert(
            "default_action_mappings".into(),
            Value::Array(default_action_mappings(template)),
        );
    }
    if include.example_payloads {
        let examples: Map<String, Value> = template
            .examples
            .iter()
            .map(|e| {
                (
                    e.event_type.clone(),
                    json!({"body": e.body, "headers": e.headers}),
                )
            })
            .collect();
        fields.insert("example_payloads".into(), Value::Object(examples));
    }
    for (wanted, name) in [
        (include.preprocessing_script, "preprocessing_script"),
        (include.branding, "branding"),
        (include.static_fields, "static_fields"),
    ] {
        if wanted {
            fields.insert(name.into(), Value::Null);
        }
    }
    out
}

fn summary(t: &Template) -> Value {
    let env = t.environment_defaults();
    let mut settings = env.clone();
    settings.remove("mappings");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let dedup_path = match env.get("dedup") {
        Some(d) if d.get("enabled") == Some(&Value::Bool(false)) => None,
        Some(d) => text(d.get("key_path")),
        None => None,
    }
    .or_else(|| (t.kind != "http").then(|| "messageId".to_owned()));
    json!({
        "key": t.key,
        "name": t.name,
        "description": t.description,
        "categories": t.categories,
        "website_url": t.website_url,
        "webhooks_docs_url": t.webhooks_docs_url,
        "source_kind": t.kind,
        "default_settings": {
            "event_type_path": text(env.get("event_type_path")),
            "idempotency_key_path": dedup_path,
            "timestamp_path": text(env.get("timestamp_path")),
            "enforce_verification": t.verification_scheme().is_some(),
        },
        "verification": {
            "scheme": t.verification_scheme(),
            "signing": t.signing,
            "secret": t.secret,
        },
        "settings": settings,
    })
}

/// The template's mappings as the product writes them: `event_type`,
/// `action_type` (the product's name), `action_parameters` (the rest).
fn default_action_mappings(t: &Template) -> Vec<Value> {
    let env = t.environment_defaults();
    let Some(Value::Array(mappings)) = env.get("mappings") else {
        return Vec::new();
    };
    mappings
        .iter()
        .filter_map(Value::as_object)
        .map(|m| {
            let mut params = m.clone();
            let event = params.remove("event").unwrap_or(Value::Null);
            let action = params.remove("action").unwrap_or(Value::Null);
            let id = params.remove("id").unwrap_or(Value::Null);
            let action_type = action
                .as_str()
                .and_then(|a| a.parse::<ActionType>().ok())
                .map_or(action, |a| Value::String(a.product_name().into()));
            json!({
                "id": id,
                "event_type": event,
                "action_type": action_type,
                "action_parameters": params,
            })
        })
        .collect()
}
