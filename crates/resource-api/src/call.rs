//! The product's resource API as Hightouch's and Census's HTTP Request
//! destinations call it: method + path + query + body -> the call's action
//! payloads and the answer to give once they are stored.

use serde_json::{Map, Value, json};
use tributary_adapter::parse_json;
use tributary_core::{
    json::json_type,
    plan::{ActionPayload, AudienceMember, InlineRecipient, RecipientRef, TriggerInline},
    reserved::Entity,
};

use crate::{
    ResourceError,
    uri::{query_param, segments},
    values::{
        array_at, attributes_without, check_reserved, check_user_attributes, id_at, member_at,
        object_at, recipients_at, string_at, tenant_at,
    },
};

/// Users per `POST /v1/users/bulk/identify`.
pub const MAX_BULK_USERS: usize = 1_000;
/// Recipients per subscribe or unsubscribe.
pub const MAX_SUBSCRIPTION_RECIPIENTS: usize = 100;
/// Members per audience add or remove.
pub const MAX_AUDIENCE_MEMBERS: usize = 1_000;
/// Recipients per workflow trigger.
pub const MAX_TRIGGER_RECIPIENTS: usize = tributary_core::plan::MAX_RECIPIENTS;
/// The largest trigger `data`, serialized.
pub const MAX_TRIGGER_DATA_BYTES: usize = 10 * 1024 * 1024;

/// One request to the resource API, already authenticated and decompressed.
#[derive(Clone, Copy, Debug)]
pub struct ApiRequest<'a> {
    /// `GET`, `PUT`, ... (any case).
    pub method: &'a str,
    /// The path as sent, percent-encoded (`/v1/users/u%201`).
    pub path: &'a str,
    /// The query string without `?`.
    pub query: Option<&'a str>,
    /// The body bytes (empty for none).
    pub body: &'a [u8],
}

/// Which endpoint a call is: also the event type it is logged under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `PUT /v1/users/{id}`.
    IdentifyUser,
    /// `DELETE /v1/users/{id}`.
    DeleteUser,
    /// `POST /v1/users/bulk/identify`.
    BulkIdentifyUsers,
    /// `PUT /v1/objects/{collection}/{id}`.
    SetObject,
    /// `DELETE /v1/objects/{collection}/{id}`.
    DeleteObject,
    /// `POST /v1/objects/{collection}/{id}/subscriptions`.
    Subscribe,
    /// `DELETE /v1/objects/{collection}/{id}/subscriptions`.
    Unsubscribe,
    /// `PUT /v1/tenants/{id}`.
    SetTenant,
    /// `DELETE /v1/tenants/{id}`.
    DeleteTenant,
    /// `POST /v1/audiences/{key}/members`.
    AddAudienceMembers,
    /// `DELETE /v1/audiences/{key}/members`.
    RemoveAudienceMembers,
    /// `POST /v1/workflows/{key}/trigger`.
    TriggerWorkflow,
    /// `POST /v1/workflows/{key}/cancel`.
    CancelWorkflow,
}

impl Operation {
    /// The event type the call is logged and matched under.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::IdentifyUser => "users.identify",
            Self::DeleteUser => "users.delete",
            Self::BulkIdentifyUsers => "users.bulk_identify",
            Self::SetObject => "objects.set",
            Self::DeleteObject => "objects.delete",
            Self::Subscribe => "objects.subscriptions.add",
            Self::Unsubscribe => "objects.subscriptions.delete",
            Self::SetTenant => "tenants.set",
            Self::DeleteTenant => "tenants.delete",
            Self::AddAudienceMembers => "audiences.members.add",
            Self::RemoveAudienceMembers => "audiences.members.remove",
            Self::TriggerWorkflow => "workflows.trigger",
            Self::CancelWorkflow => "workflows.cancel",
        }
    }
}

