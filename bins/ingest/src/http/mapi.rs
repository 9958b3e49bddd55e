//! Knock's Management API shape for sources under `/api/mapi/v1`, so a
//! script written for Knock's API works with `<public_url>/api/mapi` as its
//! base URL (docs/managing-sources.md, "Knock's shape"). Behind the admin
//! token; the operations are the management layer's, translated by
//! `tributary_manage::knock_shape`.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_manage::knock_shape;
use tributary_store::{EventFilter, EventStatus};

use super::{answer::ApiError, manage};
use crate::AppState;

/// Every route, relative to `/api/mapi/v1`; the OpenAPI document lists each
/// under that prefix.
pub(crate) const PATHS: [&str; 6] = [
    "/sources",
    "/sources/{key}",
    "/sources/{key}/events",
    "/sources/{key}/logs",
    "/sources/{key}/status",
    "/sources/{key}/rehearse",
];

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(PATHS[0], get(list))
        .route(PATHS[1], get(one).put(upsert))
        .route(PATHS[2], get(events))
        .route(PATHS[3], get(logs))
        .route(PATHS[4], get(status))
        .route(PATHS[5], post(rehearse))
}

#[derive(Deserialize)]
struct EnvironmentQuery {
    environment: Option<String>,
}

impl EnvironmentQuery {
    fn required(&self) -> Result<&str, ApiError> {
        self.environment.as_deref().ok_or_else(|| {
            ApiError::bad_request(
                "missing_environment",
                "the `environment` query parameter is required",
            )
        })
    }
}

