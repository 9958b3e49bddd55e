//! The HTTP surface: `POST /knock/webhooks/{environment}`, `/healthz`,
//! `/readyz`, `/metrics`. Only this module knows about status codes.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use metrics::counter;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tower_http::trace::TraceLayer;
use tracing::{debug, error, warn};
use tributary_edge::{BodyBudget, BodyError};
use tributary_outbound::{
    DurableQueue, FirstCopy, OutboundError, Redelivery, Submitted, Transform, TransformOutcome,
    parse_envelope,
};

use crate::{
    config::{EnvironmentSettings, ForwarderConfig},
    signature::{self, SIGNATURE_HEADER},
};

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    environments: BTreeMap<String, EnvironmentSettings>,
    transform: Transform,
    queue: DurableQueue,
    max_event_bytes: usize,
    max_body_bytes: usize,
    body_budget: BodyBudget,
    tolerance_ms: i64,
    metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// State from a validated config and an open queue.
    pub fn new(
        config: &ForwarderConfig,
        queue: DurableQueue,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                environments: config.environments.clone(),
                transform: Transform::new(config.transform.clone())?,
                queue,
                max_event_bytes: config.segment.max_event_bytes,
                max_body_bytes: config.server.max_body_bytes,
                body_budget: BodyBudget::new(
                    config.server.body_budget_bytes,
                    config.server.body_read_timeout,
                ),
                tolerance_ms: i64::try_from(config.server.signature_tolerance_secs)
                    .unwrap_or(i64::MAX / 1_000)
                    .saturating_mul(1_000),
                metrics,
            }),
        })
    }
}

/// The router; tests drive it with `oneshot`, without a socket.
///
/// There is no whole-request timeout: a webhook is answered once its event
/// is queued, and a 408 after that would make the sender deliver it again.
/// Reading the body is bounded instead (`[server] body_read_timeout`).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/knock/webhooks/{environment}", post(receive_webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The `environment` label of a request to an environment that is not
/// configured: not a valid environment name, so it never mixes with one,
/// and one value however many names are invented.
const UNKNOWN_ENVIRONMENT: &str = "(unknown)";

/// A JSON error answer: `{"error": {"code", "message", "field"?}}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    fn body(e: &BodyError, max_body_bytes: usize) -> Self {
        match e {
            BodyError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over {max_body_bytes} bytes"),
            ),
            e => Self {
                retry_after: e.retry_after_secs(),
                ..Self::new(e.status(), e.code(), e.to_string())
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = Value::String(field);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn from_outbound(e: OutboundError) -> ApiError {
    match e {
        OutboundError::MalformedJson(detail) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {detail}"),
        ),
        OutboundError::InvalidField { field, problem }
        | OutboundError::InvalidMessage { field, problem } => ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: problem,
            field: Some(field),
            retry_after: None,
        },
        other => {
            error!(error = %other, "Storing a webhook failed.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the queue is unavailable; retry later",
            )
        }
    }
}

