//! A source as a JSON document: the form the management API takes and the
//! store keeps, with the same keys as a `[[sources]]` table in the file.
//!
//! A document is validated by the file's own loader (it is written out as
//! TOML and loaded), so a source is accepted or refused by the same rules
//! and with the same messages wherever it comes from. Errors name the field
//! as a JSON pointer into the document.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::json::pointer_token;

use super::{
    load::{ConfigErrors, load},
    model::{EnvironmentConfig, SourceConfig},
};

/// A source as a JSON object with the keys of a `[[sources]]` table.
pub type SourceDocument = Map<String, Value>;

/// One problem in a source document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentError {
    /// JSON pointer into the document, e.g. `/environments/production/mappings/0/workflow`.
    pub pointer: String,
    /// What is wrong (the loader's message).
    pub message: String,
}

/// Validates and compiles a source document against the environments the
/// configuration declares. `${NAME}` references are not expanded: through
/// the API a value is given as it is.
pub fn source_from_document(
    document: &Value,
    environments: &BTreeMap<String, EnvironmentConfig>,
) -> Result<SourceConfig, Vec<DocumentError>> {
    let Value::Object(fields) = document else {
        return Err(vec![DocumentError {
            pointer: String::new(),
            message: "a source is a JSON object".to_owned(),
        }]);
    };
    let mut nulls = Vec::new();
    find_nulls(document, &mut String::new(), &mut nulls);
    if !nulls.is_empty() {
        return Err(nulls
            .into_iter()
            .map(|pointer| DocumentError {
                pointer,
                message: "null is not a value here; leave the field out instead".to_owned(),
            })
            .collect());
    }
    let text = toml_text(environments.keys(), std::slice::from_ref(fields)).map_err(|message| {
        vec![DocumentError {
            pointer: String::new(),
            message,
        }]
    })?;
    let config = load("(document)", &text, &|_| None).map_err(|errors| pointers(&errors))?;
    config.sources.into_iter().next().ok_or_else(|| {
        vec![DocumentError {
            pointer: String::new(),
            message: "the document holds no source".to_owned(),
        }]
    })
}

/// Sources as `[[sources]]` tables of a configuration file, each
/// document's keys as they are.
pub fn sources_toml(documents: &[Map<String, Value>]) -> Result<String, String> {
    toml_text(std::iter::empty(), documents)
}