fn page(entries: Vec<Value>) -> Value {
    let size = entries.len();
    json!({"entries": entries, "page_info": {"after": null, "before": null, "page_size": size}})
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response, ApiError> {
    let sources = state.manager.sources().await?;
    let entries = sources
        .iter()
        .map(|s| knock_shape::source(s, q.environment.as_deref()))
        .collect();
    Ok(Json(page(entries)).into_response())
}

async fn one(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response, ApiError> {
    let view = state.manager.source(&key).await?;
    Ok(Json(knock_shape::source(&view, q.environment.as_deref())).into_response())
}

async fn upsert(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let environment = q.required()?;
    let body = manage::json_body(&body)?;
    let committed = state
        .manager
        .upsert_knock_source(&manage::actor(&state), &key, environment, &body)
        .await?;
    let view = match committed.source {
        Some(view) => view,
        None => state.manager.source(&key).await?,
    };
    Ok(Json(json!({"source": knock_shape::source(&view, Some(environment))})).into_response())
}

async fn events(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response, ApiError> {
    let environment = q.required()?;
    state.manager.source(&key).await?;
    let types = state
        .pipeline
        .store()
        .known_event_types(&key, environment)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let entries = types
        .into_iter()
        .map(|t| json!({"event": t.event_type, "last_received_at": t.last_seen_at}))
        .collect();
    Ok(Json(page(entries)).into_response())
}

#[derive(Deserialize)]
struct LogQuery {
    environment: Option<String>,
    starting_at: Option<DateTime<Utc>>,
    ending_at: Option<DateTime<Utc>>,
    event: Option<String>,
    id: Option<String>,
    include: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

/// Event logs in Knock's `SourceLog` shape, optionally with their actions.
async fn logs(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let environment = EnvironmentQuery {
        environment: q.environment.clone(),
    };
    let environment = environment.required()?;
    state.manager.source(&key).await?;
    let store = state.pipeline.store();
    let with_actions = q
        .include
        .as_deref()
        .is_some_and(|i| i.split(',').any(|p| p.trim() == "actions"));
    let parse_id = |s: &str, what: &str| {
        s.parse().map_err(|_| {
            ApiError::bad_request("invalid_id", format!("`{what}` is not an event id"))
        })
    };
    let records = match &q.id {
        Some(id) => store
            .event_detail(parse_id(id, "id")?)
            .await
            .map_err(|e| ApiError::store(&e))?
            .filter(|d| {
                d.event.source.as_deref() == Some(key.as_str())
                    && d.event.environment.as_deref() == Some(environment)
            })
            .map(|d| d.event)
            .into_iter()
            .collect(),
        None => {
            let filter = EventFilter {
                source: Some(key.clone()),
                environment: Some(environment.to_owned()),
                event_type: q.event.clone(),
                status: Some(EventStatus::Accepted),
                since: q.starting_at,
                until: q.ending_at,
                ..EventFilter::default()
            };
            let before = q
                .before
                .as_deref()
                .map(|b| parse_id(b, "before"))
                .transpose()?;
            store
                .list_events(&filter, before, q.limit.unwrap_or(50).clamp(1, 500))
                .await
                .map_err(|e| ApiError::store(&e))?
                .items
        }
    };
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let mut entry = json!({
            "id": record.id,
            "event": record.event_type,
            "data": record.event.as_ref().map(|e| &e.raw),
            "inserted_at": record.received_at,
            "verification_status": record.provenance.verification,
            "source": record.provenance.replay_of.map(|_| "replay"),
        });
        if with_actions {
            let detail = store
                .event_detail(record.id)
                .await
                .map_err(|e| ApiError::store(&e))?;
            let actions: Vec<Value> = detail
                .into_iter()
                .flat_map(|d| d.actions)
                .map(|a| {
                    json!({
                        "id": a.id,
                        "action_type": a.action.product_name(),
                        "action_payload": a.plan.payload(),
                        "action_status": a.status,
                        "action_result": a.last_error.map(|e| json!({"error": e})),
                        "inserted_at": a.created_at,
                    })
                })
                .collect();
            entry["actions"] = Value::Array(actions);
        }
        entries.push(entry);
    }
    Ok(Json(page(entries)).into_response())
}

async fn status(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response, ApiError> {
    let environment = q.required()?;
    let sources = state.manager.sources().await?;
    let view = sources
        .iter()
        .find(|s| s["key"] == json!(key))
        .ok_or_else(|| ApiError::not_found(format!("source `{key}` not found")))?;
    let env = view["environments"]
        .get(environment)
        .ok_or_else(|| ApiError::not_found(format!("environment `{environment}` not found")))?;
    Ok(Json(json!({
        "events_count": env["status"]["events_30d"],
        "last_event_received": env["status"]["last_received_at"],
        "mappings_count": env["status"]["mappings"],
        "mappings_requiring_commit": [],
    }))
    .into_response())
}

#[derive(Deserialize)]
struct RehearsePayload {
    payload: RehearseBody,
}

#[derive(Deserialize)]
struct RehearseBody {
    body: Value,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

/// Knock's rehearse answer: counts of the actions the payload would plan,
/// and the errors that would skip or refuse it. Nothing is stored.
async fn rehearse(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let environment = q.required()?;
    let request: RehearsePayload =
        serde_json::from_value(manage::json_body(&body)?).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.to_string(),
            )
        })?;
    let raw = tributary_manage::rehearsal_request(request.payload.body, &request.payload.headers);
    let answer = state
        .manager
        .rehearse(&key, environment, raw, true, None)
        .await?;
    let body = match answer {
        Ok(r) => {
            let plans: Vec<_> = r.events.iter().flat_map(|e| &e.plans).collect();
            let failed = plans.iter().filter(|p| p.payload().is_none()).count();
            let errors: Vec<Value> = r
                .rejected
                .iter()
                .map(|i| json!({"field": i.error.field, "message": i.error.message}))
                .collect();
            json!({
                "log_id": null,
                "status": if errors.is_empty() { "ok" } else { "error" },
                "action_logs_count": plans.len(),
                "successful_action_logs_count": plans.len() - failed,
                "failed_action_logs_count": failed,
                "errors": errors,
            })
        }
        Err(refused) => {
            let (_, error) = ApiError::from(refused).parts();
            json!({
                "log_id": null,
                "status": "error",
                "action_logs_count": 0,
                "successful_action_logs_count": 0,
                "failed_action_logs_count": 0,
                "errors": [{"field": error["error"]["field"], "message": error["error"]["message"]}],
            })
        }
    };
    Ok(Json(body).into_response())
}