async fn receive_webhook(
    State(state): State<AppState>,
    Path(environment): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let inner = &state.inner;
    // Before anything is read: an unknown environment costs neither the
    // body's bytes nor a metric series of its own.
    let Some(env) = inner.environments.get(&environment) else {
        counter!("tributary_forwarder_webhooks_total", "environment" => UNKNOWN_ENVIRONMENT, "outcome" => "unknown_environment")
            .increment(1);
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_environment",
            format!("no environment named {environment:?} is configured"),
        ));
    };
    let outcome = |o: &'static str| {
        counter!("tributary_forwarder_webhooks_total", "environment" => environment.clone(), "outcome" => o)
            .increment(1);
    };
    let reservation = inner
        .body_budget
        .reserve(&headers, inner.max_body_bytes)
        .map_err(|e| {
            outcome("rejected");
            ApiError::body(&e, inner.max_body_bytes)
        })?;
    let body = reservation.read(body).await.map_err(|e| {
        outcome("rejected");
        ApiError::body(&e, inner.max_body_bytes)
    })?;
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Err(e) = signature::verify(
        &env.signing_secret,
        header,
        &body,
        now_ms,
        inner.tolerance_ms,
    ) {
        outcome("unauthorized");
        warn!(environment = %environment, reason = e.code(), "Webhook signature refused.");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            e.code(),
            e.message(),
        ));
    }
    let not_forwarded =
        |reason: &str| Json(json!({"accepted": true, "forwarded": false, "reason": reason}));
    if env.write_key.is_none() {
        // Still checked for shape, so a sender learns about bad bodies.
        parse_envelope(&body).map_err(|e| {
            outcome("invalid");
            from_outbound(e)
        })?;
        outcome("no_write_key");
        return Ok(not_forwarded("no_write_key"));
    }
    let message = match inner
        .transform
        .apply_to_body(&body, &env.display_name)
        .map_err(|e| {
            outcome("invalid");
            from_outbound(e)
        })? {
        TransformOutcome::Forward(m) => m,
        TransformOutcome::Skip(reason) => {
            outcome("skipped");
            debug!(environment = %environment, reason = reason.code(), "Webhook not forwarded.");
            return Ok(not_forwarded(reason.code()));
        }
    };
    let encoded = message.encode().map_err(from_outbound)?;
    let message_id = encoded.message_id.clone();
    let submitted = inner
        .queue
        .submit(&environment, vec![encoded], inner.max_event_bytes)
        .await
        .map_err(from_outbound)?;
    match submitted.first() {
        Some(Submitted::Queued(_)) => {
            outcome("queued");
            counter!("tributary_forwarder_queued_events_total", "environment" => environment.clone())
                .increment(1);
            Ok(Json(
                json!({"accepted": true, "forwarded": true, "messageId": message_id}),
            ))
        }
        Some(Submitted::DeadLettered(id)) => {
            outcome("dead_lettered");
            counter!("tributary_forwarder_dead_lettered_events_total", "environment" => environment.clone(), "reason" => "too_large")
                .increment(1);
            error!(environment = %environment, dead_letter = id, "Event over the size limit kept as a dead letter.");
            Ok(Json(json!({"accepted": true, "forwarded": false,
                "reason": "too_large", "deadLetterId": id, "messageId": message_id})))
        }
        Some(Submitted::Duplicate(earlier)) => {
            outcome("duplicate");
            counter!("tributary_forwarder_duplicate_events_total", "environment" => environment.clone(), "first_copy" => earlier.first_copy.code())
                .increment(1);
            debug!(environment = %environment, message_id = %message_id, first_copy = earlier.first_copy.code(), "Repeated webhook not queued again.");
            Ok(Json(duplicate_answer(&message_id, earlier)))
        }
        None => Err(from_outbound(OutboundError::Queue(
            tributary_outbound::QueueFailure {
                operation: "submit",
                detail: "no answer for the submitted event".into(),
            },
        ))),
    }
}

/// The 200 for a repeat: nothing was queued, and why.
fn duplicate_answer(message_id: &str, earlier: &Redelivery) -> Value {
    let at = earlier
        .first_accepted_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let whereabouts = match earlier.first_copy {
        FirstCopy::Queued => "is still queued; it is sent to Segment once",
        FirstCopy::Delivered => "was already delivered to Segment",
        FirstCopy::DeadLettered => "is in the dead letters; redrive it once the cause is fixed",
    };
    json!({
        "accepted": true,
        "forwarded": false,
        "reason": "duplicate",
        "messageId": message_id,
        "firstCopy": earlier.first_copy.code(),
        "firstAcceptedAt": at,
        "detail": format!("the same event (messageId {message_id}) was accepted at {at} and {whereabouts}; this copy was not queued"),
    })
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.inner.queue.stats().await {
        Ok(stats) => Json(json!({
            "ready": true,
            "pending": stats.pending.values().sum::<u64>(),
            "deadLetters": stats.dead_letters,
        }))
        .into_response(),
        Err(e) => {
            error!(error = %e, "Readiness check failed.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the queue is unavailable",
            )
            .into_response()
        }
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    match &state.inner.metrics {
        Some(handle) => {
            if let Ok(stats) = state.inner.queue.stats().await {
                for (env, n) in &stats.pending {
                    metrics::gauge!("tributary_forwarder_pending_events", "environment" => env.clone())
                        .set(*n as f64);
                }
                metrics::gauge!("tributary_forwarder_dead_letters").set(stats.dead_letters as f64);
            }
            handle.render().into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
