//! The admin API under `/api/v1`, behind a bearer token: event and action
//! logs, mapping toggles, replays, per-source status, local recipients.

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{StatusCode, header::AUTHORIZATION},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tributary_pipeline::LoggedReplay;
use tributary_store::{ActionFilter, ActionId, ActionStatus, EventFilter, EventStatus, LocalKind};

use super::answer::ApiError;
use crate::AppState;

/// The most entries one page returns.
const MAX_PAGE: usize = 500;

/// Every admin route, relative to `/api/v1`; the OpenAPI document must list each.
pub(crate) const PATHS: [&str; 9] = [
    "/events",
    "/events/replay",
    "/events/{id}",
    "/events/{id}/replay",
    "/actions",
    "/sources/status",
    "/sources/{source}/environments/{environment}/event-types",
    "/local/{kind}/{id}",
    "/openapi.json",
];

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(PATHS[0], get(list_events))
        .route(PATHS[1], post(replay_set))
        .route(PATHS[2], get(event_detail))
        .route(PATHS[3], post(replay))
        .route(PATHS[4], get(list_actions))
        .route(PATHS[5], get(source_status))
        .route(PATHS[6], get(event_types))
        .route(PATHS[7], get(local_record))
        .route(PATHS[8], get(openapi))
}

/// Bearer-token check for every admin route, in constant time. Without a
/// configured token the admin API does not exist (404), rather than being open.
pub(crate) async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.admin_token else {
        return ApiError::not_found("the admin API is off: set [admin] token").into_response();
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !expected.matches(presented.trim().as_bytes()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "a valid `Authorization: Bearer <admin token>` is required",
        )
        .into_response();
    }
    next.run(request).await
}

fn limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(50).clamp(1, MAX_PAGE)
}

#[derive(Deserialize)]
struct EventQuery {
    source: Option<String>,
    environment: Option<String>,
    event_type: Option<String>,
    user_id: Option<String>,
    status: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_events(
    State(state): State<AppState>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<EventStatus>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_status",
                    "status is accepted, duplicate or rejected",
                )
            })
        })
        .transpose()?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is an event id"))
        })
        .transpose()?;
    let filter = EventFilter {
        source: q.source,
        environment: q.environment,
        event_type: q.event_type,
        user_id: q.user_id,
        status,
        since: q.since,
        until: q.until,
    };
    let page = state
        .pipeline
        .store()
        .list_events(&filter, before, limit(q.limit))
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(page).into_response())
}

async fn event_detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "not an event id"))?;
    match state.pipeline.store().event_detail(id).await {
        Ok(Some(detail)) => Ok(Json(detail).into_response()),
        Ok(None) => Err(ApiError::not_found(format!("event `{id}` not found"))),
        Err(e) => Err(ApiError::store(&e)),
    }
}

#[derive(Deserialize)]
struct ReplayQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "not an event id"))?;
    match state
        .pipeline
        .replay_logged(id, q.dry_run)
        .await
        .map_err(|e| ApiError::store(&e))?
    {
        LoggedReplay::NotFound => Err(ApiError::not_found(format!("event `{id}` not found"))),
        LoggedReplay::NotReplayable => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_replayable",
            "a rejected request has no normalized event to replay",
        )),
        LoggedReplay::DryRun { plans } => {
            Ok(Json(json!({"dry_run": true, "plans": plans})).into_response())
        }
        LoggedReplay::Replayed {
            event_id: new_id,
            plans,
        } => {
            if let Some(w) = &state.workers {
                w.wake();
            }
            Ok((
                StatusCode::CREATED,
                Json(json!({"event_id": new_id, "replay_of": id, "plans": plans})),
            )
                .into_response())
        }
    }
}

/// The most events one filtered replay touches.
const MAX_REPLAY: usize = 1_000;

#[derive(Deserialize)]
struct ReplaySet {
    source: Option<String>,
    environment: Option<String>,
    event_type: Option<String>,
    user_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    dry_run: bool,
    limit: Option<usize>,
}

