//! The event log (filters, cursor paging, live tail), one event's detail,
//! and replays.

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use tributary_core::{
    event::EventId,
    headers::is_credential_name,
    plan::{ActionPlan, PlanOutcome, SkipReason},
};
use tributary_pipeline::LoggedReplay;
use tributary_store::{
    ActionRecord, AttemptRecord, EventFilter, EventRecord, EventStatus, FILTER_SCAN_ROWS,
};

use super::html;
use crate::{
    ConsoleError, ConsoleState, PAGE_ROWS, config_view,
    layout::{self, Nav},
    session::Session,
};

/// The event log's query: every field optional, an empty one means any.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct EventQuery {
    #[serde(default)]
    source: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    after: String,
}

pub(crate) fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A time from a `datetime-local` field (read as UTC) or RFC 3339.
pub(crate) fn parse_time(field: &str, value: &str) -> Result<Option<DateTime<Utc>>, ConsoleError> {
    let Some(value) = non_empty(value) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&value) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&value, format) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(ConsoleError::BadRequest(format!(
        "`{field}` is not a time (YYYY-MM-DDTHH:MM, UTC)"
    )))
}

pub(crate) fn parse_id(field: &str, value: &str) -> Result<Option<EventId>, ConsoleError> {
    non_empty(value)
        .map(|v| {
            v.parse()
                .map_err(|_| ConsoleError::BadRequest(format!("`{field}` is not an event id")))
        })
        .transpose()
}

impl EventQuery {
    fn filter(&self) -> Result<EventFilter, ConsoleError> {
        let status = non_empty(&self.status)
            .map(|s| {
                s.parse::<EventStatus>().map_err(|_| {
                    ConsoleError::BadRequest(
                        "`status` is accepted, duplicate or rejected".to_owned(),
                    )
                })
            })
            .transpose()?;
        Ok(EventFilter {
            source: non_empty(&self.source),
            environment: non_empty(&self.environment),
            event_type: non_empty(&self.event_type),
            user_id: non_empty(&self.user_id),
            status,
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
        })
    }

    /// The filters as a query string (no cursor), for links and the tail.
    fn query_string(&self) -> String {
        super::filter_query(&[
            ("source", &self.source),
            ("environment", &self.environment),
            ("event_type", &self.event_type),
            ("user_id", &self.user_id),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ])
    }
}

/// The link to one event's page.
pub(crate) fn event_link(id: EventId) -> String {
    layout::link(&format!("/events/{id}"))
}

fn dash(value: Option<&str>) -> Markup {
    match value {
        Some(v) => html! { (v) },
        None => html! { span class="muted" { "—" } },
    }
}

fn event_rows(records: &[EventRecord]) -> Markup {
    html! {
        @for r in records {
            tr data-id=(r.id) {
                td { (layout::time(r.received_at)) }
                td { (dash(r.source.as_deref())) " / " (dash(r.environment.as_deref())) }
                td class="event-type" { (dash(r.event_type.as_deref())) }
                td { (dash(r.user_id.as_deref())) }
                td { (layout::badge(r.status.as_str())) }
                td { a href=(event_link(r.id)) aria-label={ "Open event " (r.id) } { code { (r.id) } } }
            }
        }
    }
}

fn filter_form(q: &EventQuery, sources: &[config_view::SourceView]) -> Markup {
    html! {
        form method="get" action=(layout::link("/events")) class="panel filters" aria-label="Filter events" {
            (layout::select_field("source", "Source", sources.iter().map(|s| s.key.as_str()), &q.source))
            (layout::input_field("environment", "Environment", "text", &q.environment))
            (layout::input_field("event_type", "Event type", "text", &q.event_type))
            (layout::input_field("user_id", "User id", "text", &q.user_id))
            (layout::select_field("status", "Status", EventStatus::ALL.iter().map(|s| s.as_str()), &q.status))
            (layout::input_field("since", "Since (UTC)", "datetime-local", &q.since))
            (layout::input_field("until", "Until (UTC)", "datetime-local", &q.until))
            div class="field row" {
                button type="submit" { "Filter" }
                a class="button quiet" href=(layout::link("/events")) { "Clear" }
            }
        }
    }
}

