//! A source environment's page: the event types seen (live) and its mappings
//! with their switches.

use axum::{
    Extension, Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use serde::Deserialize;
use tributary_store::KnownEventType;

use super::{html, sources::environment_path};
use crate::{
    ConsoleError, ConsoleState, config_view,
    layout::{self, Nav},
    session::Session,
};

/// The most event types listed.
const MAX_EVENT_TYPES: usize = 200;

fn event_type_rows(types: &[KnownEventType]) -> Markup {
    html! {
        @if types.is_empty() {
            tr class="empty" { td colspan="2" class="muted" { "No event received yet." } }
        }
        @for t in types.iter().take(MAX_EVENT_TYPES) {
            tr {
                td { code { (t.event_type) } }
                td { (layout::time(t.last_seen_at)) }
            }
        }
    }
}

async fn event_types_newest_first(
    state: &ConsoleState,
    source: &str,
    environment: &str,
) -> Result<Vec<KnownEventType>, ConsoleError> {
    let mut types = state
        .pipeline()
        .store()
        .known_event_types(source, environment)
        .await?;
    types.sort_by_key(|t| std::cmp::Reverse(t.last_seen_at));
    Ok(types)
}

fn not_found(source: &str, environment: &str) -> ConsoleError {
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
                dt { "Kind" } dd { (view.kind) }
                dt { "Receive URL" } dd {
                    div class="row" {
                        span class="url receive-url" id="receive-url" data-value=(env.receive_url) { (env.receive_url) }
                        (layout::copy_button("receive-url", "receive URL"))
                    }
                }
                dt { "Identify" } dd { (layout::badge(if env.identify { "on" } else { "off" })) " " span class="muted" { "(read-only here)" } }
                dt { "Events" } dd { a href=(events_link) { "Open the event log for this environment" } }
            }
        }
        h2 id="types-heading" { "Event types seen" " " span class="live" hidden { "· updates live" } }
        table aria-labelledby="types-heading" {
            thead { tr { th scope="col" { "Event type" } th scope="col" { "Last seen" } } }
            tbody id="event-types" data-poll={ (base) "/event-types" } aria-live="polite" {
                (event_type_rows(&types))
            }
        }
        h2 id="mappings-heading" { "Mappings" }
        table aria-labelledby="mappings-heading" {
            thead { tr {
                th scope="col" { "Mapping" } th scope="col" { "Event" } th scope="col" { "Action" }
                th scope="col" { "Status" } th scope="col" { "Switch" }
            } }
            tbody {
                @if env.mappings.is_empty() {
                    tr { td colspan="5" class="muted" { "No mapping." } }
                }
                @for m in &env.mappings {
                    tr data-mapping=(m.id) {
                        td { code { (m.id) } }
                        td { code { (m.event) } }
                        td { (m.action) }
                        td { (layout::badge(if m.active { "active" } else { "inactive" })) }
                        td {
                            form method="post" action={ (base) "/mappings/" (super::sources::encode(&m.id)) } {
                                (layout::csrf_field(&session))
                                input type="hidden" name="active" value=(if m.active { "false" } else { "true" });
                                button type="submit" class=(if m.active { "quiet toggle" } else { "toggle" })
                                    aria-label={ (if m.active { "Switch off " } else { "Switch on " }) (m.id) } {
                                    (if m.active { "Switch off" } else { "Switch on" })
                                }
                            }
                        }
                    }
                }
            }
        }
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
    Ok(html(event_type_rows(&types)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Toggle {
    active: bool,
}

/// `POST /sources/{source}/environments/{environment}/mappings/{mapping}`:
/// switches a mapping on or off, then back to the page.
pub(crate) async fn toggle(
    State(state): State<ConsoleState>,
    Path((source, environment, mapping)): Path<(String, String, String)>,
    Form(form): Form<Toggle>,
) -> Result<Response, ConsoleError> {
    let found = state
        .pipeline()
        .set_mapping_active(&source, &environment, &mapping, form.active)
        .await?;
    if !found {
        return Err(ConsoleError::NotFound(format!(
            "no mapping `{mapping}` in source `{source}`, environment `{environment}`"
        )));
    }
    tracing::info!(
        source,
        environment,
        mapping,
        active = form.active,
        "Mapping toggled from the console."
    );
    Ok(Redirect::to(&environment_path(&source, &environment)).into_response())
}