/// Replays every accepted or duplicate event matching a filter (newest
/// first, at most `limit`, up to 1,000), or shows their plans as a dry run.
async fn replay_set(
    State(state): State<AppState>,
    Json(body): Json<ReplaySet>,
) -> Result<Response, ApiError> {
    let limit = body.limit.unwrap_or(100).clamp(1, MAX_REPLAY);
    let filter = EventFilter {
        source: body.source,
        environment: body.environment,
        event_type: body.event_type,
        user_id: body.user_id,
        status: None,
        since: body.since,
        until: body.until,
    };
    let store = state.pipeline.store();
    let mut events = Vec::new();
    let mut cursor = None;
    while events.len() < limit {
        let page = store
            .list_events(&filter, cursor, MAX_PAGE.min(limit - events.len()).max(1))
            .await
            .map_err(|e| ApiError::store(&e))?;
        // Rejected requests have no normalized event: nothing to replay.
        events.extend(
            page.items
                .into_iter()
                .filter_map(|r| r.event.map(|e| (r.id, e))),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    events.truncate(limit);
    let mut items = Vec::with_capacity(events.len());
    for (id, event) in &events {
        if body.dry_run {
            items.push(json!({"event_id": id, "plans": state.pipeline.plan(event)}));
        } else {
            let (new_id, plans) = state
                .pipeline
                .replay(event)
                .await
                .map_err(|e| ApiError::store(&e))?;
            items.push(json!({"event_id": new_id, "replay_of": id, "plans": plans}));
        }
    }
    if !body.dry_run
        && !items.is_empty()
        && let Some(w) = &state.workers
    {
        w.wake();
    }
    tracing::info!(
        count = items.len(),
        dry_run = body.dry_run,
        "Events replayed."
    );
    Ok(
        Json(json!({"dry_run": body.dry_run, "count": items.len(), "items": items}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct ActionQuery {
    status: Option<String>,
    source: Option<String>,
    environment: Option<String>,
    action: Option<String>,
    event_id: Option<String>,
    user_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_actions(
    State(state): State<AppState>,
    Query(q): Query<ActionQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<ActionStatus>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_status",
                    "status is pending, running, succeeded, failed or skipped",
                )
            })
        })
        .transpose()?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<ActionId>()
                .map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is an action id"))
        })
        .transpose()?;
    let action = q
        .action
        .as_deref()
        .map(|a| {
            a.parse::<tributary_core::ActionType>()
                .map_err(|e| ApiError::bad_request("invalid_action", e.to_string()))
        })
        .transpose()?;
    let event_id = q
        .event_id
        .as_deref()
        .map(|id| {
            id.parse()
                .map_err(|_| ApiError::bad_request("invalid_event_id", "event_id is an event id"))
        })
        .transpose()?;
    let filter = ActionFilter {
        status,
        source: q.source,
        environment: q.environment,
        action,
        event_id,
        user_id: q.user_id,
        since: q.since,
        until: q.until,
    };
    let page = state
        .pipeline
        .store()
        .find_actions(&filter, before, limit(q.limit))
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(page).into_response())
}

async fn source_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let statuses = state
        .pipeline
        .store()
        .source_statuses(Utc::now())
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(json!({"sources": statuses})).into_response())
}

async fn event_types(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let types = state
        .pipeline
        .store()
        .known_event_types(&source, &environment)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(json!({"event_types": types})).into_response())
}

#[derive(Deserialize)]
struct LocalQuery {
    environment: String,
    #[serde(default)]
    scope: String,
}

async fn local_record(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<LocalQuery>,
) -> Result<Response, ApiError> {
    let kind: LocalKind = kind.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_kind",
            "kind is user, object, tenant, audience, audience_member, subscription or workflow_run",
        )
    })?;
    match state
        .pipeline
        .store()
        .local_record(kind, &q.environment, &q.scope, &id)
        .await
    {
        Ok(Some(record)) => Ok(Json(record).into_response()),
        Ok(None) => Err(ApiError::not_found(format!("no {kind} `{id}`"))),
        Err(e) => Err(ApiError::store(&e)),
    }
}

/// The admin API's OpenAPI document, kept beside the routes it describes
/// (a test checks every route is in it).
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routed: Vec<String> = PATHS
            .iter()
            .chain(&crate::http::manage::PATHS)
            .chain(&crate::http::providers::PATHS)
            .map(|p| format!("/api/v1{p}"))
            .chain(
                crate::http::mapi::PATHS
                    .iter()
                    .map(|p| format!("/api/mapi/v1{p}")),
            )
            .collect();
        for path in &routed {
            assert!(
                paths.contains_key(path),
                "{path} is routed but not in openapi.json"
            );
        }
        assert_eq!(
            paths.len(),
            routed.len(),
            "openapi.json lists a path that is not routed"
        );
    }
}
