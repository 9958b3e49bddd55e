//! The two ways in built so far: receive URLs and the Segment-compatible Tracking API.

use std::time::Instant;

use axum::{
    body::{Body, to_bytes},
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use tributary_adapter::RawRequest;
use tributary_pipeline::{PipelineError, Receipt};
use tributary_segment::TrackingCall;

use super::answer::{self, ApiError};
use crate::AppState;

/// Reads the body up to the configured limit (compressed bytes; the adapters
/// cap the decompressed size again).
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {limit} bytes"),
            )
        })
}

pub(crate) fn raw_request(headers: &HeaderMap, body: Vec<u8>, max_body_bytes: usize) -> RawRequest {
    let mut req = RawRequest::new("", "", body, Utc::now()).with_max_body_bytes(max_body_bytes);
    req.headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    req
}

fn observe(route: &'static str, started: Instant, result: &Result<Receipt, PipelineError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(PipelineError::Store(_)) => "unavailable",
        Err(_) => "rejected",
    };
    metrics::histogram!("tributary_request_duration_seconds", "route" => route, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(r) => {
            let labels = [("source", r.source.clone())];
            metrics::counter!("tributary_events_accepted_total", &labels)
                .increment(r.accepted as u64);
            metrics::counter!("tributary_events_duplicate_total", &labels)
                .increment(r.duplicates as u64);
            if !r.rejected.is_empty() {
                let labels = [
                    ("source", r.source.clone()),
                    ("reason", "invalid_event".to_owned()),
                ];
                metrics::counter!("tributary_events_rejected_total", &labels)
                    .increment(r.rejected.len() as u64);
            }
        }
        Err(e) => {
            let reason = match e {
                PipelineError::UnknownToken => "unknown_token",
                PipelineError::UnknownWriteKey { .. } => "invalid_write_key",
                PipelineError::Adapter(e) => e.code(),
                PipelineError::AllItemsRejected { .. } => "invalid_event",
                PipelineError::Store(_) => "store_unavailable",
            };
            metrics::counter!("tributary_requests_rejected_total", "route" => route, "reason" => reason)
                .increment(1);
        }
    }
}

/// What both ways in share: read the body within the limit, run the
/// pipeline, count, wake the workers, answer.
async fn ingest<F, Fut>(
    state: &AppState,
    route: &'static str,
    headers: &HeaderMap,
    body: Body,
    run: F,
    answer: fn(&Receipt) -> Response,
) -> Response
where
    F: FnOnce(RawRequest) -> Fut,
    Fut: Future<Output = Result<Receipt, PipelineError>>,
{
    let started = Instant::now();
    let body = match read_body(body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let result = run(raw_request(headers, body, state.max_body_bytes)).await;
    observe(route, started, &result);
    match result {
        Ok(receipt) => {
            if receipt.accepted > 0
                && let Some(w) = &state.workers
            {
                w.wake();
            }
            answer(&receipt)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /integrations/receive/{token}`.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pipeline = state.pipeline.clone();
    ingest(
        &state,
        "receive",
        &headers,
        body,
        |req| async move { pipeline.receive(&token, req).await },
        answer::receipt,
    )
    .await
}

/// `POST /v1/{call}`: track, identify, page, screen, group, alias, batch and
/// their one-letter aliases.
pub(crate) async fn tracking(
    State(state): State<AppState>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(call) = TrackingCall::from_path(&call) else {
        return ApiError::not_found(format!("`/v1/{call}` is not a Tracking API call"))
            .into_response();
    };
    let pipeline = state.pipeline.clone();
    ingest(
        &state,
        "tracking",
        &headers,
        body,
        |req| async move { pipeline.tracking(call, req).await },
        answer::tracking,
    )
    .await
}
