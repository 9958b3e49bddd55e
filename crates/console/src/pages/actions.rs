//! The action log: newest first, by status, with each action's last answer
//! and a replay of its event.

use axum::{
    Extension,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;
use tributary_store::{ActionId, ActionStatus};

use super::{events::event_link, html};
use crate::{
    ConsoleError, ConsoleState, PAGE_ROWS,
    layout::{self, Nav},
    session::Session,
};

#[derive(Deserialize)]
pub(crate) struct ActionQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

const STATUSES: [&str; 5] = ["pending", "running", "succeeded", "failed", "skipped"];

/// `GET /actions`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ActionQuery>,
) -> Result<Response, ConsoleError> {
    let status = match q.status.trim() {
        "" => None,
        s => Some(s.parse::<ActionStatus>().map_err(|_| {
            ConsoleError::BadRequest(
                "`status` is pending, running, succeeded, failed or skipped".to_owned(),
            )
        })?),
    };
    let cursor = match q.cursor.trim() {
        "" => None,
        c => Some(
            c.parse::<ActionId>()
                .map_err(|_| ConsoleError::BadRequest("`cursor` is not an action id".to_owned()))?,
        ),
    };
    let page = state
        .pipeline()
        .store()
        .list_actions(status, cursor, PAGE_ROWS)
        .await?;
    let status_query = status.map_or(String::new(), |s| format!("status={s}&"));
    let content = html! {
        h1 { "Actions" }
        form method="get" action=(layout::link("/actions")) class="panel filters" aria-label="Filter actions" {
            (layout::select_field("status", "Status", STATUSES, &q.status))
            div class="field" { button type="submit" { "Filter" } }
        }
        table aria-label="Action log" {
            thead { tr {
                th scope="col" { "Created" } th scope="col" { "Action" } th scope="col" { "Mapping" }
                th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Last answer" }
                th scope="col" { "Event" }
            } }
            tbody {
                @if page.items.is_empty() {
                    tr { td colspan="7" class="muted" { "No action matches." } }
                }
                @for a in &page.items {
                    tr data-action=(a.id) {
                        td { (layout::time(a.created_at)) }
                        td { (a.action.as_str()) }
                        td { @match a.plan.origin.mapping() { Some(m) => code { (m) }, None => span class="muted" { "identify switch" } } }
                        td { (layout::badge(a.status.as_str())) }
                        td { (a.attempts) }
                        td { @if let Some(e) = &a.last_error { code { (e) } } }
                        td {
                            div class="row" {
                                a href=(event_link(a.event_id)) { "Open" }
                                form method="post" action=(layout::link(&format!("/events/{}/replay", a.event_id))) {
                                    (layout::csrf_field(&session))
                                    button type="submit" class="quiet" aria-label={ "Replay event " (a.event_id) } { "Replay event" }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if cursor.is_some() {
                a href={ (layout::link("/actions")) "?" (status_query) } { "Newest" }
            }
            @if let Some(next) = page.next_cursor {
                a href={ (layout::link("/actions")) "?" (status_query) "cursor=" (next) } rel="next" { "Older" }
            }
        }
    };
    Ok(html(layout::page("Actions", Nav::Actions, &session, content)).into_response())
}
