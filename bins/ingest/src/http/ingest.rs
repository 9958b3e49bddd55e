//! The two ways in built so far: receive URLs and the Segment-compatible Tracking API.

use std::time::Instant;

use axum::{
    body::Body,
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use tributary_adapter::RawRequest;
use tributary_edge::{BodyError, Reservation};
use tributary_pipeline::{PipelineError, Receipt};
use tributary_segment::{TrackingCall, header_write_key};

use super::answer::{self, ApiError};
use crate::AppState;

/// Reads a body once its route is known: within the byte budget shared by
/// all requests and the body-read timeout. The reservation is kept until the
/// request is done with the bytes. `limit` counts bytes on the wire
/// (compressed or not; the adapters cap the decompressed size again).
pub(crate) async fn read_body(
    state: &AppState,
    route: &'static str,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(Vec<u8>, Reservation), BodyError> {
    let result = match state.body_budget.reserve(headers, limit) {
        Ok(reservation) => match reservation.read(body).await {
            Ok(bytes) => Ok((bytes, reservation)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        metrics::counter!("tributary_requests_rejected_total", "route" => route, "reason" => e.code())
            .increment(1);
    }
    result
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
        Err(PipelineError::Store(_) | PipelineError::ScriptBusy(_)) => "unavailable",
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
                PipelineError::Script { code, .. } => code,
                PipelineError::ScriptBusy(e) => e.code(),
                PipelineError::Store(_) => "store_unavailable",
            };
            metrics::counter!("tributary_requests_rejected_total", "route" => route, "reason" => reason)
                .increment(1);
        }
    }
}

/// What both ways in share: read the body (only for a request whose route
/// is known: an unknown one runs with an empty body, so it is refused and
/// logged as before without a byte of its body read), run the pipeline,
/// count, wake the workers, answer.
async fn ingest<F, Fut>(
    state: &AppState,
    route: &'static str,
    known: impl FnOnce(&RawRequest) -> bool,
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
    let mut req = raw_request(headers, Vec::new(), state.max_body_bytes);
    let known = known(&req);
    let _reservation = if known {
        match read_body(state, route, headers, body, state.max_body_bytes).await {
            Ok((bytes, reservation)) => {
                req.body = bytes;
                Some(reservation)
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        None
    };
    // From here the pipeline may commit, so no timeout cuts in: the answer
    // says what happened.
    let result = run(req).await;
    observe(route, started, &result);
    match result {
        Ok(receipt) => {
            state.wake_workers_for(receipt.queued);
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
    let known = pipeline.knows_token(&token);
    ingest(
        &state,
        "receive",
        move |_| known,
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
        // A key in the headers routes the call; an unknown one is refused
        // without reading the body. A key in the body needs the body.
        |req| header_write_key(req).is_none_or(|key| state.pipeline.knows_write_key(&key)),
        &headers,
        body,
        |req| async move { pipeline.tracking(call, req).await },
        answer::tracking,
    )
    .await
}