/// The `[[sources]]` tables of a configuration file as documents, values
/// as written (`${NAME}` references unexpanded). The file should have
/// loaded first: this only reads its shape.
pub fn source_documents(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    let Some(toml::Value::Array(sources)) = table.get("sources") else {
        return Ok(Vec::new());
    };
    Ok(sources
        .iter()
        .filter_map(|s| match super::load::to_json(s) {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

fn toml_text<'a>(
    environments: impl Iterator<Item = &'a String>,
    documents: &[Map<String, Value>],
) -> Result<String, String> {
    let mut root = toml::Table::new();
    let envs: toml::Table = environments
        .map(|slug| (slug.clone(), toml::Value::Table(toml::Table::new())))
        .collect();
    if !envs.is_empty() {
        root.insert("environments".to_owned(), toml::Value::Table(envs));
    }
    let sources = documents
        .iter()
        .map(|d| toml::Value::try_from(d).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    root.insert("sources".to_owned(), toml::Value::Array(sources));
    toml::to_string(&root).map_err(|e| e.to_string())
}

fn find_nulls(value: &Value, at: &mut String, out: &mut Vec<String>) {
    let len = at.len();
    match value {
        Value::Null => out.push(at.clone()),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                find_nulls(v, at, out);
                at.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (k, v) in fields {
                at.push('/');
                at.push_str(&pointer_token(k));
                find_nulls(v, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// The loader names fields like `sources[web].environments.production.mappings[2].workflow`;
/// a document is one source, so its pointer starts after `sources[...]`.
fn pointers(errors: &ConfigErrors) -> Vec<DocumentError> {
    errors
        .0
        .iter()
        .map(|e| DocumentError {
            pointer: field_pointer(&e.field),
            message: e.message.clone(),
        })
        .collect()
}

/// `sources[x].environments.production.mappings[2].workflow` ->
/// `/environments/production/mappings/2/workflow`.
pub(crate) fn field_pointer(field: &str) -> String {
    let rest = field
        .strip_prefix("sources[")
        .and_then(|r| r.find(']').map(|end| &r[end + 1..]))
        .unwrap_or(field);
    let mut out = String::new();
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push('/');
            out.push_str(&pointer_token(name));
        }
        for index in indexes.split(['[', ']']).filter(|i| !i.is_empty()) {
            out.push('/');
            out.push_str(&pointer_token(index));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkConfig;
    use serde_json::json;

    fn envs() -> BTreeMap<String, EnvironmentConfig> {
        ["development", "production"]
            .into_iter()
            .map(|e| {
                (
                    e.to_owned(),
                    EnvironmentConfig {
                        sink: SinkConfig::Local,
                        rate_limits: BTreeMap::new(),
                    },
                )
            })
            .collect()
    }

    const TOKEN: &str = "tok_abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn a_valid_document_compiles_like_the_file() {
        let doc = json!({
            "key": "web", "kind": "segment", "name": "Web", "description": "the site",
            "environments": { "production": {
                "token": TOKEN,
                "mappings": [{ "id": "welcome", "event": "Signed Up", "action": "trigger_workflow",
                               "workflow": "welcome", "recipients": "userId" }]
            }}
        });
        let source = source_from_document(&doc, &envs()).unwrap();
        assert_eq!(source.key, "web");
        assert_eq!(source.description.as_deref(), Some("the site"));
        let env = &source.environments["production"];
        assert_eq!(env.token.expose(), TOKEN);
        assert_eq!(env.mappings[0].id, "welcome");
    }

    #[test]
    fn errors_name_the_field_as_a_pointer_with_the_loaders_message() {
        let doc = json!({
            "key": "web", "kind": "segment",
            "environments": { "production": {
                "token": TOKEN,
                "mappings": [{ "event": "Signed Up", "action": "trigger_workflow",
                               "recipients": "userId" }]
            }}
        });
        let errors = source_from_document(&doc, &envs()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.pointer == "/environments/production/mappings/0/workflow"),
            "{errors:?}"
        );
        let unknown = json!({"key": "web", "kind": "segment", "colour": "red",
            "environments": {"staging": {"token": TOKEN}}});
        let errors = source_from_document(&unknown, &envs()).unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/colour"), "{errors:?}");
        assert!(pointers.contains(&"/environments/staging"), "{errors:?}");
    }

    #[test]
    fn nulls_and_non_objects_are_refused_by_pointer() {
        let errors =
            source_from_document(&json!({"key": "web", "name": null}), &envs()).unwrap_err();
        assert_eq!(errors[0].pointer, "/name");
        assert!(source_from_document(&json!([1]), &envs()).is_err());
    }

    #[test]
    fn field_names_become_pointers() {
        assert_eq!(
            field_pointer("sources[web].environments.production.mappings[2].workflow"),
            "/environments/production/mappings/2/workflow"
        );
        assert_eq!(field_pointer("sources[0].key"), "/key");
        assert_eq!(field_pointer("sources[a/b].x~y"), "/x~0y");
    }

    #[test]
    fn file_sources_read_back_as_documents_and_write_out_again() {
        let text = "[environments.production]\n[[sources]]\nkey = \"web\"\nkind = \"segment\"\n\
                    [sources.environments.production]\ntoken = \"${WEB_TOKEN}\"\n";
        let docs = source_documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0]["environments"]["production"]["token"],
            json!("${WEB_TOKEN}")
        );
        let out = sources_toml(&docs).unwrap();
        assert_eq!(source_documents(&out).unwrap(), docs);
    }

    proptest::proptest! {
        #[test]
        fn any_json_document_is_refused_or_compiled_without_panicking(
            key in "[a-z]{0,8}", kind in "[a-z-]{0,12}", token in "[A-Za-z0-9_$-]{0,30}",
            event in ".{0,12}", extra in proptest::option::of(".{0,8}")
        ) {
            let mut doc = json!({"key": key, "kind": kind,
                "environments": {"production": {"token": token,
                    "mappings": [{"event": event, "action": "identify_user", "user_id": "userId"}]}}});
            if let Some(extra) = extra {
                doc[extra] = json!(1);
            }
            let _ = source_from_document(&doc, &envs());
        }
    }
}
