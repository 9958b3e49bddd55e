//! The reverse-ETL ways in (docs/product-decisions.md, "Reverse ETL"): the
//! product's resource API and the Hightouch and Census JSON-RPC connectors,
//! authenticated by an environment API key (`Authorization: Bearer`). Each call
//! (each data call, for the connectors) becomes one event of kind `resource`
//! whose plans are the call itself; `Ok` means it is durable. Nothing here runs
//! an action.

use std::time::Duration;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use tributary_adapter::{AdapterError, RawRequest, decode_body};
use tributary_census::CustomDestination;
use tributary_core::{
    dedup::{DedupScope, MAX_KEY_CHARS},
    event::{Event, EventId},
};
use tributary_hightouch::EmbeddedDestination;
use tributary_resource_api::{
    ApiRequest, CallAnswer, EventContext, Operation, ResourceError,
    jsonrpc::{Dispatch, RowWrite},
    parse_call, resource_event, resource_plans, workflow_run_id,
};
use tributary_store::{AppendItem, AppendOutcome, StoreError};

use crate::{LiveConfig, Pipeline, Route};

/// How long an `Idempotency-Key` on a trigger holds (the product's 24 h).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A resource-API request as the service read it off the wire.
#[derive(Debug)]
pub struct ResourceRequest {
    /// The method (`PUT`, ...).
    pub method: String,
    /// The path as sent, percent-encoded.
    pub path: String,
    /// The query string without `?`.
    pub query: Option<String>,
    /// Headers, body (possibly compressed) and receipt time.
    pub raw: RawRequest,
}

/// The JSON-RPC connectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// `POST /v1/integrations/hightouch/embedded-destination`.
    HightouchEmbedded,
    /// `POST /v1/integrations/census/custom-destination`.
    CensusCustom,
}

/// The answer to a stored resource call.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceReply {
    /// What to send.
    pub body: ReplyBody,
    /// The event-log entry written for this request.
    pub event_id: EventId,
    /// True when an `Idempotency-Key` replayed an earlier trigger: the body
    /// is the original answer.
    pub replayed: bool,
    /// Actions this call left in the outbox for the workers (as
    /// [`crate::Receipt::queued`]): zero when the store ran them at append
    /// or the call replayed an earlier one.
    pub queued: usize,
}

/// A success answer's shape (the service picks the status: 200 or 204).
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyBody {
    /// 200 with this JSON.
    Json(Value),
    /// 204.
    NoContent,
}

/// Why a resource call or connector request was refused. All but `Store`
/// are logged in the event log as `rejected`.
#[derive(Debug, thiserror::Error)]
pub enum ResourceCallError {
    /// No or an unknown environment API key (401).
    #[error("{message}")]
    Unauthorized {
        /// What was wrong (never the key).
        message: String,
    },
    /// The call broke the endpoint's rules (404, 400, 422, 413).
    #[error(transparent)]
    Call(#[from] ResourceError),
    /// The body could not be decoded (413 over the cap, 415 encoding).
    #[error(transparent)]
    Body(#[from] AdapterError),
    /// An `Idempotency-Key` reused with different parameters (422).
    #[error("the Idempotency-Key was used with different parameters within 24 hours")]
    IdempotencyConflict,
    /// The store could not take the call: nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResourceCallError {
    /// Machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Unauthorized { .. } => "unauthorized",
            Self::Call(e) => e.code(),
            Self::Body(e) => e.code(),
            Self::IdempotencyConflict => "idempotency_key_reused",
            Self::Store(_) => "store_unavailable",
        }
    }
}

impl Pipeline {
    /// Whether a resource-API or connector request's `Authorization:
    /// Bearer` key belongs to a source environment. Only headers are read,
    /// so the server refuses an unknown key before reading the body.
    pub fn authenticates(&self, req: &RawRequest) -> bool {
        route_by_bearer(&self.live(), req).is_some()
    }

