//! Tributary's operator console: HTML pages rendered on the server over the
//! management layer, the pipeline and the store, signed into with the admin
//! token. It shows the sources with their receive URLs and credentials
//! (revealed on request, each reveal recorded), each source environment's
//! event types and mappings, the event log with its details and replays,
//! the action log and the revision log; and it changes the configuration:
//! sources, switches, rotations, mappings (built by picking fields of a
//! received event), promotions. Every change goes through
//! [`tributary_manage::Manager`], so it is a recorded revision. Pages work
//! without JavaScript; one embedded script adds live updates, copy buttons,
//! the path picker and the live preview.
//!
//! A service crate that knows HTTP: `tributary-ingest` mounts [`router`]
//! under [`BASE_PATH`] when an admin token is configured.
//!
//! ```no_run
//! # async fn demo(pipeline: std::sync::Arc<tributary_pipeline::Pipeline>) {
//! use std::sync::Arc;
//! use tributary_console::{BASE_PATH, ConsoleState, router};
//! use tributary_manage::Manager;
//!
//! let manager = Arc::new(Manager::new(pipeline, Vec::new()));
//! let app: axum::Router = axum::Router::new()
//!     .nest(BASE_PATH, router(ConsoleState::new(manager)));
//! # let _ = app;
//! # }
//! ```
//!
//! Security model: a session cookie (HttpOnly, SameSite=Strict, Path=/console)
//! for a random id held in this process's memory; a per-session CSRF token on
//! every POST, plus `Origin`/`Sec-Fetch-Site` checks; a strict
//! Content-Security-Policy with no inline script; every untrusted string
//! escaped by the template engine. See `docs/console.md`.

mod assets;
mod config_view;
mod error;
mod forms;
mod layout;
mod pages;
mod security;
mod session;

use std::sync::{Arc, OnceLock};

use axum::{
    Router, middleware,
    response::Redirect,
    routing::{get, post},
};
use tributary_core::Secret;
use tributary_manage::Manager;
use tributary_pipeline::Pipeline;
use tributary_store::AdminQueries;

pub use error::ConsoleError;
pub use session::{MAX_SESSIONS, SESSION_IDLE, SIGN_IN_FAILURES_PER_WINDOW, SIGN_IN_WINDOW};

use crate::session::{Sessions, SignInLimit};

/// Where the service mounts the console; every link and the cookie's path use it.
pub const BASE_PATH: &str = "/console";

/// Rows on one page of a list.
pub const PAGE_ROWS: usize = 50;

