//! Reading the product API's value shapes (ids, recipients, tenants,
//! audience members, attribute maps) out of JSON, with errors naming the field.
//! Shared by the resource-API parser and the JSON-RPC connectors.

use serde_json::{Map, Value};
use tributary_core::{
    json::json_type,
    plan::{ActionPayload, AudienceMember, RecipientRef},
    reserved::{self, Entity},
};

use crate::ResourceError;

/// User attributes the product types; anything else is a custom property.
const TYPED_USER_FIELDS: &[&str] = &[
    "name",
    "email",
    "phone_number",
    "avatar",
    "locale",
    "timezone",
    "created_at",
];

/// An id: a non-empty string, or a number in its decimal form.
pub fn id_at(value: Option<&Value>, field: &str) -> Result<String, ResourceError> {
    match value {
        None | Some(Value::Null) => Err(ResourceError::missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(ResourceError::invalid(
            "empty_value",
            field,
            format!("`{}` must not be empty", pointer_name(field)),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(ResourceError::wrong_type(
            field,
            "a string",
            json_type(other),
        )),
    }
}

/// The body (or a value in it) as an object.
pub fn object_at<'a>(
    value: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, ResourceError> {
    value
        .as_object()
        .ok_or_else(|| ResourceError::wrong_type(field, "an object", json_type(value)))
}

/// An optional array field, with a length limit.
pub fn array_at<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    base: &str,
    limit: usize,
    required: bool,
) -> Result<Option<&'a Vec<Value>>, ResourceError> {
    let field = format!("{base}/{key}");
    match map.get(key) {
        None | Some(Value::Null) if required => Err(ResourceError::missing(field)),
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() > limit => {
            Err(ResourceError::too_many(field, items.len(), limit))
        }
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(ResourceError::wrong_type(
            field,
            "an array",
            json_type(other),
        )),
    }
}

/// An optional string field (`null` counts as absent).
pub fn string_at(
    map: &Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Option<String>, ResourceError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ResourceError::wrong_type(
            format!("{base}/{key}"),
            "a string",
            json_type(other),
        )),
    }
}

/// Checks that the typed user fields hold strings (or `null`, which clears).
pub fn check_user_attributes(map: &Map<String, Value>, base: &str) -> Result<(), ResourceError> {
    for key in TYPED_USER_FIELDS {
        match map.get(*key) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => {
                return Err(ResourceError::wrong_type(
                    format!("{base}/{key}"),
                    "a string",
                    json_type(other),
                ));
            }
        }
    }
    for key in ["channel_data", "preferences", "settings", "properties"] {
        match map.get(key) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => {
                return Err(ResourceError::wrong_type(
                    format!("{base}/{key}"),
                    "an object",
                    json_type(other),
                ));
            }
        }
    }
    check_reserved(Entity::User, map, base)
}

/// Refuses, as the product does (422), an attribute under a name the product
/// reserves whose value does not have the shape it requires there (an object
/// of the wrong form under `preferences` or `channel_data`, a `created_at`
/// that is not a date-time). This API answers for the product, so it refuses
/// where the mapping engine, answering for a CDP, keeps the value under
/// another name. A `null` is left to the checks above: the product's own
/// clients clear an object's channel data with it, which its schema does not
/// say.
pub fn check_reserved(
    entity: Entity,
    map: &Map<String, Value>,
    base: &str,
) -> Result<(), ResourceError> {
    for key in entity.reserved_names() {
        if let Some(value) = map.get(key).filter(|v| !v.is_null())
            && let Some(expected) = reserved::refusal(entity, key, value)
        {
            return Err(ResourceError::wrong_type(
                format!("{base}/{key}"),
                expected,
                json_type(value),
            ));
        }
    }
    Ok(())
}

