//! Knock's Management API shape for sources, so scripts written against
//! Knock's API keep working against a base URL of ours
//! (docs/managing-sources.md, "Knock's shape").
//!
//! Knock calls a source environment's configuration `environment_settings`:
//! `settings` (`endpoint`, `enforce_verification`, `event_type_path`,
//! `idempotency_key_path`, `timestamp_path`, `handle_identifies`) and
//! `mappings` (`event_type`, `action_type` in its names such as
//! `workflows_trigger`, `action_parameters`, `active`). These functions turn
//! our views into that shape and its upserts into our changes; the
//! operations themselves are the [`Manager`]'s.

use serde_json::{Map, Value, json};
use tributary_core::{ActionType, config::DocumentError};

use crate::{Committed, ManageError, Manager};

/// Mapping keys that are ours, not action parameters.
const MAPPING_KEYS: [&str; 4] = ["id", "event", "action", "active"];

/// A source view (as [`Manager::source`] gives it) in Knock's `Source`
/// shape, with every environment or only `environment`.
pub fn source(view: &Value, environment: Option<&str>) -> Value {
    let mut settings = Map::new();
    for (slug, env) in view["environments"].as_object().into_iter().flatten() {
        if environment.is_some_and(|e| e != slug) {
            continue;
        }
        let mappings: Vec<Value> = env["mappings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(mapping)
            .collect();
        settings.insert(
            slug.clone(),
            json!({
                "settings": {
                    "endpoint": env["receive_url"],
                    "enforce_verification": env["verification"]["enforce"].as_bool()
                        .unwrap_or(!env["verification"].is_null()),
                    "event_type_path": env.get("event_type_path"),
                    "idempotency_key_path": env["dedup"].get("key_path"),
                    "timestamp_path": env.get("timestamp_path"),
                    "handle_identifies": env["identify"],
                },
                "mappings": mappings,
            }),
        );
    }
    json!({
        "key": view["key"],
        "name": view["name"],
        "description": view.get("description"),
        "custom_image_url": null,
        "kind": view["kind"],
        "environment_settings": settings,
    })
}

/// One of our mappings in Knock's shape.
fn mapping(m: &Value) -> Value {
    let action = m["action"]
        .as_str()
        .and_then(|a| a.parse::<ActionType>().ok())
        .map_or_else(|| m["action"].clone(), |a| json!(a.product_name()));
    let parameters: Map<String, Value> = m
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !MAPPING_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "id": m["id"],
        "event_type": m["event"],
        "action_type": action,
        "action_parameters": parameters,
        "active": m["active"],
        "is_deleted": false,
    })
}

/// A Knock mapping as one of ours; errors point into the request.
fn our_mapping(m: &Value, at: &str) -> Result<Value, ManageError> {
    let invalid = |field: &str, message: &str| {
        ManageError::Invalid(vec![DocumentError {
            pointer: format!("{at}/{field}"),
            message: message.to_owned(),
        }])
    };
    let event = m["event_type"]
        .as_str()
        .ok_or_else(|| invalid("event_type", "is required"))?;
    let action = m["action_type"]
        .as_str()
        .ok_or_else(|| invalid("action_type", "is required"))?
        .parse::<ActionType>()
        .map_err(|e| invalid("action_type", &e.to_string()))?;
    let mut out = match &m["action_parameters"] {
        Value::Object(p) => p.clone(),
        Value::Null => Map::new(),
        _ => return Err(invalid("action_parameters", "must be an object")),
    };
    out.insert("event".into(), json!(event));
    out.insert("action".into(), json!(action.as_str()));
    if let Some(active) = m.get("active").and_then(Value::as_bool) {
        out.insert("active".into(), json!(active));
    }
    if let Some(id) = m.get("id").and_then(Value::as_str) {
        out.insert("id".into(), json!(id));
    }
    Ok(Value::Object(out))
}

