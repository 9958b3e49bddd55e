//! Small helpers over JSON values shared by the adapters and the engine.

use serde_json::Value;

/// Escapes one JSON pointer reference token (RFC 6901): `~` as `~0`, `/`
/// as `~1`. Every pointer the workspace writes (adapter errors, document
/// errors, configuration diffs) escapes its keys with it.
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The JSON type name of a value (`"null"`, `"boolean"`, `"number"`,
/// `"string"`, `"array"`, `"object"`), for error messages that say what was
/// found where something else was expected.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_escape_slash_and_tilde() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
