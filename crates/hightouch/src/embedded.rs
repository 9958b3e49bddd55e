//! The JSON-RPC 2.0 handler of `POST /v1/integrations/hightouch/embedded-destination`.

use serde_json::{Map, Value, json};
use tributary_core::{
    json::json_type,
    plan::{ActionPayload, AudienceMember},
};
use tributary_resource_api::{
    ResourceError,
    jsonrpc::{self, Dispatch, RowWrite, RpcError},
    values::{attributes_without, check_user_attributes, id_at},
};

use crate::catalog::{self, BATCH_SIZE, HightouchObject};

/// The embedded destination. Free to construct per request.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbeddedDestination;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Change,
    Remove,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Change => "change",
            Self::Remove => "remove",
        }
    }
}

impl EmbeddedDestination {
    /// The destination.
    pub fn new() -> Self {
        Self
    }

    /// Handles one request body. Never panics; protocol errors are replies
    /// with the spec's codes.
    pub fn handle(&self, body: &[u8]) -> Dispatch {
        let req = match jsonrpc::parse_request(body) {
            Ok(r) => r,
            Err(e) => return Dispatch::Reply(e.to_response()),
        };
        match self.dispatch(&req.id, &req.method, &req.params) {
            Ok(d) => d,
            Err(e) => Dispatch::Reply(e.to_response()),
        }
    }

    fn dispatch(&self, id: &Value, method: &str, params: &Value) -> Result<Dispatch, RpcError> {
        let reply = |result: Value| Ok(Dispatch::Reply(jsonrpc::success(id, result)));
        match method {
            "list_objects" => reply(catalog::list_objects()),
            "list_modes" => reply(catalog::list_modes(object(id, params)?)),
            "list_fields" => reply(catalog::list_fields(object(id, params)?)),
            "list_options" => reply(catalog::list_options(object(id, params)?)),
            "behavior" => reply(catalog::behavior(object(id, params)?)),
            "validate" => reply(validate(params)),
            "add" => write(id, params, Op::Add),
            "change" => write(id, params, Op::Change),
            "remove" => write(id, params, Op::Remove),
            other => Err(RpcError::new(
                id.clone(),
                jsonrpc::METHOD_NOT_FOUND,
                format!("method `{other}` not found"),
            )),
        }
    }
}

