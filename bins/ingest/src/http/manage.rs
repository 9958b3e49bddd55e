//! The management API under `/api/v1`: sources, source environments and
//! mappings as live data (`tributary-manage`), and the revision log. Behind
//! the admin token, like the rest of the admin API. Changes answer with the
//! source's new `ETag`; a change may carry `If-Match` and is refused with
//! 412 when the source changed since.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_core::config::parse_duration;
use tributary_manage::{Committed, Credential, DEFAULT_TOKEN_GRACE, ManageError};

use super::answer::ApiError;
use crate::AppState;

/// Every management route, relative to `/api/v1`; the OpenAPI document must list each.
pub(crate) const PATHS: [&str; 12] = [
    "/sources",
    "/sources/{source}",
    "/sources/{source}/environments/{environment}",
    "/sources/{source}/environments/{environment}/rotate",
    "/sources/{source}/environments/{environment}/reveal",
    "/sources/{source}/environments/{environment}/mappings",
    "/sources/{source}/environments/{environment}/mappings/{mapping}",
    "/sources/{source}/promote",
    "/config/revisions",
    "/sources/{source}/environments/{environment}/rehearse",
    "/config/export",
    "/config/import",
];

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(PATHS[0], get(list_sources).post(create_source))
        .route(
            PATHS[1],
            get(get_source).patch(update_source).delete(delete_source),
        )
        .route(
            PATHS[2],
            axum::routing::patch(update_environment).post(create_environment),
        )
        .route(PATHS[3], post(rotate))
        .route(PATHS[4], post(reveal))
        .route(PATHS[5], get(list_mappings).post(create_mapping))
        .route(
            PATHS[6],
            get(get_mapping)
                .put(update_mapping)
                .patch(update_mapping)
                .delete(delete_mapping),
        )
        .route(PATHS[7], post(promote))
        .route(PATHS[8], get(revisions))
        .route(PATHS[9], post(rehearse))
        .route(PATHS[10], get(export))
        .route(PATHS[11], post(import))
}

/// Who made a change: the admin credential, by its fingerprint, never its value.
pub(crate) fn actor(state: &AppState) -> String {
    state.admin_token.as_ref().map_or_else(
        || "admin".to_owned(),
        |t| format!("admin:{}", tributary_manage::fingerprint(t.expose())),
    )
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The request body as JSON; malformed JSON is a 400 naming the position.
pub(crate) fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!(
                "the body is not JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        let code = e.code();
        match e {
            ManageError::NotFound { .. } => ApiError::not_found(e.to_string()),
            ManageError::Stale { ref current, .. } => {
                let current = current.clone();
                ApiError::new(StatusCode::PRECONDITION_FAILED, code, e.to_string())
                    .with_extra("etag", json!(current))
            }
            ManageError::Invalid(ref errors) => {
                let first = errors.first().map(|d| d.pointer.clone());
                let list: Vec<Value> = errors
                    .iter()
                    .map(|d| json!({"field": d.pointer, "message": d.message}))
                    .collect();
                let message = errors
                    .first()
                    .map_or_else(|| e.to_string(), |d| d.message.clone());
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
                    .with_field(first)
                    .with_extra("errors", Value::Array(list))
            }
            ManageError::Conflict { ref pointer, .. } => {
                let pointer = (!pointer.is_empty()).then(|| pointer.clone());
                ApiError::new(StatusCode::CONFLICT, code, e.to_string()).with_field(pointer)
            }
            ManageError::ManagedByFile(_) => {
                ApiError::new(StatusCode::CONFLICT, code, e.to_string())
            }
            ManageError::Store(ref s) => ApiError::store(s),
        }
    }
}

