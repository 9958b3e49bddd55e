//! Small helpers over JSON values shared by the adapters and the engine.

use serde_json::Value;

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