/// `params.object`, or `params.configuration.object`.
fn object(id: &Value, params: &Value) -> Result<HightouchObject, RpcError> {
    let (value, field) = match params.get("object") {
        Some(v) => (Some(v), "/object"),
        None => (
            params.get("configuration").and_then(|c| c.get("object")),
            "/configuration/object",
        ),
    };
    let Some(value) = value else {
        return Err(RpcError::invalid_params(
            id.clone(),
            "/object",
            "`object` is required (users, objects or audiences)",
        ));
    };
    let name = match value {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("id").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    HightouchObject::from_id(name).ok_or_else(|| {
        RpcError::invalid_params(
            id.clone(),
            field,
            format!("unknown object `{name}`; expected users, objects or audiences"),
        )
    })
}

fn config_string<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params
        .get("configuration")
        .and_then(|c| c.get(key))
        .or_else(|| params.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn validate(params: &Value) -> Value {
    let mut errors = Vec::new();
    match object(&Value::Null, params) {
        Err(e) => errors.push(json!({"field": e.field, "message": e.message})),
        Ok(HightouchObject::Audiences) if config_string(params, "audience_key").is_none() => {
            errors.push(json!({"field": "/configuration/audience_key", "message": "`audience_key` is required"}));
        }
        Ok(HightouchObject::Objects) if config_string(params, "collection").is_none() => {
            errors.push(json!({"field": "/configuration/collection", "message": "`collection` is required"}));
        }
        Ok(_) => {}
    }
    json!({"valid": errors.is_empty(), "errors": errors})
}

fn write(id: &Value, params: &Value, op: Op) -> Result<Dispatch, RpcError> {
    let object = object(id, params)?;
    let id_column = match params.get("idColumn") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(RpcError::invalid_params(
                id.clone(),
                "/idColumn",
                "`idColumn` is required and must be a column name",
            ));
        }
    };
    let rows = match params.get("rows") {
        Some(Value::Array(rows)) if rows.len() > BATCH_SIZE => {
            return Err(RpcError::invalid_params(
                id.clone(),
                "/rows",
                format!(
                    "`rows` has {} rows; at most {BATCH_SIZE} are allowed",
                    rows.len()
                ),
            ));
        }
        Some(Value::Array(rows)) => rows,
        _ => {
            return Err(RpcError::invalid_params(
                id.clone(),
                "/rows",
                "`rows` is required and must be an array",
            ));
        }
    };
    let required = |key: &str| {
        config_string(params, key)
            .map(str::to_owned)
            .ok_or_else(|| {
                RpcError::invalid_params(
                    id.clone(),
                    &format!("/configuration/{key}"),
                    format!("`configuration.{key}` is required for {}", object.id()),
                )
            })
    };
    let mirror = config_string(params, "mode").is_none_or(|m| m != "insert");
    let mut payloads = Vec::new();
    let mut members = Vec::new();
    let mut rejected = Vec::new();
    let audience = match object {
        HightouchObject::Audiences => Some(required("audience_key")?),
        _ => None,
    };
    let collection = match object {
        HightouchObject::Objects => Some(required("collection")?),
        _ => None,
    };
    for (i, row) in rows.iter().enumerate() {
        let field = format!("/rows/{i}");
        let result = row_payload(row, &field, &id_column, object, op, collection.as_deref());
        match result {
            Ok(RowAction::Payload(p)) => payloads.push(p),
            Ok(RowAction::Member(m)) => members.push(m),
            Err(e) => rejected.push(json!({
                "id": row.get(&id_column).cloned().unwrap_or_else(|| json!(i)),
                "reason": e.message(),
                "field": e.field(),
            })),
        }
    }
    let accepted = rows.len() - rejected.len();
    // Insert-only syncs ignore removals: the rows are accepted, nothing runs.
    if op == Op::Remove && !mirror {
        members.clear();
    }
    if let Some(audience) = audience
        && !members.is_empty()
    {
        payloads.push(match op {
            Op::Remove => ActionPayload::RemoveAudienceMember { audience, members },
            _ => ActionPayload::AddAudienceMember {
                audience,
                members,
                // The product creates a missing static audience for
                // Hightouch on the first run.
                create_audience: true,
            },
        });
    }
    let rejected_count = rejected.len();
    Ok(Dispatch::Write(RowWrite {
        event_type: format!("hightouch.{}.{}", object.id(), op.name()),
        data: params.clone(),
        payloads,
        accepted,
        rejected: rejected_count,
        reply: jsonrpc::success(id, json!({"rejectedRows": rejected})),
    }))
}

enum RowAction {
    Payload(ActionPayload),
    Member(AudienceMember),
}

fn row_payload(
    row: &Value,
    field: &str,
    id_column: &str,
    object: HightouchObject,
    op: Op,
    collection: Option<&str>,
) -> Result<RowAction, ResourceError> {
    let Value::Object(map) = row else {
        return Err(ResourceError::Invalid {
            code: "invalid_type",
            field: field.to_owned(),
            message: format!("a row must be an object, not {}", json_type(row)),
        });
    };
    let id = id_at(map.get(id_column), &format!("{field}/{id_column}"))?;
    let attributes = |map: &Map<String, Value>| attributes_without(map, &[id_column, "id"]);
    Ok(match (object, op) {
        (HightouchObject::Users, Op::Remove) => {
            RowAction::Payload(ActionPayload::DeleteUser { user_id: id })
        }
        (HightouchObject::Users, _) => {
            check_user_attributes(map, field)?;
            RowAction::Payload(ActionPayload::IdentifyUser {
                user_id: id,
                attributes: attributes(map),
            })
        }
        (HightouchObject::Objects, Op::Remove) => RowAction::Payload(ActionPayload::DeleteObject {
            collection: collection.unwrap_or_default().to_owned(),
            id,
        }),
        (HightouchObject::Objects, _) => RowAction::Payload(ActionPayload::SetObject {
            collection: collection.unwrap_or_default().to_owned(),
            id,
            attributes: attributes(map),
        }),
        (HightouchObject::Audiences, Op::Change) => {
            return Err(ResourceError::Invalid {
                code: "unsupported",
                field: field.to_owned(),
                message: "audiences support add and remove only, not change".to_owned(),
            });
        }
        (HightouchObject::Audiences, _) => {
            let tenant = match map.get("tenant") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(t) => Some(id_at(Some(t), &format!("{field}/tenant"))?),
            };
            RowAction::Member(AudienceMember {
                user_id: id,
                tenant,
            })
        }
    })
}
