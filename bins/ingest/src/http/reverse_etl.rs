//! The reverse-ETL ways in (docs/product-decisions.md, "Reverse ETL"): the
//! product's resource API and the Hightouch and Census JSON-RPC connectors.
//! Answers mirror the product's API: 200 with the entity as sent, 204, 401, 404,
//! 422 naming the field, 429. Errors carry the product's fields (`code`,
//! `message`, `status`, `type`, `errors`) and our `error` object
//! (docs/product-decisions.md, "Answers"), so either kind of client reads them.

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tributary_adapter::{ErrorCategory, RawRequest};
use tributary_edge::{BodyError, Reservation};
use tributary_pipeline::{Connector, ReplyBody, ResourceCallError, ResourceRequest};
use tributary_store::StoreError;

use super::answer::category_status;
use crate::AppState;

/// The product accepts trigger `data` up to 10 MB, so resource calls may be
/// larger than the receive URLs' default cap.
pub(crate) const RESOURCE_MAX_BODY_BYTES: usize = 12 * 1024 * 1024;

fn body_limit(state: &AppState) -> usize {
    state.max_body_bytes.max(RESOURCE_MAX_BODY_BYTES)
}

/// The request with its body, read only once its bearer key is known: an
/// unknown key gets the request without its body, which the pipeline refuses
/// (and logs) as before. The reservation is kept while the call runs.
async fn read(
    state: &AppState,
    route: &'static str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(RawRequest, Option<Reservation>), Response> {
    let limit = body_limit(state);
    let mut raw = super::ingest::raw_request(headers, Vec::new(), limit);
    if !state.pipeline.authenticates(&raw) {
        return Ok((raw, None));
    }
    let (bytes, reservation) = super::ingest::read_body(state, route, headers, body, limit)
        .await
        .map_err(|e| body_error(&e))?;
    raw.body = bytes;
    Ok((raw, Some(reservation)))
}

fn body_error(e: &BodyError) -> Response {
    let mut response = error(e.status(), e.code(), &e.to_string(), None);
    if let Some(secs) = e.retry_after_secs() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Every resource-API route: the pipeline's parser routes by method and path.
pub(crate) async fn resource(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (raw, _reservation) = match read(&state, "resource", &headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let req = ResourceRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        raw,
    };
    match state.pipeline.resource_call(req).await {
        Ok(reply) => {
            state.wake_workers_for(reply.queued);
            let mut response = match reply.body {
                ReplyBody::NoContent => StatusCode::NO_CONTENT.into_response(),
                ReplyBody::Json(v) => (StatusCode::OK, Json(v)).into_response(),
            };
            if reply.replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(e) => call_error(&e),
    }
}

/// `POST /v1/integrations/hightouch/embedded-destination`.
pub(crate) async fn hightouch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    connector(state, Connector::HightouchEmbedded, headers, body).await
}

/// `POST /v1/integrations/census/custom-destination`.
pub(crate) async fn census(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    connector(state, Connector::CensusCustom, headers, body).await
}

async fn connector(state: AppState, which: Connector, headers: HeaderMap, body: Body) -> Response {
    let (raw, _reservation) = match read(&state, "connector", &headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match state.pipeline.connector_call(which, raw).await {
        Ok(reply) => {
            wake(&state);
            (StatusCode::OK, Json(reply)).into_response()
        }
        Err(e) => call_error(&e),
    }
}

fn wake(state: &AppState) {
    if let Some(w) = &state.workers {
        w.wake();
    }
}

fn call_error(e: &ResourceCallError) -> Response {
    match e {
        ResourceCallError::Unauthorized { message } => {
            error(StatusCode::UNAUTHORIZED, "unauthorized", message, None)
        }
        ResourceCallError::Call(c) => error(
            StatusCode::from_u16(c.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            c.code(),
            &c.message(),
            c.field(),
        ),
        ResourceCallError::Body(b) => {
            let status = match b.category() {
                ErrorCategory::Unauthorized => StatusCode::UNAUTHORIZED,
                other => category_status(other),
            };
            error(status, b.code(), &b.message(), b.field())
        }
        ResourceCallError::IdempotencyConflict => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            &e.to_string(),
            Some("/headers/idempotency-key"),
        ),
        ResourceCallError::Store(s) => store_error(s),
    }
}

fn store_error(e: &StoreError) -> Response {
    let (status, code, message, retry) = match e {
        StoreError::Overloaded => (
            StatusCode::TOO_MANY_REQUESTS,
            "over_capacity",
            "the commit queue is full; retry shortly",
            Some(1u64),
        ),
        e if e.is_unavailable() => {
            tracing::error!(error = %e, "Store unavailable.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store is unavailable; nothing was accepted, retry later",
                Some(5),
            )
        }
        e => {
            tracing::error!(error = %e, "Store error.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; nothing was accepted",
                None,
            )
        }
    };
    let mut response = error(status, code, message, None);
    if let Some(secs) = retry {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The product's error fields plus our `error` object (docs/product-decisions.md,
/// "Answers").
fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response {
    let kind = match status.as_u16() {
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let mut contract = json!({"code": code, "message": message});
    let mut errors = Vec::new();
    if let Some(f) = field {
        contract["field"] = Value::String(f.to_owned());
        errors.push(json!({"field": f, "message": message}));
    }
    let body = json!({
        "code": code,
        "message": message,
        "status": status.as_u16(),
        "type": kind,
        "errors": errors,
        "error": contract,
    });
    (status, Json(body)).into_response()
}