/// `GET /events`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ConsoleError> {
    let filter = q.filter()?;
    let cursor = parse_id("cursor", &q.cursor)?;
    let page = state
        .queries()
        .list_events(&filter, cursor, PAGE_ROWS)
        .await?;
    let sources = config_view::sources(state.pipeline());
    let query = q.query_string();
    let tail = format!("{}?{query}", layout::link("/events/tail"));
    let first_page = cursor.is_none();
    let content = html! {
        h1 { "Events" " " @if first_page { span class="live" hidden { "· new events appear live" } } }
        (filter_form(&q, &sources))
        table aria-label="Event log" {
            thead { tr {
                th scope="col" { "Received" } th scope="col" { "Source / environment" }
                th scope="col" { "Event type" } th scope="col" { "User" }
                th scope="col" { "Status" } th scope="col" { "Event" }
            } }
            tbody id="events" data-tail=[first_page.then_some(&tail)] {
                @if page.items.is_empty() {
                    tr class="empty" { td colspan="6" class="muted" { "No event matches." } }
                }
                (event_rows(&page.items))
            }
        }
        @if page.items.len() < PAGE_ROWS && page.next_cursor.is_some() {
            p class="muted small" role="status" {
                "Each page looks at most " (FILTER_SCAN_ROWS) " entries for this filter; "
                "the older ones are behind the " strong { "Older" } " link."
            }
        }
        nav class="pager" aria-label="Pages" {
            @if !first_page {
                a href={ (layout::link("/events")) "?" (query) } { "Newest" }
            }
            @if let Some(next) = page.next_cursor {
                a href={ (layout::link("/events")) "?" (query) @if !query.is_empty() { "&" } "cursor=" (next) } rel="next" { "Older" }
            }
        }
    };
    Ok(html(layout::page("Events", Nav::Events, &session, content)).into_response())
}

/// `GET /events/tail?after=ID&...filters`: rows newer than `after`
/// (at most one page), newest first, for the live tail.
pub(crate) async fn tail(
    State(state): State<ConsoleState>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ConsoleError> {
    let mut filter = q.filter()?;
    let after = parse_id("after", &q.after)?;
    if let Some(after) = after {
        // An id's time part is when it was received: only later entries can be newer.
        let ms = i64::try_from(after.as_u128() >> 80).unwrap_or(0);
        let since = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        filter.since = Some(filter.since.map_or(since, |s| s.max(since)));
    }
    let page = state
        .queries()
        .list_events(&filter, None, PAGE_ROWS)
        .await?;
    let newer: Vec<EventRecord> = page
        .items
        .into_iter()
        .filter(|r| after.is_none_or(|a| r.id > a))
        .collect();
    Ok(html(event_rows(&newer)).into_response())
}

fn skip_text(plan: &ActionPlan) -> Option<String> {
    match &plan.outcome {
        PlanOutcome::Planned { .. } => None,
        PlanOutcome::Skipped {
            reason: SkipReason::Inactive,
        } => Some("mapping inactive".to_owned()),
        PlanOutcome::Skipped {
            reason: SkipReason::Invalid { error },
        } => Some(error.to_string()),
    }
}

pub(crate) fn plan_origin(plan: &ActionPlan) -> String {
    match plan.origin.mapping() {
        Some(m) if plan.origin.is_mapping() => format!("mapping {m}"),
        Some(m) => format!("inline entity of mapping {m}"),
        None => "identify switch".to_owned(),
    }
}

fn action_block(action: &ActionRecord, attempts: &[&AttemptRecord]) -> Markup {
    let plan_json = serde_json::to_value(&action.plan).unwrap_or_default();
    html! {
        section class="panel action" data-action=(action.id) data-status=(action.status.as_str()) {
            h3 {
                (action.position + 1) ". " (action.action.as_str()) " "
                (layout::badge(action.status.as_str()))
            }
            dl class="facts" {
                dt { "Action id" } dd { code { (action.id) } }
                dt { "From" } dd { (plan_origin(&action.plan)) }
                @if let Some(skip) = skip_text(&action.plan) {
                    dt { "Skipped" } dd class="skip-reason" { (skip) }
                }
                @for note in &action.plan.notes {
                    dt { "Note" } dd { (note.to_string()) }
                }
                @if let Some(error) = &action.last_error {
                    dt { "Last answer" } dd { code { (error) } }
                }
                @if let Some(at) = action.next_run_at {
                    dt { "Next run" } dd { (layout::time(at)) }
                }
            }
            @if attempts.is_empty() {
                p class="muted" { "No attempt yet." }
            } @else {
                table aria-label={ "Attempts of action " (action.position + 1) } {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Started" } th scope="col" { "Finished" }
                        th scope="col" { "Outcome" } th scope="col" { "The sink's answer" }
                    } }
                    tbody {
                        @for a in attempts {
                            tr {
                                td { (a.attempt) }
                                td { (layout::time(a.started_at)) }
                                td { (layout::time(a.finished_at)) }
                                td { (layout::badge(&a.outcome)) }
                                td { code { (a.summary) } }
                            }
                        }
                    }
                }
            }
            details {
                summary { "Plan and payload" }
                (layout::json_block(&plan_json, "Plan"))
            }
        }
    }
}