/// The map without `skip` keys: the attributes an entity is merged with.
pub fn attributes_without(map: &Map<String, Value>, skip: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A recipient: a user id, an inline user `{id, ...}` or an inline object
/// `{id, collection, ...}`. Inline attributes (beyond the reference) become
/// an identify or set-object payload that must run first. With
/// `allow_inline = false` (references only) extra keys are ignored.
pub fn recipient_at(
    value: &Value,
    field: &str,
    allow_inline: bool,
) -> Result<(RecipientRef, Option<ActionPayload>), ResourceError> {
    match value {
        Value::String(_) | Value::Number(_) => {
            Ok((RecipientRef::User(id_at(Some(value), field)?), None))
        }
        Value::Object(map) => {
            let id = id_at(map.get("id"), &format!("{field}/id"))?;
            match map.get("collection") {
                None | Some(Value::Null) => {
                    check_user_attributes(map, field)?;
                    let attributes = attributes_without(map, &["id", "collection"]);
                    let inline = (allow_inline && !attributes.is_empty()).then(|| {
                        ActionPayload::IdentifyUser {
                            user_id: id.clone(),
                            attributes,
                        }
                    });
                    Ok((RecipientRef::User(id), inline))
                }
                Some(c) => {
                    let collection = id_at(Some(c), &format!("{field}/collection"))?;
                    let attributes = attributes_without(map, &["id", "collection"]);
                    let inline = (allow_inline && !attributes.is_empty()).then(|| {
                        ActionPayload::SetObject {
                            collection: collection.clone(),
                            id: id.clone(),
                            attributes,
                        }
                    });
                    Ok((RecipientRef::Object { id, collection }, inline))
                }
            }
        }
        other => Err(ResourceError::wrong_type(
            field,
            "a user id or a recipient object",
            json_type(other),
        )),
    }
}

/// A list of recipients with its inline payloads, in order.
pub fn recipients_at(
    items: &[Value],
    field: &str,
    allow_inline: bool,
) -> Result<(Vec<RecipientRef>, Vec<ActionPayload>), ResourceError> {
    let mut refs = Vec::with_capacity(items.len());
    let mut inline = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (r, p) = recipient_at(item, &format!("{field}/{i}"), allow_inline)?;
        refs.push(r);
        inline.extend(p);
    }
    Ok((refs, inline))
}

/// A tenant: an id, or an inline tenant `{id, ...}` whose other keys become
/// a set-tenant payload.
pub fn tenant_at(
    value: &Value,
    field: &str,
) -> Result<(String, Option<ActionPayload>), ResourceError> {
    match value {
        Value::Object(map) => {
            let id = id_at(map.get("id"), &format!("{field}/id"))?;
            let attributes = attributes_without(map, &["id"]);
            let inline = (!attributes.is_empty()).then(|| ActionPayload::SetTenant {
                id: id.clone(),
                attributes,
            });
            Ok((id, inline))
        }
        other => Ok((id_at(Some(other), field)?, None)),
    }
}

/// An audience member `{user: {id, ...} | id, tenant?}` with its inline identify.
pub fn member_at(
    value: &Value,
    field: &str,
) -> Result<(AudienceMember, Option<ActionPayload>), ResourceError> {
    let map = object_at(value, field)?;
    let user_field = format!("{field}/user");
    let (user_id, inline) = match map.get("user") {
        Some(Value::Object(user)) => {
            let id = id_at(user.get("id"), &format!("{user_field}/id"))?;
            check_user_attributes(user, &user_field)?;
            let attributes = attributes_without(user, &["id"]);
            let inline = (!attributes.is_empty()).then(|| ActionPayload::IdentifyUser {
                user_id: id.clone(),
                attributes,
            });
            (id, inline)
        }
        // Some senders flatten the member to `{user_id, tenant}`.
        None if map.contains_key("user_id") => (
            id_at(map.get("user_id"), &format!("{field}/user_id"))?,
            None,
        ),
        other => (id_at(other, &user_field)?, None),
    };
    let tenant = match map.get("tenant") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(t) => Some(id_at(Some(t), &format!("{field}/tenant"))?),
    };
    Ok((AudienceMember { user_id, tenant }, inline))
}

fn pointer_name(field: &str) -> &str {
    field.rsplit('/').next().unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inline_recipients_identify_first() {
        let (r, p) =
            recipient_at(&json!({"id": "u1", "email": "a@b"}), "/recipients/0", true).unwrap();
        assert_eq!(r, RecipientRef::User("u1".into()));
        assert!(matches!(p, Some(ActionPayload::IdentifyUser { .. })));
        let (r, p) =
            recipient_at(&json!({"id": "p1", "collection": "projects"}), "/r", true).unwrap();
        assert_eq!(
            r,
            RecipientRef::Object {
                id: "p1".into(),
                collection: "projects".into()
            }
        );
        assert!(p.is_none());
        let e = recipient_at(&json!({"email": "a@b"}), "/recipients/2", true).unwrap_err();
        assert_eq!(e.field(), Some("/recipients/2/id"));
        let e = recipient_at(&json!({"id": "u", "email": 5}), "/recipients/0", true).unwrap_err();
        assert_eq!(e.field(), Some("/recipients/0/email"));
    }

    #[test]
    fn members_take_the_product_shape_and_flat_rows() {
        let (m, p) =
            member_at(&json!({"user": {"id": "u1"}, "tenant": "t1"}), "/members/0").unwrap();
        assert_eq!(m.user_id, "u1");
        assert_eq!(m.tenant.as_deref(), Some("t1"));
        assert!(p.is_none());
        let (m, _) = member_at(&json!({"user_id": 42}), "/members/0").unwrap();
        assert_eq!(m.user_id, "42");
        let e = member_at(&json!({"tenant": "t"}), "/members/1").unwrap_err();
        assert_eq!(e.field(), Some("/members/1/user"));
    }
}