    /// A call to the product's resource API: authenticate, parse, store the
    /// call as an event with the call as its plans, answer.
    pub async fn resource_call(
        &self,
        mut req: ResourceRequest,
    ) -> Result<ResourceReply, ResourceCallError> {
        let live = self.live();
        let Some(route) = route_by_bearer(&live, &req.raw) else {
            let message = "a valid environment API key is required (Authorization: Bearer)";
            self.log_rejected(None, &req.raw, "unauthorized", message)
                .await;
            return Err(ResourceCallError::Unauthorized {
                message: message.to_owned(),
            });
        };
        req.raw.source.clone_from(&route.source.key);
        route.environment.clone_into(&mut req.raw.environment);
        match self.store_call(route, &req).await {
            Err(e @ ResourceCallError::Store(_)) => Err(e),
            Err(e) => {
                let message = match &e {
                    ResourceCallError::Call(c) => match c.field() {
                        Some(f) => format!("{} (at `{f}`)", c.message()),
                        None => c.message(),
                    },
                    other => other.to_string(),
                };
                self.log_rejected(Some(route), &req.raw, e.code(), &message)
                    .await;
                Err(e)
            }
            ok => ok,
        }
    }

    async fn store_call(
        &self,
        route: Route<'_>,
        req: &ResourceRequest,
    ) -> Result<ResourceReply, ResourceCallError> {
        let body = decode_body(&req.raw)?;
        let call = parse_call(ApiRequest {
            method: &req.method,
            path: &req.path,
            query: req.query.as_deref(),
            body: &body,
        })?;
        drop(body);
        let idempotency_key = match (call.operation, req.raw.header("idempotency-key")) {
            (Operation::TriggerWorkflow, Some(k)) if !k.trim().is_empty() => {
                let k = k.trim();
                if k.chars().count() > MAX_KEY_CHARS {
                    return Err(ResourceError::Invalid {
                        code: "invalid_idempotency_key",
                        field: "/headers/idempotency-key".to_owned(),
                        message: format!(
                            "`Idempotency-Key` has more than {MAX_KEY_CHARS} characters"
                        ),
                    }
                    .into());
                }
                Some(k.to_owned())
            }
            _ => None,
        };
        let event_type = call.operation.event_type();
        let dedup = idempotency_key.as_ref().map(|key| DedupScope {
            key: key.clone(),
            event_type: event_type.to_owned(),
            source: route.source.key.clone(),
            environment: route.environment.to_owned(),
            window: IDEMPOTENCY_WINDOW,
        });
        let event = resource_event(
            self.context(route, &req.raw),
            event_type,
            call.user_id,
            call.body,
            call.raw,
            idempotency_key,
        );
        let received_at = event.received_at;
        // Only an idempotent trigger may need comparing with its original.
        let fingerprint = dedup
            .is_some()
            .then(|| (event.data.clone(), event.raw.get("path").cloned()));
        let plans = resource_plans(event_type, call.payloads, call.trigger_inline);
        let (outcome, queued) = self.append_one(route, event, plans, dedup).await?;
        let (answer_id, replayed) = match outcome {
            AppendOutcome::Accepted { event_id, .. } => (event_id, false),
            AppendOutcome::Duplicate {
                original_event_id, ..
            } => {
                if !self.same_call(original_event_id, fingerprint).await {
                    return Err(ResourceCallError::IdempotencyConflict);
                }
                (original_event_id, true)
            }
        };
        let now = received_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let body = match call.answer {
            CallAnswer::NoContent => ReplyBody::NoContent,
            CallAnswer::WorkflowRun => {
                ReplyBody::Json(json!({"workflow_run_id": workflow_run_id(answer_id)}))
            }
            CallAnswer::Entity(mut entity) => {
                if let Value::Object(e) = &mut entity {
                    e.entry("updated_at").or_insert_with(|| json!(now));
                }
                ReplyBody::Json(entity)
            }
            CallAnswer::Subscriptions(Value::Array(mut subs)) => {
                for s in &mut subs {
                    s["inserted_at"] = json!(now);
                    s["updated_at"] = json!(now);
                }
                ReplyBody::Json(Value::Array(subs))
            }
            CallAnswer::Subscriptions(other) => ReplyBody::Json(other),
            CallAnswer::BulkOperation { rows } => {
                let id = workflow_run_id(answer_id);
                ReplyBody::Json(json!({
                    "__typename": "BulkOperation",
                    "id": id,
                    "name": event_type,
                    "status": "queued",
                    "estimated_total_rows": rows,
                    "processed_rows": 0,
                    "success_count": 0,
                    "error_count": 0,
                    "error_items": [],
                    "progress_path": format!("/v1/bulk_operations/{id}"),
                    "inserted_at": now,
                    "updated_at": now,
                    "started_at": null,
                    "completed_at": null,
                    "failed_at": null,
                }))
            }
        };
        Ok(ResourceReply {
            body,
            event_id: answer_id,
            replayed,
            queued,
        })
    }