fn replay_forms(session: &Session, id: EventId) -> Markup {
    let action = layout::link(&format!("/events/{id}/replay"));
    html! {
        div class="row" {
            form method="post" action=(action) {
                (layout::csrf_field(session))
                button type="submit" id="replay" { "Replay" }
            }
            form method="post" action=(action) {
                (layout::csrf_field(session))
                input type="hidden" name="dry_run" value="true";
                button type="submit" id="dry-run" class="quiet" { "Dry run" }
            }
        }
    }
}

/// `GET /events/{id}`.
pub(crate) async fn detail(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ConsoleError::BadRequest("not an event id".to_owned()))?;
    let detail = state
        .queries()
        .event_detail(id)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("no event `{id}`")))?;
    let r = &detail.event;
    let normalized = r.event.as_ref().map(|e| {
        let mut value = serde_json::to_value(e).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            // Shown in their own sections below.
            map.remove("raw");
            map.remove("headers");
        }
        value
    });
    let headers: Vec<(&String, &String)> = r
        .event
        .as_ref()
        .map(|e| {
            e.headers
                .iter()
                .filter(|(name, _)| !is_credential_name(name))
                .collect()
        })
        .unwrap_or_default();
    let content = html! {
        p class="muted" { a href=(layout::link("/events")) { "Events" } " / " code { (r.id) } }
        h1 { "Event " span class="event-name" { (dash(r.event_type.as_deref())) } " " (layout::badge(r.status.as_str())) }
        div class="panel" {
            dl class="facts" {
                dt { "Id" } dd { code { (r.id) } }
                dt { "Received" } dd { (layout::time(r.received_at)) }
                dt { "Source" } dd { (dash(r.source.as_deref())) }
                dt { "Environment" } dd { (dash(r.environment.as_deref())) }
                dt { "User" } dd { (dash(r.user_id.as_deref())) }
                dt { "Dedup key" } dd { (dash(r.message_id.as_deref())) }
                @if let Some(original) = r.duplicate_of {
                    dt { "Repeats" } dd { a href=(event_link(original)) { code { (original) } } }
                }
                @if let Some(error) = &r.error {
                    dt { "Error" } dd { code { (error) } }
                }
                @if r.event.is_some() {
                    dt { "Configuration" } dd { (super::revisions::revision_link(r.provenance.config_revision)) }
                }
                @if let Some(verification) = &r.provenance.verification {
                    dt { "Verification" } dd { (layout::verification_badge(verification)) }
                }
                @if let Some(original) = r.provenance.replay_of {
                    dt { "Replay of" } dd { a href=(event_link(original)) class="replay-of" { code { (original) } } }
                }
            }
            @if r.event.is_some() {
                (replay_forms(&session, r.id))
            }
        }
        @if let Some(normalized) = &normalized {
            h2 { "Normalized event" }
            (layout::json_block(normalized, "Normalized event"))
        }
        h2 { "Raw body" }
        @if let Some(e) = &r.event {
            (layout::json_block(&e.raw, "Raw body"))
        } @else if let Some(excerpt) = &r.body_excerpt {
            pre class="json" tabindex="0" aria-label="Body excerpt" { code { (excerpt) } }
        } @else {
            p class="muted" { "No body kept." }
        }
        h2 { "Headers" }
        @if headers.is_empty() {
            p class="muted" { "No header kept." }
        } @else {
            table aria-label="Headers" class="headers" {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                tbody {
                    @for (name, value) in &headers {
                        tr { td { code { (name) } } td { code { (value) } } }
                    }
                }
            }
        }
        h2 { "Actions" }
        @if detail.actions.is_empty() {
            p class="muted" { "No action was planned." }
        }
        @for action in &detail.actions {
            @let attempts: Vec<&AttemptRecord> = detail.attempts.iter()
                .filter(|(a, _)| *a == action.id).map(|(_, at)| at).collect();
            (action_block(action, &attempts))
        }
    };
    Ok(html(layout::page("Event", Nav::Events, &session, content)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ReplayForm {
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /events/{id}/replay`: replays the event (then shows the new entry)
/// or, with `dry_run`, shows what the current mappings would plan.
pub(crate) async fn replay(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, ConsoleError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ConsoleError::BadRequest("not an event id".to_owned()))?;
    let dry_run = form.dry_run.as_deref().is_some_and(|v| v == "true");
    match state.pipeline().replay_logged(id, dry_run).await? {
        LoggedReplay::NotFound => Err(ConsoleError::NotFound(format!("no event `{id}`"))),
        LoggedReplay::NotReplayable => Err(ConsoleError::BadRequest(
            "a rejected request has no normalized event to replay".to_owned(),
        )),
        LoggedReplay::DryRun { plans } => {
            let content = html! {
                p class="muted" { a href=(event_link(id)) { "Back to event " code { (id) } } }
                h1 { "Dry run" }
                p { "What the current mappings and switches plan for this event. Nothing was stored or run." }
                @if plans.is_empty() {
                    p class="muted" { "Nothing would be planned." }
                }
                @for (i, plan) in plans.iter().enumerate() {
                    section class="panel plan" {
                        h3 { (i + 1) ". " (plan.action.as_str()) " "
                            (layout::badge(if skip_text(plan).is_some() { "skipped" } else { "planned" })) }
                        p { (plan_origin(plan)) @if let Some(skip) = skip_text(plan) { " · skipped: " (skip) } }
                        (layout::json_block(&serde_json::to_value(plan).unwrap_or_default(), "Plan"))
                    }
                }
            };
            Ok(html(layout::page("Dry run", Nav::Events, &session, content)).into_response())
        }
        LoggedReplay::Replayed { event_id, .. } => {
            state.replayed();
            tracing::info!(replay_of = %id, event_id = %event_id, "Event replayed from the console.");
            Ok(Redirect::to(&event_link(event_id)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_are_read_as_utc_from_a_form_field_or_rfc3339() {
        let t = parse_time("since", "2026-01-02T03:04").unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:00+00:00");
        let t = parse_time("since", "2026-01-02T03:04:05+02:00")
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T01:04:05+00:00");
        assert!(parse_time("since", " ").unwrap().is_none());
        let e = parse_time("until", "tomorrow").unwrap_err();
        assert!(e.to_string().contains("`until`"));
    }

    proptest! {
        #[test]
        fn any_query_value_gives_a_filter_or_an_error_naming_its_field(
            since in "\\PC{0,30}",
            status in "\\PC{0,12}",
            cursor in "\\PC{0,30}",
        ) {
            let q = EventQuery { since, status, ..EventQuery::default() };
            if let Err(e) = q.filter() {
                let text = e.to_string();
                prop_assert!(text.contains("`since`") || text.contains("`status`"), "{}", text);
            }
            if let Err(e) = parse_id("cursor", &cursor) {
                prop_assert!(e.to_string().contains("`cursor`"));
            }
        }
    }
}
