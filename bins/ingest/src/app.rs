//! The router: every route and the cross-cutting layers in one place, split
//! from `main` so tests drive it with `oneshot`, no socket needed.

use std::time::Duration;

use axum::{
    Router,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    AppState,
    http::{admin, answer::ApiError, health, ingest, reverse_etl},
};

/// How long one request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The ingest service's routes.
pub fn app(state: AppState) -> Router {
    let admin =
        admin::router().route_layer(middleware::from_fn_with_state(state.clone(), admin::auth));
    Router::new()
        .route("/integrations/receive/{token}", post(ingest::receive))
        .route("/v1/{call}", post(ingest::tracking))
        // The reverse-ETL surface (CONTRACT 2.3): more segments than
        // `/v1/{call}`, so the two never collide.
        .route("/v1/users/bulk/identify", post(reverse_etl::resource))
        .route(
            "/v1/users/{id}",
            put(reverse_etl::resource).delete(reverse_etl::resource),
        )
        .route(
            "/v1/objects/{collection}/{id}",
            put(reverse_etl::resource).delete(reverse_etl::resource),
        )
        .route(
            "/v1/objects/{collection}/{id}/subscriptions",
            post(reverse_etl::resource).delete(reverse_etl::resource),
        )
        .route(
            "/v1/tenants/{id}",
            put(reverse_etl::resource).delete(reverse_etl::resource),
        )
        .route(
            "/v1/audiences/{key}/members",
            post(reverse_etl::resource).delete(reverse_etl::resource),
        )
        .route("/v1/workflows/{key}/trigger", post(reverse_etl::resource))
        .route("/v1/workflows/{key}/cancel", post(reverse_etl::resource))
        .route(
            "/v1/integrations/hightouch/embedded-destination",
            post(reverse_etl::hightouch),
        )
        .route(
            "/v1/integrations/census/custom-destination",
            post(reverse_etl::census),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", admin)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer((
            SetRequestIdLayer::x_request_id(MakeRequestUuid),
            PropagateRequestIdLayer::x_request_id(),
            TraceLayer::new_for_http(),
            TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT),
            CatchPanicLayer::custom(panicked),
        ))
        .with_state(state)
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("A request handler panicked.");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; nothing was accepted",
    )
    .into_response()
}
