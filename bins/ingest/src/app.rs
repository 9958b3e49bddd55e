//! The router: every route and the cross-cutting layers in one place, split
//! from `main` so tests drive it with `oneshot`, no socket needed.

use std::borrow::Cow;

use axum::{
    Router,
    extract::Request,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use tributary_console::{BASE_PATH, ConsoleState};

use crate::{
    AppState,
    http::{admin, answer::ApiError, health, ingest, manage, mapi, providers, reverse_etl},
};

/// The ingest service's routes. The console exists, like the admin API, only
/// when an admin token is configured; its sessions live in the router made here.
pub fn app(state: AppState) -> Router {
    let admin = admin::router()
        .merge(manage::router())
        .merge(providers::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), admin::auth));
    let mapi =
        mapi::router().route_layer(middleware::from_fn_with_state(state.clone(), admin::auth));
    let console_on = state.admin_token.is_some() && state.pipeline.config().admin.console;
    let console = console_on.then(|| {
        let workers = state.workers.clone();
        tributary_console::router::<AppState>(
            ConsoleState::new(state.manager.clone()).after_replay(move || {
                if let Some(w) = &workers {
                    w.wake();
                }
            }),
        )
    });
    let router = match console {
        Some(console) => Router::new().nest(BASE_PATH, console),
        None => Router::new(),
    };
    router
        .route("/integrations/receive/{token}", post(ingest::receive))
        .route("/v1/{call}", post(ingest::tracking))
        // The reverse-ETL surface (docs/product-decisions.md, "Reverse ETL"):
        // more segments than `/v1/{call}`, so the two never collide.
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
        // Knock's Management API shape, for scripts written against it.
        .nest("/api/mapi/v1", mapi)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer((
            SetRequestIdLayer::x_request_id(MakeRequestUuid),
            PropagateRequestIdLayer::x_request_id(),
            // No whole-request timeout: a request may be answered only
            // after its commit, and a 408 then would invite a duplicate.
            // Reading the body is what is bounded (`[server]
            // body_read_timeout`), in the handlers.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                tracing::debug_span!(
                    "request",
                    method = %req.method(),
                    path = %redacted_path(req.uri().path()),
                    version = ?req.version(),
                )
            }),
            CatchPanicLayer::custom(panicked),
        ))
        .with_state(state)
}

/// The receive path's prefix; the segment after it is a secret.
const RECEIVE_PREFIX: &str = "/integrations/receive/";

/// A request path fit for logs: a receive URL's token is a credential, so it
/// is replaced by `{token}` (at every log level).
pub(crate) fn redacted_path(path: &str) -> Cow<'_, str> {
    match path.strip_prefix(RECEIVE_PREFIX) {
        Some(rest) => {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            Cow::Owned(format!("{RECEIVE_PREFIX}{{token}}{tail}"))
        }
        None => Cow::Borrowed(path),
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::redacted_path;

    #[test]
    fn receive_tokens_are_replaced_and_other_paths_kept() {
        assert_eq!(
            redacted_path("/integrations/receive/seg_0123456789abcdefghijkl"),
            "/integrations/receive/{token}"
        );
        assert_eq!(
            redacted_path("/integrations/receive/seg_0123456789abcdefghijkl/extra"),
            "/integrations/receive/{token}/extra"
        );
        assert_eq!(redacted_path("/v1/track"), "/v1/track");
        assert_eq!(redacted_path("/healthz"), "/healthz");
    }

    proptest! {
        #[test]
        fn no_token_survives_redaction(
            token in "[A-Za-z0-9_%.-]{22,64}",
            tail in "(/[a-z]{0,8}){0,2}",
        ) {
            let path = format!("/integrations/receive/{token}{tail}");
            let redacted = redacted_path(&path);
            prop_assert!(!redacted.contains(&token), "{}", redacted);
            prop_assert!(redacted.ends_with(&tail));
        }
    }
}