/// A change's answer: the source as it is now, its ETag, the revision, and
/// any secret the change made (shown this once).
fn committed(status: StatusCode, c: Committed) -> Response {
    let etag = c
        .source
        .as_ref()
        .and_then(|s| s["etag"].as_str())
        .map(str::to_owned);
    let mut body = json!({"revision": c.revision});
    if let Some(source) = c.source {
        body["source"] = source;
    }
    if !c.secrets.is_null() {
        body["secrets"] = c.secrets;
    }
    let mut response = (status, Json(body)).into_response();
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    // An answer holding a secret must not be kept by any cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn with_etag(view: Value) -> Response {
    let etag = view["etag"]
        .as_str()
        .and_then(|e| HeaderValue::from_str(e).ok());
    let mut response = Json(view).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn list_sources(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sources = state.manager.sources().await?;
    Ok(Json(json!({
        "revision": state.pipeline.live().revision(),
        "sources": sources
    }))
    .into_response())
}

async fn create_source(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let input = json_body(&body)?;
    // A request naming a template starts from its defaults (docs/templates.md).
    let input = match input {
        Value::Object(request) => {
            let config = state.pipeline.config();
            let environments: Vec<&str> = config.environments.keys().map(String::as_str).collect();
            Value::Object(
                tributary_templates::fill_from_template(&request, &environments).map_err(|e| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_configuration",
                        e.to_string(),
                    )
                    .with_field(Some("/template".into()))
                })?,
            )
        }
        other => other,
    };
    let c = state.manager.create_source(&actor(&state), input).await?;
    Ok(committed(StatusCode::CREATED, c))
}

async fn get_source(
    State(state): State<AppState>,
    Path(source): Path<String>,
) -> Result<Response, ApiError> {
    Ok(with_etag(state.manager.source(&source).await?))
}

async fn update_source(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let patch = json_body(&body)?;
    let c = state
        .manager
        .update_source(
            &actor(&state),
            &source,
            if_match(&headers).as_deref(),
            patch,
        )
        .await?;
    Ok(committed(StatusCode::OK, c))
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_source(
    State(state): State<AppState>,
    Path(source): Path<String>,
    Query(q): Query<DeleteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = state
        .manager
        .delete_source(
            &actor(&state),
            &source,
            if_match(&headers).as_deref(),
            q.force,
        )
        .await?;
    Ok(committed(StatusCode::OK, c))
}

async fn update_environment(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let patch = json_body(&body)?;
    let c = state
        .manager
        .update_environment(
            &actor(&state),
            &source,
            &environment,
            if_match(&headers).as_deref(),
            patch,
        )
        .await?;
    Ok(committed(StatusCode::OK, c))
}

async fn create_environment(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let settings = json_body(&body)?;
    let c = state
        .manager
        .create_environment(&actor(&state), &source, &environment, settings)
        .await?;
    Ok(committed(StatusCode::CREATED, c))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialRequest {
    credential: String,
    /// How long a rotated receive token keeps working (`90s`, `24h`, `0`).
    grace: Option<String>,
}

fn credential_request(body: &Bytes) -> Result<(Credential, Option<Duration>), ApiError> {
    let request: CredentialRequest = serde_json::from_value(json_body(body)?).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
    })?;
    let credential = Credential::parse(&request.credential).ok_or_else(|| {
        ManageError::invalid("/credential", "must be `token`, `write_key` or `api_key`")
    })?;
    let grace = request
        .grace
        .map(|g| parse_duration(&g).map_err(|message| ManageError::invalid("/grace", message)))
        .transpose()?;
    Ok((credential, grace))
}

async fn rotate(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (credential, grace) = credential_request(&body)?;
    let c = state
        .manager
        .rotate(
            &actor(&state),
            &source,
            &environment,
            credential,
            grace.unwrap_or(DEFAULT_TOKEN_GRACE),
        )
        .await?;
    Ok(committed(StatusCode::OK, c))
}