/// What to answer once the call is stored. The service adds what only it
/// knows (timestamps, the run id from the event id) and picks the status.
#[derive(Clone, Debug, PartialEq)]
pub enum CallAnswer {
    /// 200 with this entity (user, object or tenant as sent).
    Entity(Value),
    /// 200 with these subscriptions.
    Subscriptions(Value),
    /// 200 with a bulk operation over this many rows.
    BulkOperation {
        /// Rows in the request.
        rows: usize,
    },
    /// 200 with `{workflow_run_id}`, derived from the stored event.
    WorkflowRun,
    /// 204.
    NoContent,
}

/// A parsed call: what to store and what to answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceCall {
    /// The endpoint.
    pub operation: Operation,
    /// The user the call is about, when there is one.
    pub user_id: Option<String>,
    /// The request line (`method`, `path`, `query`), the event's `raw`; the body is `body`.
    pub raw: Value,
    /// The body (`{}` for none), the event's `data`.
    pub body: Value,
    /// The actions, in the product's order (inline identifies first).
    pub payloads: Vec<ActionPayload>,
    /// For a trigger: the attributes of its inline recipients, actor and
    /// tenant, which a sink may send inside the trigger call (the inline
    /// payloads above then need no call of their own); empty otherwise.
    pub trigger_inline: TriggerInline,
    /// The answer.
    pub answer: CallAnswer,
}

