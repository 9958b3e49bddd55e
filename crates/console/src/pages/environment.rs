//! A source environment's page: the event types seen (live), each with a
//! link to map it, and its mappings with their switches, edit and delete.

use axum::{
    Extension, Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tributary_store::KnownEventType;

use super::{html, sources::environment_path};
use crate::{
    ConsoleError, ConsoleState, config_view,
    layout::{self, Nav},
    session::Session,
};

/// The most event types listed.
const MAX_EVENT_TYPES: usize = 200;

fn event_type_rows(base: &str, can_map: bool, types: &[KnownEventType]) -> Markup {
    html! {
        @if types.is_empty() {
            tr class="empty" { td colspan="3" class="muted" { "No event received yet." } }
        }
        @for t in types.iter().take(MAX_EVENT_TYPES) {
            tr {
                td { code { (t.event_type) } }
                td { (layout::time(t.last_seen_at)) }
                td {
                    @if can_map {
                        a class="map-event" href={ (base) "/new-mapping?event=" (super::sources::encode(&t.event_type)) }
                            aria-label={ "Create a mapping for " (t.event_type) } { "Create mapping" }
                    }
                }
            }
        }
    }
}

/// The event types seen in a source environment, newest first, at most
/// [`MAX_EVENT_TYPES`].
pub(crate) async fn event_types_newest_first(
    state: &ConsoleState,
    source: &str,
    environment: &str,
) -> Result<Vec<KnownEventType>, ConsoleError> {
    let mut types = state
        .queries()
        .known_event_types(source, environment)
        .await?;
    types.sort_by_key(|t| std::cmp::Reverse(t.last_seen_at));
    types.truncate(MAX_EVENT_TYPES);
    Ok(types)
}

pub(crate) fn not_found(source: &str, environment: &str) -> ConsoleError {
    ConsoleError::NotFound(format!(
        "no source `{source}` with an environment `{environment}`"
    ))
}

/// `GET /sources/{source}/environments/{environment}`.
pub(crate) async fn show(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let (view, env) = config_view::environment(state.pipeline(), &source, &environment)
        .ok_or_else(|| not_found(&source, &environment))?;
    let types = event_types_newest_first(&state, &source, &environment).await?;
    let base = environment_path(&source, &environment);
    let events_link = format!(
        "{}?source={}&environment={}",
        layout::link("/events"),
        super::sources::encode(&source),
        super::sources::encode(&environment)
    );
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / " (view.name) }
        h1 { code { (view.key) } " in " code { (env.slug) } }
        div class="panel" {
            dl class="facts" {
                dt { "Kind" } dd { (view.kind.as_str()) }
                dt { "Receive URL" } dd { (super::sources::receive_url(&session, &view.key, &env, "receive-url")) }
                dt { "Identify" } dd { (super::sources::identify_switch(&session, &view, &env, true)) }
                dt { "Managed by" } dd {
                    @if view.managed_by_file { (super::sources::file_marker()) } @else { "the management API" }
                }
                dt { "Events" } dd { a href=(events_link) { "Open the event log for this environment" } }
            }
        }
        h2 id="types-heading" { "Event types seen" " " span class="live" hidden { "· updates live" } }
        table aria-labelledby="types-heading" {
            thead { tr { th scope="col" { "Event type" } th scope="col" { "Last seen" } th scope="col" { "Map" } } }
            tbody id="event-types" data-poll={ (base) "/event-types" } aria-live="polite" {
                (event_type_rows(&base, !view.managed_by_file, &types))
            }
        }
        div class="row spread" {
            h2 id="mappings-heading" { "Mappings" }
            @if !view.managed_by_file {
                a class="button quiet" href={ (base) "/new-mapping" } { "New mapping" }
            }
        }
        table aria-labelledby="mappings-heading" {
            thead { tr {
                th scope="col" { "Mapping" } th scope="col" { "Event" } th scope="col" { "Action" }
                th scope="col" { "Status" } th scope="col" { "Change" }
            } }
            tbody {
                @if env.mappings.is_empty() {
                    tr { td colspan="5" class="muted" { "No mapping." } }
                }
                @for m in &env.mappings {
                    @let path = format!("{base}/mappings/{}", super::sources::encode(&m.id));
                    tr data-mapping=(m.id) {
                        td { code { (m.id) } }
                        td { code { (m.event) } }
                        td { (m.action) }
                        td { (layout::badge(if m.active { "active" } else { "inactive" })) }
                        td { div class="row" {
                            form method="post" action=(path) {
                                (layout::csrf_field(&session))
                                input type="hidden" name="active" value=(if m.active { "false" } else { "true" });
                                button type="submit" class=(if m.active { "quiet toggle" } else { "toggle" })
                                    aria-label={ (if m.active { "Switch off " } else { "Switch on " }) (m.id) } {
                                    (if m.active { "Switch off" } else { "Switch on" })
                                }
                            }
                            @if !view.managed_by_file {
                                a class="button quiet" href={ (path) "/edit" } aria-label={ "Edit " (m.id) } { "Edit" }
                                form method="post" action={ (path) "/delete" } {
                                    (layout::csrf_field(&session))
                                    button type="submit" class="quiet danger" aria-label={ "Delete " (m.id) } { "Delete" }
                                }
                            }
                        } }
                    }
                }
            }
        }
        (super::rehearse::form(&session, &view.key, &env.slug, &super::rehearse::RehearseForm::default()))
    };
    Ok(html(layout::page(
        &format!("{source} / {environment}"),
        Nav::Sources,
        &session,
        content,
    ))
    .into_response())
}

/// `GET /sources/{source}/environments/{environment}/event-types`: the
/// table rows alone, for the page's live update.
pub(crate) async fn event_types(
    State(state): State<ConsoleState>,
    Path((source, environment)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let types = event_types_newest_first(&state, &source, &environment).await?;
    let can_map = config_view::environment(state.pipeline(), &source, &environment)
        .is_some_and(|(view, _)| !view.managed_by_file);
    let base = environment_path(&source, &environment);
    Ok(html(event_type_rows(&base, can_map, &types)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Toggle {
    active: bool,
}

/// `POST /sources/{source}/environments/{environment}/mappings/{mapping}`:
/// switches a mapping on or off through the management layer (recorded as
/// a revision), then back to the page.
pub(crate) async fn toggle(
    State(state): State<ConsoleState>,
    Path((source, environment, mapping)): Path<(String, String, String)>,
    Form(form): Form<Toggle>,
) -> Result<Response, ConsoleError> {
    state
        .manager()
        .update_mapping(
            state.actor(),
            &source,
            &environment,
            &mapping,
            None,
            json!({"active": form.active}),
        )
        .await?;
    tracing::info!(
        source,
        environment,
        mapping,
        active = form.active,
        "Mapping toggled from the console."
    );
    Ok(Redirect::to(&environment_path(&source, &environment)).into_response())
}