async fn reveal(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (credential, _) = credential_request(&body)?;
    let value = state
        .manager
        .reveal(&actor(&state), &source, &environment, credential)
        .await?;
    let mut response = Json(json!({ credential.key(): value })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn list_mappings(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mappings = state.manager.mappings(&source, &environment).await?;
    Ok(Json(json!({"mappings": mappings})).into_response())
}

async fn create_mapping(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mapping = json_body(&body)?;
    let c = state
        .manager
        .create_mapping(
            &actor(&state),
            &source,
            &environment,
            if_match(&headers).as_deref(),
            mapping,
        )
        .await?;
    Ok(committed(StatusCode::CREATED, c))
}

async fn get_mapping(
    State(state): State<AppState>,
    Path((source, environment, mapping)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let m = state
        .manager
        .mapping(&source, &environment, &mapping)
        .await?;
    Ok(Json(m).into_response())
}

/// PUT and PATCH both take a JSON merge patch, so `{"active": false}` is
/// the switch it always was.
async fn update_mapping(
    State(state): State<AppState>,
    Path((source, environment, mapping)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let patch = json_body(&body)?;
    let c = state
        .manager
        .update_mapping(
            &actor(&state),
            &source,
            &environment,
            &mapping,
            if_match(&headers).as_deref(),
            patch.clone(),
        )
        .await?;
    if let Some(active) = patch.get("active").and_then(Value::as_bool) {
        tracing::info!(source, environment, mapping, active, "Mapping toggled.");
    }
    Ok(committed(StatusCode::OK, c))
}

async fn delete_mapping(
    State(state): State<AppState>,
    Path((source, environment, mapping)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = state
        .manager
        .delete_mapping(
            &actor(&state),
            &source,
            &environment,
            &mapping,
            if_match(&headers).as_deref(),
        )
        .await?;
    Ok(committed(StatusCode::OK, c))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteRequest {
    from: String,
    to: String,
    #[serde(default)]
    dry_run: bool,
}

async fn promote(
    State(state): State<AppState>,
    Path(source): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: PromoteRequest = serde_json::from_value(json_body(&body)?).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
    })?;
    let (changes, revision) = state
        .manager
        .promote(
            &actor(&state),
            &source,
            &request.from,
            &request.to,
            request.dry_run,
        )
        .await?;
    Ok(Json(json!({
        "dry_run": request.dry_run,
        "changes": changes,
        "revision": revision,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct RevisionQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn revisions(
    State(state): State<AppState>,
    Query(q): Query<RevisionQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let revisions = state.manager.revisions(q.before, limit).await?;
    let next = (revisions.len() == limit)
        .then(|| revisions.last().map(|r| r.number))
        .flatten();
    let items: Vec<Value> = revisions
        .iter()
        .map(|r| {
            json!({"number": r.number, "created_at": r.created_at, "actor": r.actor,
                   "summary": r.summary, "changes": r.changes})
        })
        .collect();
    Ok(Json(json!({"revisions": items, "next_before": next})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RehearseRequest {
    /// The payload: a string is sent as its bytes, anything else as JSON.
    body: Value,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    verify: bool,
    /// A proposed list of mappings for this environment, unsaved.
    mappings: Option<Value>,
}

/// Rehearsal answers 200 whatever the payload did: a refusal is a result
/// (`"result": "refused"` with the status and error a real request would get).
async fn rehearse(
    State(state): State<AppState>,
    Path((source, environment)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RehearseRequest = serde_json::from_value(json_body(&body)?).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
    })?;
    let raw = tributary_manage::rehearsal_request(request.body, &request.headers);
    let answer = state
        .manager
        .rehearse(
            &source,
            &environment,
            raw,
            request.verify,
            request.mappings.as_ref(),
        )
        .await?;
    let body = match answer {
        Ok(rehearsal) => {
            let mut body = json!(rehearsal);
            body["result"] = json!("ok");
            body
        }
        Err(refused) => {
            let (status, mut body) = ApiError::from(refused).parts();
            body["result"] = json!("refused");
            body["status"] = json!(status.as_u16());
            body
        }
    };
    Ok(Json(body).into_response())
}

/// The stored sources as `[[sources]]` tables, secrets in full (it is
/// configuration): never cached, and the export is logged.
async fn export(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.manager.export().await?;
    tracing::info!(actor = %actor(&state), "Configuration exported.");
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// A configuration file's `[[sources]]` (the body, TOML) become the stored
/// sources, as one revision; `dry_run` shows the steps only.
async fn import(
    State(state): State<AppState>,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_encoding", "the body is not UTF-8 text"))?;
    let import = state
        .manager
        .import(&actor(&state), text, q.dry_run)
        .await?;
    Ok(
        Json(json!({"dry_run": q.dry_run, "steps": import.steps, "revision": import.revision}))
            .into_response(),
    )
}
