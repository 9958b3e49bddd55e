//! The `knock` sink: each action becomes a call to Knock's public API
//! (docs/platform-payloads.md, "Knock's API"), with the environment's secret key.
//!
//! Inline identification is passed through as Knock's sources do it: a trigger
//! whose recipients, actor or tenant were inline sends those entities inside
//! the trigger body (Knock upserts them before the run), and the inline
//! plans the engine made for them succeed without a call of their own. That
//! keeps such triggers at the trigger tier (1,000/s) instead of one identify
//! call (60/s) per inline entity.

use std::num::NonZeroU32;

use reqwest::{Method, Url};
use serde_json::{Map, Value, json};
use tributary_core::{
    ActionType, Secret,
    plan::{ActionPayload, AudienceMember, RecipientRef},
};

use crate::{
    ActionRequest, ActionsError, BoxFuture, Outcome, Sink,
    http::{client, send},
};

/// Knock accepts at most this many recipients per subscriptions call.
pub const SUBSCRIPTION_CHUNK: usize = 100;

/// One HTTP call an action makes.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiCall {
    /// Method.
    pub method: Method,
    /// Path segments after the base URL, unescaped (escaped when sent).
    pub path: Vec<String>,
    /// Query pairs.
    pub query: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<Value>,
    /// `Idempotency-Key` (Knock honours it on triggers only).
    pub idempotency_key: Option<String>,
    /// A 404 means the thing is already gone: success for deletes.
    pub not_found_is_success: bool,
}

impl ApiCall {
    fn new(method: Method, path: &[&str], body: Option<Value>) -> Self {
        Self {
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body,
            idempotency_key: None,
            not_found_is_success: false,
        }
    }

    fn delete(path: &[&str]) -> Self {
        Self {
            not_found_is_success: true,
            ..Self::new(Method::DELETE, path, None)
        }
    }
}

fn recipient_json(r: &RecipientRef) -> Value {
    match r {
        RecipientRef::User(id) => Value::String(id.clone()),
        RecipientRef::Object { id, collection } => json!({"id": id, "collection": collection}),
    }
}

fn recipients_json(rs: &[RecipientRef]) -> Value {
    Value::Array(rs.iter().map(recipient_json).collect())
}

/// An inline entity as the trigger call takes it: its attributes plus its
/// `id` (and an object's `collection`).
fn inline_entity(attributes: &Map<String, Value>, id: &str, collection: Option<&str>) -> Value {
    let mut entity = attributes.clone();
    entity.insert("id".to_owned(), Value::String(id.to_owned()));
    if let Some(c) = collection {
        entity.insert("collection".to_owned(), Value::String(c.to_owned()));
    }
    Value::Object(entity)
}

/// A recipient as the trigger call takes it: inline (`{id, collection?, ...}`)
/// when it came with attributes, else as [`recipient_json`].
fn inline_recipient_json(r: &RecipientRef, attributes: Option<&Map<String, Value>>) -> Value {
    match (r, attributes) {
        (_, None) => recipient_json(r),
        (RecipientRef::User(id), Some(a)) => inline_entity(a, id, None),
        (RecipientRef::Object { id, collection }, Some(a)) => {
            inline_entity(a, id, Some(collection))
        }
    }
}

/// What an inline plan whose entity travels with its trigger records.
pub const SENT_WITH_TRIGGER: &str = "sent inline with the trigger workflow call";

fn members_json(members: &[AudienceMember]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| {
                let mut member = json!({"user": {"id": m.user_id}});
                if let Some(t) = &m.tenant {
                    member["tenant"] = Value::String(t.clone());
                }
                member
            })
            .collect(),
    )
}

