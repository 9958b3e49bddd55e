//! `/healthz` (the process answers), `/readyz` (the store answers), `/metrics`.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::AppState;

pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Workers that have not gone round their claim loop for this long are stuck.
const WORKERS_STALLED_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(workers) = &state.workers
        && !workers.is_alive(WORKERS_STALLED_AFTER)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "workers": "stalled"})),
        )
            .into_response();
    }
    match state.pipeline.store().ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "store": e.to_string()})),
        )
            .into_response(),
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
