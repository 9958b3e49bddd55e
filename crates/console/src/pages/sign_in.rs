//! Signing in with the admin token, and out.

use std::time::Instant;

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, StatusCode, header::SET_COOKIE},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use serde::Deserialize;

use super::html;
use crate::{
    BASE_PATH, ConsoleError, ConsoleState, layout,
    security::{same_origin, session_clear_cookie, session_cookie, session_set_cookie},
};

fn form_page(error: Option<&str>) -> maud::Markup {
    layout::bare(
        "Sign in",
        html! {
            h1 { "Tributary console" }
            p class="muted" { "Sign in with the service's admin token (" code { "[admin] token" } ")." }
            @if let Some(error) = error {
                p class="notice error" role="alert" { (error) }
            }
            form method="post" action=(layout::link("/sign-in")) class="panel" {
                div class="field" {
                    label for="token" { "Admin token" }
                    input type="password" id="token" name="token" required
                        autocomplete="current-password" autofocus;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `GET /sign-in`: the form, or straight on when already signed in.
pub(crate) async fn form(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if session_cookie(&headers)
        .and_then(|id| state.sessions().touch(id, Instant::now()))
        .is_some()
    {
        return Redirect::to(&format!("{BASE_PATH}/sources")).into_response();
    }
    html(form_page(None)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct SignIn {
    #[serde(default)]
    token: String,
}

/// `POST /sign-in`: the admin token for a session cookie.
pub(crate) async fn submit(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    if !same_origin(&headers) {
        return ConsoleError::Forbidden("this request did not come from the console")
            .into_response();
    }
    let now = Instant::now();
    if !state.sign_in_limit().allows(now) {
        tracing::warn!("Console sign-in refused: too many failed attempts; try again in a minute.");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "60")],
            html(form_page(Some(
                "Too many failed sign-ins. Wait a minute, then try again.",
            ))),
        )
            .into_response();
    }
    let valid = state
        .admin_token()
        .is_some_and(|t| !t.is_empty() && t.matches(form.token.trim().as_bytes()));
    if !valid {
        state.sign_in_limit().failed(now);
        tracing::warn!("Console sign-in refused: wrong admin token.");
        return (
            StatusCode::UNAUTHORIZED,
            html(form_page(Some("That is not the admin token."))),
        )
            .into_response();
    }
    let id = state.sessions().create(now);
    tracing::info!("Console session started.");
    (
        [(SET_COOKIE, session_set_cookie(&id, state.secure_cookie()))],
        Redirect::to(&format!("{BASE_PATH}/sources")),
    )
        .into_response()
}

/// `POST /sign-out`: ends the session and deletes its cookie.
pub(crate) async fn sign_out(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        state.sessions().remove(id);
    }
    (
        [(SET_COOKIE, session_clear_cookie(state.secure_cookie()))],
        Redirect::to(&format!("{BASE_PATH}/sign-in")),
    )
        .into_response()
}