/// Parses one resource-API call. Never panics; every refusal names the field.
pub fn parse_call(req: ApiRequest<'_>) -> Result<ResourceCall, ResourceError> {
    let method = req.method.to_ascii_uppercase();
    let segs = segments(req.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let not_found = || ResourceError::UnknownRoute {
        method: method.clone(),
        path: req.path.to_owned(),
    };
    let Some(("v1", rest)) = segs.split_first().map(|(a, b)| (*a, b)) else {
        return Err(not_found());
    };
    if rest.iter().any(|s| s.is_empty()) {
        return Err(not_found());
    }
    let op = match (method.as_str(), rest) {
        ("POST", ["users", "bulk", "identify"]) => Operation::BulkIdentifyUsers,
        ("PUT", ["users", _]) => Operation::IdentifyUser,
        ("DELETE", ["users", _]) => Operation::DeleteUser,
        ("PUT", ["objects", _, _]) => Operation::SetObject,
        ("DELETE", ["objects", _, _]) => Operation::DeleteObject,
        ("POST", ["objects", _, _, "subscriptions"]) => Operation::Subscribe,
        ("DELETE", ["objects", _, _, "subscriptions"]) => Operation::Unsubscribe,
        ("PUT", ["tenants", _]) => Operation::SetTenant,
        ("DELETE", ["tenants", _]) => Operation::DeleteTenant,
        ("POST", ["audiences", _, "members"]) => Operation::AddAudienceMembers,
        ("DELETE", ["audiences", _, "members"]) => Operation::RemoveAudienceMembers,
        ("POST", ["workflows", _, "trigger"]) => Operation::TriggerWorkflow,
        ("POST", ["workflows", _, "cancel"]) => Operation::CancelWorkflow,
        _ => return Err(not_found()),
    };
    let body = body_value(req, op)?;
    // The body is the event's `data`; `raw` holds the rest of the request,
    // so a 1,000-user bulk identify is not stored twice.
    let raw = json!({
        "method": method,
        "path": req.path,
        "query": req.query,
    });
    // The routes above fixed how many segments each operation has.
    let seg = |i: usize| rest.get(i).map_or_else(String::new, |s| (*s).to_owned());
    let empty = Map::new();
    let map = match &body {
        Value::Object(m) => m,
        _ => &empty,
    };
    let made = match op {
        Operation::IdentifyUser => identify_user(seg(1), map)?,
        Operation::DeleteUser => delete_user(seg(1)),
        Operation::BulkIdentifyUsers => bulk_identify_users(map)?,
        Operation::SetObject => set_object(seg(1), seg(2), map)?,
        Operation::DeleteObject => delete_object(seg(1), seg(2)),
        Operation::Subscribe => subscribe(seg(1), seg(2), map)?,
        Operation::Unsubscribe => unsubscribe(seg(1), seg(2), map)?,
        Operation::SetTenant => set_tenant(seg(1), map)?,
        Operation::DeleteTenant => delete_tenant(seg(1)),
        Operation::AddAudienceMembers => add_audience_members(seg(1), map, req.query)?,
        Operation::RemoveAudienceMembers => remove_audience_members(seg(1), map)?,
        Operation::TriggerWorkflow => trigger_workflow(seg(1), map, req.body.len())?,
        Operation::CancelWorkflow => cancel_workflow(seg(1), map)?,
    };
    Ok(ResourceCall {
        operation: op,
        user_id: made.user_id,
        raw,
        body,
        payloads: made.payloads,
        trigger_inline: made.trigger_inline,
        answer: made.answer,
    })
}

/// What one operation makes of its path and body: the parts of a
/// [`ResourceCall`] that differ by operation.
struct Made {
    payloads: Vec<ActionPayload>,
    answer: CallAnswer,
    user_id: Option<String>,
    trigger_inline: TriggerInline,
}

impl Made {
    fn new(payloads: Vec<ActionPayload>, answer: CallAnswer) -> Self {
        Self {
            payloads,
            answer,
            user_id: None,
            trigger_inline: TriggerInline::default(),
        }
    }

    fn about_user(mut self, user_id: Option<String>) -> Self {
        self.user_id = user_id;
        self
    }
}

type Body = Map<String, Value>;

/// `PUT /v1/users/{id}`.
fn identify_user(id: String, map: &Body) -> Result<Made, ResourceError> {
    check_user_attributes(map, "")?;
    let attributes = attributes_without(map, &["id"]);
    let mut entity = json!({"__typename": "User", "id": id});
    merge(&mut entity, &attributes);
    Ok(Made::new(
        vec![ActionPayload::IdentifyUser {
            user_id: id.clone(),
            attributes,
        }],
        CallAnswer::Entity(entity),
    )
    .about_user(Some(id)))
}

/// `DELETE /v1/users/{id}`.
fn delete_user(id: String) -> Made {
    Made::new(
        vec![ActionPayload::DeleteUser {
            user_id: id.clone(),
        }],
        CallAnswer::NoContent,
    )
    .about_user(Some(id))
}

/// `POST /v1/users/bulk/identify`.
fn bulk_identify_users(map: &Body) -> Result<Made, ResourceError> {
    let users = array_at(map, "users", "", MAX_BULK_USERS, true)?.unwrap_or(&EMPTY);
    let mut payloads = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        // Pointers are formatted only on the error path: 1,000 users
        // per request make the happy path's allocations count.
        let field = || format!("/users/{i}");
        let u = match u {
            Value::Object(u) => u,
            other => object_at(other, &field())?,
        };
        let id = match u.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            other => id_at(other, &format!("{}/id", field()))?,
        };
        if check_user_attributes(u, "").is_err() {
            check_user_attributes(u, &field())?;
        }
        payloads.push(ActionPayload::IdentifyUser {
            user_id: id,
            attributes: attributes_without(u, &["id"]),
        });
    }
    let rows = payloads.len();
    Ok(Made::new(payloads, CallAnswer::BulkOperation { rows }))
}

/// `PUT /v1/objects/{collection}/{id}`.
fn set_object(collection: String, id: String, map: &Body) -> Result<Made, ResourceError> {
    check_object_attributes(map, Entity::Object)?;
    let attributes = attributes_without(map, &["id", "collection"]);
    let entity = json!({
        "__typename": "Object",
        "id": id,
        "collection": collection,
        "properties": Value::Object(attributes.clone()),
    });
    Ok(Made::new(
        vec![ActionPayload::SetObject {
            collection,
            id,
            attributes,
        }],
        CallAnswer::Entity(entity),
    ))
}

