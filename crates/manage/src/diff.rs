//! What changed between two source documents, secrets masked: the
//! revision log's record and the promote dry run's answer.

use serde::Serialize;
use serde_json::{Map, Value};
use tributary_core::json::pointer_token;

use tributary_core::config::{SECRET_KEYS, SECRET_TABLES};

use crate::secrets::MaskedSecret;

/// One changed value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// JSON pointer into the source document.
    pub pointer: String,
    /// The value before (absent: added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after (absent: removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Every leaf that differs between `before` and `after`; mappings are
/// compared by id, so a reordered list is not a change of every element.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<Change> {
    let mut out = Vec::new();
    walk(before, after, &mut String::new(), Secrecy::Open, &mut out);
    out
}

fn walk(
    before: Option<&Value>,
    after: Option<&Value>,
    at: &mut String,
    secret: Secrecy,
    out: &mut Vec<Change>,
) {
    if before == after {
        return;
    }
    let len = at.len();
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                push(at, k);
                walk(b.get(k), a.get(k), at, secret.of_member(k), out);
                at.truncate(len);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) if by_id(b) && by_id(a) => {
            let ids = |v: &Vec<Value>| -> Vec<(String, Value)> {
                v.iter()
                    .map(|m| (m["id"].as_str().unwrap_or_default().to_owned(), m.clone()))
                    .collect()
            };
            let (b, a) = (ids(b), ids(a));
            let mut seen: Vec<&String> = b.iter().map(|(id, _)| id).collect();
            seen.extend(
                a.iter()
                    .map(|(id, _)| id)
                    .filter(|id| !b.iter().any(|(x, _)| x == *id)),
            );
            for id in seen {
                push(at, id);
                let find = |list: &Vec<(String, Value)>| {
                    list.iter().find(|(x, _)| x == id).map(|(_, v)| v.clone())
                };
                walk(find(&b).as_ref(), find(&a).as_ref(), at, Secrecy::Open, out);
                at.truncate(len);
            }
        }
        _ => out.push(Change {
            pointer: at.clone(),
            before: before.map(|v| shown(v, secret)),
            after: after.map(|v| shown(v, secret)),
        }),
    }
}

fn by_id(list: &[Value]) -> bool {
    !list.is_empty()
        && list
            .iter()
            .all(|m| m.get("id").and_then(Value::as_str).is_some())
}

fn push(at: &mut String, segment: &str) {
    at.push('/');
    at.push_str(&pointer_token(segment));
}

/// Whether a value is a secret, by the key it sits under.
#[derive(Clone, Copy, PartialEq)]
enum Secrecy {
    /// Not a secret.
    Open,
    /// A secret string.
    Secret,
    /// A table whose string members are secrets (`vars`).
    Table,
}

impl Secrecy {
    fn of_key(key: &str) -> Self {
        if SECRET_KEYS.contains(&key) {
            Self::Secret
        } else if SECRET_TABLES.contains(&key) {
            Self::Table
        } else {
            Self::Open
        }
    }

    /// The secrecy of member `key` of a value with this secrecy.
    fn of_member(self, key: &str) -> Self {
        match self {
            Self::Table => Self::Secret,
            _ => Self::of_key(key),
        }
    }
}

fn shown(value: &Value, secret: Secrecy) -> Value {
    match value {
        Value::String(s) if secret == Secrecy::Secret => {
            serde_json::to_value(MaskedSecret::of(s)).unwrap_or_default()
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), shown(v, secret.of_member(k))))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| shown(v, Secrecy::Open)).collect())
        }
        other => other.clone(),
    }
}

/// A document with every secret replaced by its masked form.
pub fn masked(document: &Map<String, Value>) -> Map<String, Value> {
    document
        .iter()
        .map(|(k, v)| (k.clone(), shown(v, Secrecy::of_key(k))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_leaves_with_secrets_masked_and_mappings_by_id() {
        let before = json!({"name": "Web", "environments": {"production": {
            "token": "tok_aaaaaaaaaaaaaaaaaaaaaaaa",
            "mappings": [{"id": "a", "event": "X"}, {"id": "b", "event": "Y"}]}}});
        let after = json!({"name": "Site", "environments": {"production": {
            "token": "tok_bbbbbbbbbbbbbbbbbbbbbbbb",
            "mappings": [{"id": "b", "event": "Y"}, {"id": "a", "event": "Z"}]}}});
        let changes = diff(Some(&before), Some(&after));
        let pointers: Vec<_> = changes.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            vec![
                "/environments/production/mappings/a/event",
                "/environments/production/token",
                "/name"
            ]
        );
        let token = &changes[1];
        let text = serde_json::to_string(token).unwrap();
        assert!(!text.contains("tok_bbbb"), "{text}");
        assert!(text.contains("fingerprint"), "{text}");
    }

    #[test]
    fn a_scripts_vars_are_masked_and_its_text_is_not() {
        let vars = |v: &str| {
            json!({"environments": {"production": {"preprocess": {
                "script": format!("export function main() {{ /* {v} */ }}"),
                "vars": {"HOOK": format!("whsec_{v}")}}}}})
        };
        let changes = diff(Some(&vars("one")), Some(&vars("two")));
        let text = serde_json::to_string(&changes).unwrap();
        assert!(!text.contains("whsec_"), "{text}");
        assert!(text.contains("/* two */"), "{text}");
        let Value::Object(document) = vars("three") else {
            panic!()
        };
        let shown = Value::Object(masked(&document)).to_string();
        assert!(!shown.contains("whsec_three"), "{shown}");
        assert!(shown.contains("/* three */"), "{shown}");
    }

    #[test]
    fn a_new_document_is_one_change_with_nothing_before() {
        let after = json!({"key": "web", "environments": {"production": {"token": "tok_secretsecretsecretsecret"}}});
        let changes = diff(None, Some(&after));
        assert_eq!(changes.len(), 1);
        assert!(changes[0].before.is_none());
        assert!(
            !serde_json::to_string(&changes)
                .unwrap()
                .contains("tok_secret")
        );
    }
}
