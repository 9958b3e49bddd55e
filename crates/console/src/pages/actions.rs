//! The action log: newest first, filtered by status, source, environment,
//! action, user, event and time, with each action's last answer and a
//! replay of its event.

use axum::{
    Extension,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;
use tributary_core::ActionType;
use tributary_store::{ActionFilter, ActionId, ActionStatus, FILTER_SCAN_ROWS};

use super::{
    events::{event_link, non_empty, parse_id, parse_time},
    html,
};
use crate::{
    ConsoleError, ConsoleState, PAGE_ROWS, config_view,
    layout::{self, Nav},
    session::Session,
};

/// The action log's query: every field optional, an empty one means any.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ActionQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

impl ActionQuery {
    fn filter(&self) -> Result<ActionFilter, ConsoleError> {
        let status = non_empty(&self.status)
            .map(|s| {
                s.parse::<ActionStatus>().map_err(|_| {
                    ConsoleError::BadRequest(
                        "`status` is pending, running, succeeded, failed or skipped".to_owned(),
                    )
                })
            })
            .transpose()?;
        let action = non_empty(&self.action)
            .map(|a| {
                a.parse::<ActionType>().map_err(|_| {
                    ConsoleError::BadRequest("`action` is not an action type".to_owned())
                })
            })
            .transpose()?;
        Ok(ActionFilter {
            status,
            source: non_empty(&self.source),
            environment: non_empty(&self.environment),
            action,
            event_id: parse_id("event_id", &self.event_id)?,
            user_id: non_empty(&self.user_id),
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
        })
    }

    /// The filters as a query string (no cursor), for the pager's links.
    fn query_string(&self) -> String {
        super::filter_query(&[
            ("status", &self.status),
            ("source", &self.source),
            ("environment", &self.environment),
            ("action", &self.action),
            ("user_id", &self.user_id),
            ("event_id", &self.event_id),
            ("since", &self.since),
            ("until", &self.until),
        ])
    }
}

/// `GET /actions`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ActionQuery>,
) -> Result<Response, ConsoleError> {
    let filter = q.filter()?;
    let cursor = match q.cursor.trim() {
        "" => None,
        c => Some(
            c.parse::<ActionId>()
                .map_err(|_| ConsoleError::BadRequest("`cursor` is not an action id".to_owned()))?,
        ),
    };
    let sources = config_view::sources(state.pipeline());
    let page = state
        .queries()
        .find_actions(&filter, cursor, PAGE_ROWS)
        .await?;
    let status_query = q.query_string();
    let content = html! {
        h1 { "Actions" }
        form method="get" action=(layout::link("/actions")) class="panel filters" aria-label="Filter actions" {
            (layout::select_field("status", "Status", ActionStatus::ALL.iter().map(|s| s.as_str()), &q.status))
            (layout::select_field("source", "Source", sources.iter().map(|s| s.key.as_str()), &q.source))
            (layout::input_field("environment", "Environment", "text", &q.environment))
            (layout::select_field("action", "Action", ActionType::ALL.iter().map(|a| a.as_str()), &q.action))
            (layout::input_field("user_id", "User id", "text", &q.user_id))
            (layout::input_field("event_id", "Event id", "text", &q.event_id))
            (layout::input_field("since", "Since (UTC)", "datetime-local", &q.since))
            (layout::input_field("until", "Until (UTC)", "datetime-local", &q.until))
            div class="field row" {
                button type="submit" { "Filter" }
                a class="button quiet" href=(layout::link("/actions")) { "Clear" }
            }
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
        @if page.items.len() < PAGE_ROWS && page.next_cursor.is_some() {
            p class="muted small" role="status" {
                "Each page looks at most " (FILTER_SCAN_ROWS) " actions for this filter; "
                "the older ones are behind the " strong { "Older" } " link."
            }
        }
        nav class="pager" aria-label="Pages" {
            @if cursor.is_some() {
                a href={ (layout::link("/actions")) "?" (status_query) } { "Newest" }
            }
            @if let Some(next) = page.next_cursor {
                a href={ (layout::link("/actions")) "?" (status_query) @if !status_query.is_empty() { "&" } "cursor=" (next) } rel="next" { "Older" }
            }
        }
    };
    Ok(html(layout::page("Actions", Nav::Actions, &session, content)).into_response())
}
