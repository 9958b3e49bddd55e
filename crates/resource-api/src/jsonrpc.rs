//! JSON-RPC 2.0 envelopes for the Hightouch and Census connectors: request
//! parsing with the spec's error codes, and response rendering.

use serde_json::{Map, Value, json};
use tributary_core::{json::json_type, plan::ActionPayload};

/// -32700: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// -32600: JSON, but not a JSON-RPC request.
pub const INVALID_REQUEST: i64 = -32600;
/// -32601: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// -32602: the method's params are wrong.
pub const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC request.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcRequest {
    /// The id, echoed in the response (string, number or null).
    pub id: Value,
    /// The method name.
    pub method: String,
    /// The params (`{}` when absent).
    pub params: Value,
}

/// A JSON-RPC error, answered in a 200 response as the protocol wants. A
/// reply value, not a Rust error: the crate's one error enum is `ResourceError`.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// The request id (`null` when it could not be read).
    pub id: Value,
    /// The spec's code.
    pub code: i64,
    /// What was wrong, naming the field.
    pub message: String,
    /// The JSON pointer of the offending value inside `params`, when there is one.
    pub field: Option<String>,
}

impl RpcError {
    /// An error for request `id`.
    pub fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Invalid params at `field` (a pointer inside `params`).
    pub fn invalid_params(id: Value, field: &str, message: impl Into<String>) -> Self {
        Self {
            id,
            code: INVALID_PARAMS,
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// The response object.
    pub fn to_response(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(f) = &self.field {
            error["data"] = json!({"field": f});
        }
        json!({"jsonrpc": "2.0", "id": self.id, "error": error})
    }
}

/// A success response.
pub fn success(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Parses one JSON-RPC request. The product's schema requires `id`,
/// `method` and `jsonrpc`; batches are refused (neither tool sends them).
pub fn parse_request(body: &[u8]) -> Result<RpcRequest, RpcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::new(Value::Null, PARSE_ERROR, format!("parse error: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(RpcError::new(
            Value::Null,
            INVALID_REQUEST,
            format!(
                "the request must be a JSON object, not {}",
                json_type(&value)
            ),
        ));
    };
    let id = match map.remove("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id,
        Some(Value::Null) | None => {
            return Err(RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                "`id` is required",
            ));
        }
        Some(other) => {
            return Err(RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                format!(
                    "`id` must be a string or a number, not {}",
                    json_type(&other)
                ),
            ));
        }
    };
    match map.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        _ => {
            return Err(RpcError::new(
                id,
                INVALID_REQUEST,
                "`jsonrpc` must be \"2.0\"",
            ));
        }
    }
    let Some(Value::String(method)) = map.remove("method") else {
        return Err(RpcError::new(
            id,
            INVALID_REQUEST,
            "`method` must be a string",
        ));
    };
    let params = match map.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(other) => {
            return Err(RpcError::invalid_params(
                id,
                "",
                format!("`params` must be an object, not {}", json_type(&other)),
            ));
        }
    };
    Ok(RpcRequest { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_codes() {
        assert_eq!(parse_request(b"{").unwrap_err().code, PARSE_ERROR);
        assert_eq!(parse_request(b"[]").unwrap_err().code, INVALID_REQUEST);
        assert_eq!(
            parse_request(br#"{"id":1,"method":"x"}"#).unwrap_err().code,
            INVALID_REQUEST
        );
        let e =
            parse_request(br#"{"id":"a","jsonrpc":"2.0","method":"x","params":[1]}"#).unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_PARAMS, json!("a")));
        let r = parse_request(br#"{"id":7,"jsonrpc":"2.0","method":"add"}"#).unwrap();
        assert_eq!(
            (r.id, r.method.as_str(), r.params),
            (json!(7), "add", json!({}))
        );
    }
}

/// What a connector makes of one JSON-RPC request.
#[derive(Clone, Debug, PartialEq)]
pub enum Dispatch {
    /// Answer at once (metadata methods and errors): nothing is stored.
    Reply(Value),
    /// Store one event with these payloads, then answer `reply` (a 2xx
    /// means the accepted rows are durable).
    Write(RowWrite),
}

/// A data call (`add`, `sync_batch`, ...) as one event.
#[derive(Clone, Debug, PartialEq)]
pub struct RowWrite {
    /// The event type (`hightouch.audiences.add`, `census.users.upsert`).
    pub event_type: String,
    /// The event's `data`: the call's params.
    pub data: Value,
    /// The accepted rows' actions.
    pub payloads: Vec<ActionPayload>,
    /// Rows accepted.
    pub accepted: usize,
    /// Rows rejected, each with its reason in `reply`.
    pub rejected: usize,
    /// The JSON-RPC response to give once the event is stored.
    pub reply: Value,
}