/// What every console handler shares. Cheap to clone.
#[derive(Clone)]
pub struct ConsoleState {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Arc<Manager>,
    actor: String,
    admin_token: Option<Secret>,
    secure_cookie: bool,
    sessions: Sessions,
    sign_in_limit: SignInLimit,
    after_replay: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl ConsoleState {
    /// State over the management layer (and its pipeline); the admin token
    /// and the cookie's `Secure` flag come from the pipeline's configuration.
    pub fn new(manager: Arc<Manager>) -> Self {
        let pipeline = manager.pipeline();
        let admin_token = config_view::admin_token(pipeline);
        Self {
            inner: Arc::new(Inner {
                actor: actor(admin_token.as_ref()),
                secure_cookie: config_view::served_over_https(pipeline),
                admin_token,
                manager,
                sessions: Sessions::new(SESSION_IDLE, MAX_SESSIONS),
                sign_in_limit: SignInLimit::new(SIGN_IN_FAILURES_PER_WINDOW, SIGN_IN_WINDOW),
                after_replay: OnceLock::new(),
            }),
        }
    }

    /// Runs `hook` after each replay is appended (the service wakes its
    /// action workers with it). A second hook is ignored.
    pub fn after_replay(self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        let _ = self.inner.after_replay.set(Box::new(hook));
        self
    }

    pub(crate) fn pipeline(&self) -> &Pipeline {
        self.inner.manager.pipeline()
    }

    /// The store's read side: every page reads the logs through this, and
    /// only this; changes go through the manager.
    pub(crate) fn queries(&self) -> &dyn AdminQueries {
        self.pipeline().store().as_ref()
    }

    pub(crate) fn manager(&self) -> &Manager {
        &self.inner.manager
    }

    /// Who a console change is recorded as: `console:` and the admin
    /// credential's fingerprint (never the token).
    pub(crate) fn actor(&self) -> &str {
        &self.inner.actor
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub(crate) fn sign_in_limit(&self) -> &SignInLimit {
        &self.inner.sign_in_limit
    }

    pub(crate) fn admin_token(&self) -> Option<&Secret> {
        self.inner.admin_token.as_ref()
    }

    pub(crate) fn secure_cookie(&self) -> bool {
        self.inner.secure_cookie
    }

    pub(crate) fn replayed(&self) {
        if let Some(hook) = self.inner.after_replay.get() {
            hook();
        }
    }
}

fn actor(admin_token: Option<&Secret>) -> String {
    admin_token.map_or_else(
        || "console".to_owned(),
        |t| format!("console:{}", tributary_manage::fingerprint(t.expose())),
    )
}

/// The console's routes, relative to [`BASE_PATH`], ready to nest in a
/// router of any state.
pub fn router<S: Clone + Send + Sync + 'static>(state: ConsoleState) -> Router<S> {
    let signed_in = Router::new()
        .route(
            "/",
            get(|| async { Redirect::to(&format!("{BASE_PATH}/sources")) }),
        )
        .route("/sign-out", post(pages::sign_in::sign_out))
        .route(
            "/sources",
            get(pages::sources::list).post(pages::sources::create),
        )
        .route("/sources/new", get(pages::sources::new_form))
        .route(
            "/sources/{source}/delete",
            get(pages::sources::delete_form).post(pages::sources::delete),
        )
        .route(
            "/sources/{source}/promote",
            get(pages::revisions::promote_form).post(pages::revisions::promote),
        )
        .route(
            "/sources/{source}/environments/{environment}",
            get(pages::environment::show),
        )
        .route(
            "/sources/{source}/environments/{environment}/identify",
            post(pages::sources::identify),
        )
        .route(
            "/sources/{source}/environments/{environment}/rehearse",
            post(pages::rehearse::rehearse),
        )
        .route(
            "/sources/{source}/environments/{environment}/rotate",
            post(pages::sources::rotate),
        )
        .route(
            "/sources/{source}/environments/{environment}/new-mapping",
            get(pages::mapping::new_form),
        )
        .route(
            "/sources/{source}/environments/{environment}/preview",
            get(pages::mapping::preview_fragment),
        )
        .route(
            "/sources/{source}/environments/{environment}/mappings",
            post(pages::mapping::create),
        )
        .route(
            "/sources/{source}/environments/{environment}/mappings/{mapping}/edit",
            get(pages::mapping::edit_form).post(pages::mapping::update),
        )
        .route(
            "/sources/{source}/environments/{environment}/mappings/{mapping}/delete",
            post(pages::mapping::delete),
        )
        .route(
            "/sources/{source}/environments/{environment}/event-types",
            get(pages::environment::event_types),
        )
        .route(
            "/sources/{source}/environments/{environment}/reveal",
            post(pages::sources::reveal),
        )
        .route(
            "/sources/{source}/environments/{environment}/mappings/{mapping}",
            post(pages::environment::toggle),
        )
        .route("/events", get(pages::events::list))
        .route("/events/tail", get(pages::events::tail))
        .route("/events/{id}", get(pages::events::detail))
        .route("/events/{id}/replay", post(pages::events::replay))
        .route("/actions", get(pages::actions::list))
        .route("/revisions", get(pages::revisions::list))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            security::require_session,
        ));
    Router::new()
        .merge(signed_in)
        .route(
            "/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::submit),
        )
        .route("/assets/{name}", get(assets::serve))
        .fallback(|| async { ConsoleError::NotFound("no such page".to_owned()) })
        .layer(middleware::map_response(security::headers))
        .with_state(state)
}