/// `DELETE /v1/objects/{collection}/{id}`.
fn delete_object(collection: String, id: String) -> Made {
    Made::new(
        vec![ActionPayload::DeleteObject { collection, id }],
        CallAnswer::NoContent,
    )
}

/// `POST /v1/objects/{collection}/{id}/subscriptions`.
fn subscribe(collection: String, object_id: String, map: &Body) -> Result<Made, ResourceError> {
    let parts = subscription_parts(&collection, &object_id, map, true)?;
    let mut payloads = parts.inline;
    payloads.push(ActionPayload::Subscribe {
        collection,
        object_id,
        recipients: parts.recipients,
        properties: parts.properties,
    });
    Ok(Made::new(payloads, parts.answer))
}

/// `DELETE /v1/objects/{collection}/{id}/subscriptions`.
fn unsubscribe(collection: String, object_id: String, map: &Body) -> Result<Made, ResourceError> {
    let parts = subscription_parts(&collection, &object_id, map, false)?;
    let mut payloads = parts.inline;
    payloads.push(ActionPayload::Unsubscribe {
        collection,
        object_id,
        recipients: parts.recipients,
    });
    Ok(Made::new(payloads, parts.answer))
}

/// What a subscribe and an unsubscribe read alike.
struct SubscriptionParts {
    recipients: Vec<RecipientRef>,
    /// Inline identifies and sets, only when subscribing.
    inline: Vec<ActionPayload>,
    properties: Option<Value>,
    answer: CallAnswer,
}

fn subscription_parts(
    collection: &str,
    object_id: &str,
    map: &Body,
    subscribe: bool,
) -> Result<SubscriptionParts, ResourceError> {
    let items =
        array_at(map, "recipients", "", MAX_SUBSCRIPTION_RECIPIENTS, true)?.unwrap_or(&EMPTY);
    let (recipients, inline) = recipients_at(items, "/recipients", subscribe)?;
    let properties = match map.get("properties") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(other) => {
            return Err(ResourceError::wrong_type(
                "/properties",
                "an object",
                json_type(other),
            ));
        }
    };
    let subscriptions: Vec<Value> = recipients
        .iter()
        .map(|r| {
            json!({
                "__typename": "Subscription",
                "object": {"__typename": "Object", "id": object_id, "collection": collection},
                "recipient": r,
                "properties": properties,
            })
        })
        .collect();
    Ok(SubscriptionParts {
        recipients,
        inline,
        properties,
        answer: CallAnswer::Subscriptions(Value::Array(subscriptions)),
    })
}

/// `PUT /v1/tenants/{id}`.
fn set_tenant(id: String, map: &Body) -> Result<Made, ResourceError> {
    check_object_attributes(map, Entity::Tenant)?;
    let attributes = attributes_without(map, &["id"]);
    let mut entity = json!({"__typename": "Tenant", "id": id});
    merge(&mut entity, &attributes);
    Ok(Made::new(
        vec![ActionPayload::SetTenant { id, attributes }],
        CallAnswer::Entity(entity),
    ))
}

/// `DELETE /v1/tenants/{id}`.
fn delete_tenant(id: String) -> Made {
    Made::new(
        vec![ActionPayload::DeleteTenant { id }],
        CallAnswer::NoContent,
    )
}

/// `POST /v1/audiences/{key}/members`.
fn add_audience_members(
    audience: String,
    map: &Body,
    query: Option<&str>,
) -> Result<Made, ResourceError> {
    let (members, mut payloads) = audience_members(map, true)?;
    let create_audience = query_param(query, "create_audience")
        .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true") || v == "1");
    payloads.push(ActionPayload::AddAudienceMember {
        audience,
        members,
        create_audience,
    });
    Ok(Made::new(payloads, CallAnswer::NoContent))
}

/// `DELETE /v1/audiences/{key}/members`.
fn remove_audience_members(audience: String, map: &Body) -> Result<Made, ResourceError> {
    let (members, _) = audience_members(map, false)?;
    Ok(Made::new(
        vec![ActionPayload::RemoveAudienceMember { audience, members }],
        CallAnswer::NoContent,
    ))
}