    /// Whether a replayed trigger carries the same parameters as the
    /// original. When the original cannot be read, the replay is trusted.
    async fn same_call(&self, original: EventId, replay: Option<(Value, Option<Value>)>) -> bool {
        let Some((data, path)) = replay else {
            return true;
        };
        match self.store().event_detail(original).await {
            Ok(Some(detail)) => detail
                .event
                .event
                .as_ref()
                .is_none_or(|e| e.data == data && e.raw.get("path") == path.as_ref()),
            _ => true,
        }
    }

    /// A JSON-RPC connector request: metadata methods are answered at once;
    /// a data call is stored as one event (its accepted rows' actions) and
    /// then answered with the per-row results.
    pub async fn connector_call(
        &self,
        connector: Connector,
        mut req: RawRequest,
    ) -> Result<Value, ResourceCallError> {
        let live = self.live();
        let Some(route) = route_by_bearer(&live, &req) else {
            let message = "a valid environment API key is required (Authorization: Bearer)";
            self.log_rejected(None, &req, "unauthorized", message).await;
            return Err(ResourceCallError::Unauthorized {
                message: message.to_owned(),
            });
        };
        req.source.clone_from(&route.source.key);
        route.environment.clone_into(&mut req.environment);
        let body = match decode_body(&req) {
            Ok(b) => b,
            Err(e) => {
                self.log_rejected(Some(route), &req, e.code(), &e.message())
                    .await;
                return Err(e.into());
            }
        };
        let dispatch = match connector {
            Connector::HightouchEmbedded => EmbeddedDestination::new().handle(&body),
            Connector::CensusCustom => CustomDestination::new().handle(&body),
        };
        drop(body);
        match dispatch {
            Dispatch::Reply(reply) => Ok(reply),
            Dispatch::Write(write) => {
                let RowWrite {
                    event_type,
                    data,
                    payloads,
                    accepted,
                    rejected,
                    reply,
                } = write;
                let event = resource_event(
                    self.context(route, &req),
                    &event_type,
                    None,
                    json!({"accepted": accepted, "rejected": rejected}),
                    data,
                    None,
                );
                let plans = resource_plans(&event_type, payloads, Default::default());
                self.append_one(route, event, plans, None).await?;
                Ok(reply)
            }
        }
    }

    fn context(&self, route: Route<'_>, req: &RawRequest) -> EventContext {
        EventContext {
            id: req.next_id(),
            source: route.source.key.clone(),
            environment: route.environment.to_owned(),
            received_at: req.received_at,
            headers: req.stored_headers(None),
        }
    }

    async fn append_one(
        &self,
        route: Route<'_>,
        event: Event,
        plans: Vec<tributary_core::plan::ActionPlan>,
        dedup: Option<DedupScope>,
    ) -> Result<(AppendOutcome, usize), ResourceCallError> {
        let item = AppendItem {
            event,
            plans,
            dedup,
            provenance: tributary_store::Provenance {
                config_revision: self.live().revision(),
                ..Default::default()
            },
        };
        let planned = crate::pipeline::planned_actions(&item);
        let outcome = self
            .store()
            .append(vec![item])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("append returned no outcome".to_owned()))?;
        let queued = crate::pipeline::queued(planned, &outcome);
        metrics::counter!("tributary_outbox_pushed_total", "source" => route.source.key.clone())
            .increment(queued as u64);
        metrics::counter!("tributary_events_received_total", "source" => route.source.key.clone())
            .increment(1);
        Ok((outcome, queued))
    }
}

/// The source environment of a request's `Authorization: Bearer` API key.
fn route_by_bearer<'a>(live: &'a LiveConfig, req: &RawRequest) -> Option<Route<'a>> {
    let header = req.header("authorization")?.trim();
    let (scheme, key) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    live.route_by_api_key(key.trim())
}
