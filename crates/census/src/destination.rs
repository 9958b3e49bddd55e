//! The JSON-RPC handler of `POST /v1/integrations/census/custom-destination`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tributary_core::{
    json::json_type,
    plan::{ActionPayload, AudienceMember},
};
use tributary_resource_api::{
    ResourceError,
    jsonrpc::{self, Dispatch, RowWrite, RpcError},
    values::{attributes_without, check_user_attributes, id_at},
};

use crate::catalog::{self, CensusObject, MAX_BATCH_SIZE};

/// The custom destination. Free to construct per request.
#[derive(Clone, Copy, Debug, Default)]
pub struct CustomDestination;

impl CustomDestination {
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
        let id = &req.id;
        let reply = |result: Value| Dispatch::Reply(jsonrpc::success(id, result));
        let result = match req.method.as_str() {
            "test_connection" => Ok(reply(json!({"success": true}))),
            "list_objects" => Ok(reply(catalog::list_objects())),
            "list_fields" => {
                object(id, &req.params, "/object").map(|o| reply(catalog::list_fields(o)))
            }
            "supported_operations" => {
                object(id, &req.params, "/object").map(|o| reply(catalog::supported_operations(o)))
            }
            "get_sync_speed" => Ok(reply(catalog::sync_speed())),
            "sync_batch" => sync_batch(id, &req.params),
            other => Err(RpcError::new(
                id.clone(),
                jsonrpc::METHOD_NOT_FOUND,
                format!("method `{other}` not found"),
            )),
        };
        result.unwrap_or_else(|e| Dispatch::Reply(e.to_response()))
    }
}

/// `{object: {object_api_name}}` at `at` (or a bare name).
fn object(id: &Value, params: &Value, at: &str) -> Result<CensusObject, RpcError> {
    let value = params.pointer(at);
    let name = match value {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o
            .get("object_api_name")
            .and_then(Value::as_str)
            .unwrap_or(""),
        _ => {
            return Err(RpcError::invalid_params(
                id.clone(),
                at,
                "`object` with `object_api_name` is required",
            ));
        }
    };
    CensusObject::from_api_name(name).ok_or_else(|| {
        RpcError::invalid_params(
            id.clone(),
            &format!("{at}/object_api_name"),
            format!("unknown object `{name}`; expected users, objects or audiences"),
        )
    })
}

fn sync_batch(id: &Value, params: &Value) -> Result<Dispatch, RpcError> {
    let object = object(id, params, "/sync_plan/object")?;
    let operation = match params.pointer("/sync_plan/operation") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "upsert".to_owned(),
        Some(other) => {
            return Err(RpcError::invalid_params(
                id.clone(),
                "/sync_plan/operation",
                format!("`operation` must be a string, not {}", json_type(other)),
            ));
        }
    };
    let remove = matches!(operation.as_str(), "delete" | "remove");
    let records = match params.get("records") {
        Some(Value::Array(r)) if r.len() > MAX_BATCH_SIZE => {
            return Err(RpcError::invalid_params(
                id.clone(),
                "/records",
                format!(
                    "`records` has {} records; at most {MAX_BATCH_SIZE} are allowed",
                    r.len()
                ),
            ));
        }
        Some(Value::Array(r)) => r,
        _ => {
            return Err(RpcError::invalid_params(
                id.clone(),
                "/records",
                "`records` is required and must be an array",
            ));
        }
    };
    let identifier = identifier_field(params).unwrap_or_else(|| object.identifier().to_owned());
    let mut payloads = Vec::new();
    let mut audiences: BTreeMap<String, Vec<AudienceMember>> = BTreeMap::new();
    let mut results = Vec::with_capacity(records.len());
    let mut rejected = 0;
    for (i, record) in records.iter().enumerate() {
        let field = format!("/records/{i}");
        let ident = record.get(&identifier).cloned().unwrap_or(Value::Null);
        match record_payload(record, &field, &identifier, object, remove) {
            Ok(Action::Payload(p)) => {
                payloads.push(p);
                results.push(json!({"identifier": ident, "success": true}));
            }
            Ok(Action::Member(audience, m)) => {
                audiences.entry(audience).or_default().push(m);
                results.push(json!({"identifier": ident, "success": true}));
            }
            Err(e) => {
                rejected += 1;
                results.push(
                    json!({"identifier": ident, "success": false, "error_message": e.message()}),
                );
            }
        }
    }
    for (audience, members) in audiences {
        payloads.push(if remove {
            ActionPayload::RemoveAudienceMember { audience, members }
        } else {
            // Census needs the audience to exist first (the product's
            // rule); creating it is Hightouch's behaviour only.
            ActionPayload::AddAudienceMember {
                audience,
                members,
                create_audience: false,
            }
        });
    }
    Ok(Dispatch::Write(RowWrite {
        event_type: format!("census.{}.{operation}", object.api_name()),
        data: params.clone(),
        payloads,
        accepted: records.len() - rejected,
        rejected,
        reply: jsonrpc::success(id, json!({"record_results": results})),
    }))
}

/// The schema field Census marks as the active identifier.
fn identifier_field(params: &Value) -> Option<String> {
    params
        .pointer("/sync_plan/schema")?
        .as_object()?
        .iter()
        .find(|(_, v)| v.get("active_identifier").and_then(Value::as_bool) == Some(true))
        .map(|(k, _)| k.clone())
}

enum Action {
    Payload(ActionPayload),
    Member(String, AudienceMember),
}

fn record_payload(
    record: &Value,
    field: &str,
    identifier: &str,
    object: CensusObject,
    remove: bool,
) -> Result<Action, ResourceError> {
    let Value::Object(map) = record else {
        return Err(ResourceError::Invalid {
            code: "invalid_type",
            field: field.to_owned(),
            message: format!("a record must be an object, not {}", json_type(record)),
        });
    };
    let id = id_at(map.get(identifier), &format!("{field}/{identifier}"))?;
    Ok(match object {
        CensusObject::Users if remove => Action::Payload(ActionPayload::DeleteUser { user_id: id }),
        CensusObject::Users => {
            check_user_attributes(map, field)?;
            Action::Payload(ActionPayload::IdentifyUser {
                user_id: id,
                attributes: attributes_without(map, &[identifier, "id"]),
            })
        }
        CensusObject::Objects => {
            let collection = id_at(map.get("collection"), &format!("{field}/collection"))?;
            if remove {
                Action::Payload(ActionPayload::DeleteObject { collection, id })
            } else {
                Action::Payload(ActionPayload::SetObject {
                    collection,
                    id,
                    attributes: attributes_without(map, &[identifier, "id", "collection"]),
                })
            }
        }
        CensusObject::Audiences => {
            let audience = id_at(map.get("audience_key"), &format!("{field}/audience_key"))?;
            let tenant = match map.get("tenant") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(t) => Some(id_at(Some(t), &format!("{field}/tenant"))?),
            };
            Action::Member(
                audience,
                AudienceMember {
                    user_id: id,
                    tenant,
                },
            )
        }
    })
}