/// The `members` of an audience change, and the inline identifies and sets
/// they carry when `adding`.
fn audience_members(
    map: &Body,
    adding: bool,
) -> Result<(Vec<AudienceMember>, Vec<ActionPayload>), ResourceError> {
    let items = array_at(map, "members", "", MAX_AUDIENCE_MEMBERS, true)?.unwrap_or(&EMPTY);
    let mut inline_payloads = Vec::new();
    let mut members = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (member, inline) = member_at(item, &format!("/members/{i}"))?;
        if adding {
            inline_payloads.extend(inline);
        }
        members.push(member);
    }
    Ok((members, inline_payloads))
}

/// `POST /v1/workflows/{key}/cancel`.
fn cancel_workflow(workflow: String, map: &Body) -> Result<Made, ResourceError> {
    let Some(cancellation_key) = string_at(map, "cancellation_key", "")? else {
        return Err(ResourceError::missing("/cancellation_key"));
    };
    let recipients = match array_at(map, "recipients", "", MAX_TRIGGER_RECIPIENTS, false)? {
        Some(items) => Some(recipients_at(items, "/recipients", false)?.0),
        None => None,
    };
    Ok(Made::new(
        vec![ActionPayload::CancelWorkflow {
            workflow,
            cancellation_key,
            recipients,
        }],
        CallAnswer::NoContent,
    ))
}

static EMPTY: Vec<Value> = Vec::new();

/// `POST /v1/workflows/{key}/trigger`.
fn trigger_workflow(workflow: String, map: &Body, body_len: usize) -> Result<Made, ResourceError> {
    let items = array_at(map, "recipients", "", MAX_TRIGGER_RECIPIENTS, false)?.unwrap_or(&EMPTY);
    // Inline payloads in the order the engine gives them too: recipients,
    // then the actor, then the tenant (`resource_plans` relies on it).
    let mut payloads = Vec::new();
    let mut inline = TriggerInline::default();
    let mut recipients = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let (r, p) = crate::values::recipient_at(item, &format!("/recipients/{position}"), true)?;
        recipients.push(r);
        if let Some(p) = p {
            inline.recipients.push(InlineRecipient {
                position,
                attributes: inline_attributes(&p),
            });
            payloads.push(p);
        }
    }
    let actor = match map.get("actor") {
        None | Some(Value::Null) => None,
        Some(a) => {
            let (r, p) = crate::values::recipient_at(a, "/actor", true)?;
            if let Some(p) = p {
                inline.actor = Some(inline_attributes(&p));
                payloads.push(p);
            }
            Some(r)
        }
    };
    let tenant = match map.get("tenant") {
        None | Some(Value::Null) => None,
        Some(t) => {
            let (id, p) = tenant_at(t, "/tenant")?;
            if let Some(p) = p {
                inline.tenant = Some(inline_attributes(&p));
                payloads.push(p);
            }
            Some(id)
        }
    };
    let data = match map.get("data") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => {
            // The body bounds the data, so only a body over the limit is measured.
            if body_len > MAX_TRIGGER_DATA_BYTES && serialized_len(v) > MAX_TRIGGER_DATA_BYTES {
                return Err(ResourceError::TooLarge {
                    field: "/data".to_owned(),
                    message: format!(
                        "`data` is larger than {MAX_TRIGGER_DATA_BYTES} bytes serialized"
                    ),
                });
            }
            v.clone()
        }
        Some(other) => {
            return Err(ResourceError::wrong_type(
                "/data",
                "an object",
                json_type(other),
            ));
        }
    };
    let cancellation_key = string_at(map, "cancellation_key", "")?;
    let first_user = recipients.iter().find_map(|r| match r {
        RecipientRef::User(id) => Some(id.clone()),
        RecipientRef::Object { .. } => None,
    });
    payloads.push(ActionPayload::TriggerWorkflow {
        workflow,
        recipients,
        actor,
        tenant,
        data: data.into(),
        cancellation_key,
    });
    let mut made = Made::new(payloads, CallAnswer::WorkflowRun).about_user(first_user);
    made.trigger_inline = inline;
    Ok(made)
}