/// The API calls for one action, in order. Pure, so their shape is testable.
///
/// None for an inline plan whose trigger carries its entity
/// ([`tributary_core::plan::PlanOrigin::is_sent_with_trigger`]): the trigger's
/// body has it instead.
pub fn api_calls(request: &ActionRequest) -> Vec<ApiCall> {
    if request.origin.is_sent_with_trigger() {
        return Vec::new();
    }
    match &request.payload {
        ActionPayload::TriggerWorkflow {
            workflow,
            recipients,
            actor,
            tenant,
            data,
            cancellation_key,
        } => {
            let inline = request.origin.trigger_inline();
            let recipients = match inline {
                Some(inline) if !inline.recipients.is_empty() => Value::Array(
                    recipients
                        .iter()
                        .enumerate()
                        .map(|(i, r)| inline_recipient_json(r, inline.recipient(i)))
                        .collect(),
                ),
                _ => recipients_json(recipients),
            };
            let mut body = json!({"recipients": recipients, "data": data});
            if let Some(a) = actor {
                body["actor"] = inline_recipient_json(a, inline.and_then(|i| i.actor.as_ref()));
            }
            if let Some(t) = tenant {
                body["tenant"] = match inline.and_then(|i| i.tenant.as_ref()) {
                    Some(attributes) => inline_entity(attributes, t, None),
                    None => Value::String(t.clone()),
                };
            }
            if let Some(k) = cancellation_key {
                body["cancellation_key"] = Value::String(k.clone());
            }
            let mut call = ApiCall::new(
                Method::POST,
                &["v1", "workflows", workflow, "trigger"],
                Some(body),
            );
            // The action id, so a retry after a lost answer triggers once.
            call.idempotency_key = Some(request.action_id.clone());
            vec![call]
        }
        ActionPayload::CancelWorkflow {
            workflow,
            cancellation_key,
            recipients,
        } => {
            let mut body = json!({"cancellation_key": cancellation_key});
            if let Some(rs) = recipients {
                body["recipients"] = recipients_json(rs);
            }
            vec![ApiCall::new(
                Method::POST,
                &["v1", "workflows", workflow, "cancel"],
                Some(body),
            )]
        }
        ActionPayload::IdentifyUser {
            user_id,
            attributes,
        } => vec![ApiCall::new(
            Method::PUT,
            &["v1", "users", user_id],
            Some(Value::Object(attributes.clone())),
        )],
        ActionPayload::DeleteUser { user_id } => vec![ApiCall::delete(&["v1", "users", user_id])],
        ActionPayload::SetObject {
            collection,
            id,
            attributes,
        } => vec![ApiCall::new(
            Method::PUT,
            &["v1", "objects", collection, id],
            Some(Value::Object(attributes.clone())),
        )],
        ActionPayload::DeleteObject { collection, id } => {
            vec![ApiCall::delete(&["v1", "objects", collection, id])]
        }
        ActionPayload::SetTenant { id, attributes } => vec![ApiCall::new(
            Method::PUT,
            &["v1", "tenants", id],
            Some(Value::Object(attributes.clone())),
        )],
        ActionPayload::DeleteTenant { id } => vec![ApiCall::delete(&["v1", "tenants", id])],
        ActionPayload::Subscribe {
            collection,
            object_id,
            recipients,
            properties,
        } => recipients
            .chunks(SUBSCRIPTION_CHUNK)
            .map(|chunk| {
                let mut body = json!({"recipients": recipients_json(chunk)});
                if let Some(p) = properties {
                    body["properties"] = p.clone();
                }
                ApiCall::new(
                    Method::POST,
                    &["v1", "objects", collection, object_id, "subscriptions"],
                    Some(body),
                )
            })
            .collect(),
        ActionPayload::Unsubscribe {
            collection,
            object_id,
            recipients,
        } => recipients
            .chunks(SUBSCRIPTION_CHUNK)
            .map(|chunk| ApiCall {
                not_found_is_success: true,
                ..ApiCall::new(
                    Method::DELETE,
                    &["v1", "objects", collection, object_id, "subscriptions"],
                    Some(json!({"recipients": recipients_json(chunk)})),
                )
            })
            .collect(),
        ActionPayload::AddAudienceMember {
            audience,
            members,
            create_audience,
        } => {
            let mut call = ApiCall::new(
                Method::POST,
                &["v1", "audiences", audience, "members"],
                Some(json!({"members": members_json(members)})),
            );
            if *create_audience {
                call.query.push(("create_audience", "true".to_owned()));
            }
            vec![call]
        }
        ActionPayload::RemoveAudienceMember { audience, members } => vec![ApiCall {
            not_found_is_success: true,
            ..ApiCall::new(
                Method::DELETE,
                &["v1", "audiences", audience, "members"],
                Some(json!({"members": members_json(members)})),
            )
        }],
    }
}

/// Knock's per-endpoint rate tiers, per environment key
/// (docs/platform-payloads.md, "Knock's API").
pub fn product_rate_limit(action: ActionType) -> NonZeroU32 {
    let per_second: u32 = match action {
        ActionType::TriggerWorkflow | ActionType::CancelWorkflow => 1_000,
        ActionType::DeleteUser | ActionType::DeleteTenant => 5,
        _ => 60,
    };
    NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN)
}

/// Executes actions against Knock's API.
pub struct KnockSink {
    client: reqwest::Client,
    base: Url,
    secret_key: Secret,
}

impl KnockSink {
    /// A sink for one environment: its API base (`https://api.knock.app`) and secret key.
    pub fn new(base_url: &str, secret_key: Secret) -> Result<Self, ActionsError> {
        let base = Url::parse(base_url).map_err(|e| ActionsError::InvalidUrl {
            url: base_url.to_owned(),
            reason: e.to_string(),
        })?;
        if base.cannot_be_a_base() {
            return Err(ActionsError::InvalidUrl {
                url: base_url.to_owned(),
                reason: "not a base URL".to_owned(),
            });
        }
        Ok(Self {
            client: client(),
            base,
            secret_key,
        })
    }

    fn url(&self, call: &ApiCall) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            // Each id is one escaped segment: a user id with `/` stays one id.
            segments.extend(call.path.iter());
        }
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(call.query.iter());
        }
        url
    }
}

impl Sink for KnockSink {
    fn kind(&self) -> &'static str {
        "knock"
    }

    fn rate_limit(&self, action: ActionType) -> Option<NonZeroU32> {
        Some(product_rate_limit(action))
    }

    fn is_rate_limited(&self, request: &ActionRequest) -> bool {
        !request.origin.is_sent_with_trigger()
    }

    fn execute<'a>(&'a self, request: &'a ActionRequest) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let summary = if request.origin.is_sent_with_trigger() {
                SENT_WITH_TRIGGER
            } else {
                "nothing to do"
            };
            let mut last = Outcome::Succeeded {
                status: None,
                summary: summary.to_owned(),
            };
            for call in api_calls(request) {
                let mut builder = self
                    .client
                    .request(call.method.clone(), self.url(&call))
                    .bearer_auth(self.secret_key.expose());
                if let Some(body) = &call.body {
                    builder = builder.json(body);
                }
                if let Some(key) = &call.idempotency_key {
                    builder = builder.header("Idempotency-Key", key);
                }
                last = match send(builder).await {
                    Outcome::Failed {
                        status: Some(404), ..
                    } if call.not_found_is_success => Outcome::Succeeded {
                        status: Some(404),
                        summary: "already absent".to_owned(),
                    },
                    outcome @ Outcome::Succeeded { .. } => outcome,
                    failure => return failure,
                };
            }
            last
        })
    }
}