impl Manager {
    /// Knock's `PUT /v1/sources/{key}?environment`: creates the source when
    /// it does not exist (`kind` from the request, `http` by default), then
    /// sets its name, description, the environment's settings and, when
    /// given, its whole list of mappings, validated like every change.
    pub async fn upsert_knock_source(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        body: &Value,
    ) -> Result<Committed, ManageError> {
        let source = body.get("source").unwrap_or(body);
        if !source.is_object() {
            return Err(ManageError::invalid("/source", "must be an object"));
        }
        let exists = self.pipeline.live().source(key).is_some();
        if !exists {
            let mut create = json!({
                "key": key,
                "kind": source.get("kind").cloned().unwrap_or(json!("http")),
                "name": source.get("name").cloned().unwrap_or(json!(key)),
            });
            if let Some(d) = source.get("description").filter(|d| !d.is_null()) {
                create["description"] = d.clone();
            }
            self.create_source(actor, create).await?;
        } else {
            let mut patch = Map::new();
            for field in ["name", "description"] {
                if let Some(v) = source.get(field) {
                    patch.insert(field.into(), v.clone());
                }
            }
            if !patch.is_empty() {
                self.update_source(actor, key, None, Value::Object(patch))
                    .await?;
            }
        }
        let settings = &source["settings"];
        let mut env = Map::new();
        if let Some(v) = settings.get("handle_identifies").filter(|v| !v.is_null()) {
            env.insert("identify".into(), v.clone());
        }
        for (theirs, ours) in [
            ("event_type_path", "event_type_path"),
            ("timestamp_path", "timestamp_path"),
        ] {
            if let Some(v) = settings.get(theirs).filter(|v| !v.is_null()) {
                env.insert(ours.into(), v.clone());
            }
        }
        if let Some(v) = settings
            .get("idempotency_key_path")
            .filter(|v| !v.is_null())
        {
            env.insert("dedup".into(), json!({"key_path": v}));
        }
        if let Some(v) = settings
            .get("enforce_verification")
            .filter(|v| !v.is_null())
        {
            env.insert("verification".into(), json!({"enforce": v}));
        }
        let mut committed = None;
        if !env.is_empty() {
            committed = Some(
                self.update_environment(actor, key, environment, None, Value::Object(env))
                    .await
                    .map_err(|e| repoint(e, "/source/settings"))?,
            );
        }
        if let Some(list) = source.get("mappings").filter(|m| !m.is_null()) {
            let list = list
                .as_array()
                .ok_or_else(|| ManageError::invalid("/source/mappings", "must be a list"))?;
            let ours = list
                .iter()
                .enumerate()
                .map(|(i, m)| our_mapping(m, &format!("/source/mappings/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            committed = Some(
                self.replace_mappings(actor, key, environment, Value::Array(ours))
                    .await
                    .map_err(|e| repoint(e, "/source"))?,
            );
        }
        match committed {
            Some(c) => Ok(c),
            None => {
                let revision = self.pipeline.live().revision();
                Ok(Committed {
                    revision,
                    source: Some(self.source(key).await?),
                    secrets: Value::Null,
                })
            }
        }
    }
}

/// Errors about an environment's document, re-pointed under `prefix`.
fn repoint(e: ManageError, prefix: &str) -> ManageError {
    match e {
        ManageError::Invalid(errors) => ManageError::Invalid(
            errors
                .into_iter()
                .map(|mut d| {
                    let rest = d
                        .pointer
                        .splitn(4, '/')
                        .nth(3)
                        .map_or(String::new(), |r| format!("/{r}"));
                    d.pointer = format!("{prefix}{rest}");
                    d
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_mappings_and_knocks_translate_both_ways() {
        let ours = json!({"id": "welcome", "event": "Signed Up", "action": "trigger_workflow",
                          "workflow": "welcome", "recipients": "userId", "active": true});
        let theirs = mapping(&ours);
        assert_eq!(theirs["action_type"], "workflows_trigger");
        assert_eq!(theirs["event_type"], "Signed Up");
        assert_eq!(
            theirs["action_parameters"],
            json!({"workflow": "welcome", "recipients": "userId"})
        );
        let back = our_mapping(&theirs, "").unwrap();
        assert_eq!(back, ours);
    }

    #[test]
    fn a_knock_mapping_without_its_keys_is_refused_by_pointer() {
        let Err(ManageError::Invalid(errors)) = our_mapping(
            &json!({"action_type": "workflows_trigger"}),
            "/source/mappings/2",
        ) else {
            panic!("expected invalid")
        };
        assert_eq!(errors[0].pointer, "/source/mappings/2/event_type");
        let Err(ManageError::Invalid(errors)) =
            our_mapping(&json!({"event_type": "x", "action_type": "launch"}), "/m")
        else {
            panic!("expected invalid")
        };
        assert_eq!(errors[0].pointer, "/m/action_type");
    }

    #[test]
    fn errors_in_an_environment_point_into_the_request() {
        let e = ManageError::invalid("/environments/production/dedup/window", "bad");
        let ManageError::Invalid(errors) = repoint(e, "/source/settings") else {
            panic!()
        };
        assert_eq!(errors[0].pointer, "/source/settings/dedup/window");
    }

    proptest::proptest! {
        #[test]
        fn any_knock_mapping_translates_or_is_refused_without_panicking(
            event in proptest::option::of(".{0,10}"),
            action in proptest::option::of("[a-z_]{0,20}"),
            params in proptest::option::of(proptest::collection::btree_map("[a-z]{1,6}", ".{0,6}", 0..4)),
        ) {
            let m = json!({"event_type": event, "action_type": action, "action_parameters": params});
            let _ = our_mapping(&m, "");
        }
    }
}