/// The attributes an inline identify, set-object or set-tenant payload
/// carries (the ids are in the trigger's references already).
fn inline_attributes(payload: &ActionPayload) -> Map<String, Value> {
    match payload {
        ActionPayload::IdentifyUser { attributes, .. }
        | ActionPayload::SetObject { attributes, .. }
        | ActionPayload::SetTenant { attributes, .. } => attributes.clone(),
        _ => Map::new(),
    }
}

fn serialized_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing a `Value` to a counter cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn check_object_attributes(map: &Body, entity: Entity) -> Result<(), ResourceError> {
    for key in ["name", "locale", "timezone"] {
        match map.get(key) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => {
                return Err(ResourceError::wrong_type(
                    format!("/{key}"),
                    "a string",
                    json_type(other),
                ));
            }
        }
    }
    for key in ["channel_data", "preferences", "settings"] {
        match map.get(key) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => {
                return Err(ResourceError::wrong_type(
                    format!("/{key}"),
                    "an object",
                    json_type(other),
                ));
            }
        }
    }
    check_reserved(entity, map, "")
}

fn merge(entity: &mut Value, attributes: &Map<String, Value>) {
    if let Value::Object(e) = entity {
        for (k, v) in attributes {
            e.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The body as JSON: `{}` when empty; an object for every endpoint. Census
/// sends audience removals as `?members=[...]` with no body.
fn body_value(req: ApiRequest<'_>, op: Operation) -> Result<Value, ResourceError> {
    let trimmed = req.body.iter().all(u8::is_ascii_whitespace);
    let mut body = if trimmed {
        Value::Object(Map::new())
    } else {
        parse_json(req.body).map_err(|e| match e.field() {
            Some(field) => ResourceError::invalid("nesting_too_deep", field, e.message()),
            None => ResourceError::MalformedJson {
                message: e.message(),
            },
        })?
    };
    if !body.is_object() {
        return Err(ResourceError::wrong_type(
            "",
            "a JSON object",
            json_type(&body),
        ));
    }
    if op == Operation::RemoveAudienceMembers
        && body.get("members").is_none()
        && let Some(members) = query_param(req.query, "members")
    {
        let members: Value = serde_json::from_str(&members).map_err(|e| {
            ResourceError::invalid(
                "invalid_query",
                "/members",
                format!("the `members` query parameter is not JSON: {e}"),
            )
        })?;
        body["members"] = members;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        method: &str,
        path: &str,
        query: Option<&str>,
        body: &str,
    ) -> Result<ResourceCall, ResourceError> {
        parse_call(ApiRequest {
            method,
            path,
            query,
            body: body.as_bytes(),
        })
    }

    #[test]
    fn identify_answers_the_entity_as_sent() {
        let c = call(
            "PUT",
            "/v1/users/u%201",
            None,
            r#"{"name":"Ann","plan":"pro"}"#,
        )
        .unwrap();
        assert_eq!(c.operation.event_type(), "users.identify");
        assert_eq!(c.user_id.as_deref(), Some("u 1"));
        let CallAnswer::Entity(e) = &c.answer else {
            panic!()
        };
        assert_eq!(e["id"], "u 1");
        assert_eq!(e["plan"], "pro");
        assert_eq!(c.payloads.len(), 1);
    }

    /// Issue 18 item 12: a reserved attribute of the wrong shape is refused
    /// as the product refuses it, naming the field; the right shape, and a
    /// `null`, pass.
    #[test]
    fn reserved_attributes_of_the_wrong_shape_are_422() {
        for (path, body, field) in [
            (
                "/v1/users/u1",
                r#"{"preferences":{"newsletter":true}}"#,
                "/preferences",
            ),
            (
                "/v1/users/u1",
                r#"{"created_at":"yesterday"}"#,
                "/created_at",
            ),
            (
                "/v1/objects/projects/p1",
                r#"{"channel_data":{"c":{"tokens":"t"}}}"#,
                "/channel_data",
            ),
            (
                "/v1/tenants/t1",
                r#"{"settings":{"branding":"blue"}}"#,
                "/settings",
            ),
        ] {
            let e = call("PUT", path, None, body).unwrap_err();
            assert_eq!((e.status(), e.field()), (422, Some(field)), "{body}");
        }
        let e = call(
            "POST",
            "/v1/users/bulk/identify",
            None,
            r#"{"users":[{"id":"a"},{"id":"b","channel_data":{"c":"t"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("/users/1/channel_data"));
        for (path, body) in [
            (
                "/v1/users/u1",
                r#"{"preferences":{"default":{"channel_types":{"email":true}}},"created_at":"2024-05-22T12:00:00Z"}"#,
            ),
            ("/v1/objects/projects/p1", r#"{"channel_data":null}"#),
            (
                "/v1/tenants/t1",
                r#"{"settings":{"branding":{"primary_color":"white"}}}"#,
            ),
        ] {
            assert!(call("PUT", path, None, body).is_ok(), "{body}");
        }
    }

    #[test]
    fn unknown_routes_are_404_and_bad_fields_422() {
        assert_eq!(
            call("GET", "/v1/users/u1", None, "").unwrap_err().status(),
            404
        );
        assert_eq!(
            call("PUT", "/v1/users/", None, "").unwrap_err().status(),
            404
        );
        assert_eq!(
            call("POST", "/v2/users/bulk/identify", None, "")
                .unwrap_err()
                .status(),
            404
        );
        let e = call("PUT", "/v1/users/u1", None, r#"{"email":5}"#).unwrap_err();
        assert_eq!((e.status(), e.field()), (422, Some("/email")));
        let e = call("PUT", "/v1/users/u1", None, "{").unwrap_err();
        assert_eq!(e.status(), 400);
        let e = call(
            "POST",
            "/v1/users/bulk/identify",
            None,
            r#"{"users":[{"id":"a"},{"name":"b"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("/users/1/id"));
        assert!(e.message().contains("users[1].id"), "{}", e.message());
    }

    #[test]
    fn limits_name_the_field() {
        let users: Vec<String> = (0..1001).map(|i| format!(r#"{{"id":"u{i}"}}"#)).collect();
        let body = format!(r#"{{"users":[{}]}}"#, users.join(","));
        let e = call("POST", "/v1/users/bulk/identify", None, &body).unwrap_err();
        assert_eq!(
            (e.status(), e.field(), e.code()),
            (422, Some("/users"), "too_many")
        );
        let recips: Vec<String> = (0..101).map(|i| format!(r#""u{i}""#)).collect();
        let body = format!(r#"{{"recipients":[{}]}}"#, recips.join(","));
        let e = call("POST", "/v1/objects/p/1/subscriptions", None, &body).unwrap_err();
        assert_eq!(e.field(), Some("/recipients"));
    }

    #[test]
    fn census_removes_members_through_the_query() {
        let q =
            "members=%5B%7B%22user%22%3A%7B%22id%22%3A%22u1%22%7D%2C%22tenant%22%3A%22t1%22%7D%5D";
        let c = call("DELETE", "/v1/audiences/vip/members", Some(q), "").unwrap();
        let ActionPayload::RemoveAudienceMember { audience, members } = &c.payloads[0] else {
            panic!()
        };
        assert_eq!(audience, "vip");
        assert_eq!(members[0].tenant.as_deref(), Some("t1"));
        let c = call(
            "POST",
            "/v1/audiences/vip/members",
            Some("create_audience=true"),
            r#"{"members":[{"user":{"id":"u1","email":"a@b"}}]}"#,
        )
        .unwrap();
        assert!(matches!(c.payloads[0], ActionPayload::IdentifyUser { .. }));
        assert!(matches!(
            c.payloads[1],
            ActionPayload::AddAudienceMember {
                create_audience: true,
                ..
            }
        ));
    }

    #[test]
    fn trigger_identifies_inline_recipients_tenant_and_actor_first() {
        let c = call(
            "POST",
            "/v1/workflows/welcome/trigger",
            None,
            r#"{"recipients":["u1",{"id":"u2","email":"x@y"}],"actor":{"id":"a1","name":"A"},"tenant":{"id":"t1","name":"T"},"data":{"k":1},"cancellation_key":"ck"}"#,
        )
        .unwrap();
        let kinds: Vec<_> = c
            .payloads
            .iter()
            .map(|p| p.action_type().to_string())
            .collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert!(matches!(
            c.payloads.last(),
            Some(ActionPayload::TriggerWorkflow { .. })
        ));
        assert_eq!(c.answer, CallAnswer::WorkflowRun);
        let e = call("POST", "/v1/workflows/w/cancel", None, "{}").unwrap_err();
        assert_eq!(e.field(), Some("/cancellation_key"));
    }

    #[test]
    fn a_trigger_keeps_its_inline_entities_for_the_trigger_call() {
        use tributary_core::plan::{PlanOrigin, PlanOutcome};
        let c = call(
            "POST",
            "/v1/workflows/welcome/trigger",
            None,
            r#"{"recipients":["u1",{"id":"u2","email":"x@y"},{"id":"p1","collection":"projects","name":"P"}],"actor":{"id":"a1","name":"A"},"tenant":{"id":"t1","name":"T"}}"#,
        )
        .unwrap();
        let inline = &c.trigger_inline;
        let positions: Vec<_> = inline.recipients.iter().map(|r| r.position).collect();
        assert_eq!(positions, vec![1, 2]);
        assert_eq!(inline.recipient(1).unwrap()["email"], "x@y");
        assert_eq!(inline.recipient(2).unwrap()["name"], "P");
        assert!(inline.recipient(2).unwrap().get("collection").is_none());
        assert_eq!(inline.actor.as_ref().unwrap()["name"], "A");
        assert_eq!(inline.tenant.as_ref().unwrap()["name"], "T");

        let plans = crate::resource_plans("workflow.trigger", c.payloads, c.trigger_inline.clone());
        let fields: Vec<_> = plans
            .iter()
            .map(|p| match &p.origin {
                PlanOrigin::Inline {
                    field,
                    with_trigger: true,
                    ..
                } => field.as_str(),
                PlanOrigin::MappingWithInline { inline: i, .. } => {
                    assert_eq!(i, &c.trigger_inline);
                    "trigger"
                }
                other => panic!("unexpected origin {other:?}"),
            })
            .collect();
        assert_eq!(
            fields,
            vec!["recipients", "recipients", "actor", "tenant", "trigger"]
        );
        assert!(matches!(
            &plans[4].outcome,
            PlanOutcome::Planned {
                payload: ActionPayload::TriggerWorkflow { .. }
            }
        ));
    }

    #[test]
    fn calls_without_a_triggers_inline_entities_keep_plain_origins() {
        use tributary_core::plan::PlanOrigin;
        for (path, body) in [
            (
                "/v1/workflows/w/trigger",
                r#"{"recipients":["u1",{"id":"u2"}],"actor":"a1"}"#,
            ),
            (
                "/v1/objects/projects/p1/subscriptions",
                r#"{"recipients":[{"id":"u2","email":"x@y"}]}"#,
            ),
        ] {
            let c = call("POST", path, None, body).unwrap();
            assert!(c.trigger_inline.is_empty(), "{path}");
            let plans = crate::resource_plans("e", c.payloads, c.trigger_inline);
            assert!(!plans.is_empty());
            assert!(
                plans
                    .iter()
                    .all(|p| matches!(p.origin, PlanOrigin::Mapping { .. })),
                "{path}: {plans:?}"
            );
        }
    }
}
