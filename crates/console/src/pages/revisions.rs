//! Promoting a source's mappings from one environment to another (the diff
//! first, then apply), and the revision log: every configuration change,
//! who made it and what it changed.

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use maud::{Markup, html};
use serde::Deserialize;
use tributary_manage::Change;

use super::{html, sources::encode};
use crate::{
    ConsoleError, ConsoleState, PAGE_ROWS,
    layout::{self, Nav},
    session::Session,
};

#[derive(Deserialize, Default)]
pub(crate) struct PromoteForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn value_cell(value: Option<&serde_json::Value>) -> Markup {
    html! {
        @match value {
            Some(v) => code { (v.to_string()) },
            None => span class="muted" { "(absent)" },
        }
    }
}

/// Changes as a table: JSON pointer, before, after.
fn changes_table(changes: &[Change], label: &str) -> Markup {
    html! {
        @if changes.is_empty() {
            p class="muted" { "Nothing changes." }
        } @else {
            table class="diff" aria-label=(label) {
                thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                tbody {
                    @for c in changes {
                        tr {
                            td {
                                @if c.pointer.is_empty() { "the whole list" } @else { code { (c.pointer) } }
                            }
                            td class="before" { (value_cell(c.before.as_ref())) }
                            td class="after" { (value_cell(c.after.as_ref())) }
                        }
                    }
                }
            }
        }
    }
}

fn env_select(name: &str, label: &str, envs: &[String], current: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div class="field" {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                @for e in envs {
                    option value=(e) selected[*e == current] { (e) }
                }
            }
        }
    }
}

/// `GET /sources/{source}/promote?from=&to=`: the environments to choose
/// and, once chosen, what promoting would change (a dry run).
pub(crate) async fn promote_form(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(source): Path<String>,
    Query(q): Query<PromoteForm>,
) -> Result<Response, ConsoleError> {
    let view = super::sources::find_source(&state, &source)?;
    let envs: Vec<String> = view.environments.iter().map(|e| e.slug.clone()).collect();
    let from = if q.from.is_empty() {
        envs.first().cloned().unwrap_or_default()
    } else {
        q.from.clone()
    };
    let to = if q.to.is_empty() {
        envs.iter()
            .find(|e| **e != from)
            .cloned()
            .unwrap_or_default()
    } else {
        q.to.clone()
    };
    let chosen = !q.from.is_empty() && !q.to.is_empty();
    let diff = if chosen && from != to {
        Some(
            state
                .manager()
                .promote(state.actor(), &source, &from, &to, true)
                .await?
                .0,
        )
    } else {
        None
    };
    let path = layout::link(&format!("/sources/{}/promote", encode(&source)));
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / " (source) " / Promote" }
        h1 { "Promote mappings of " code { (source) } }
        p class="muted" { "The target environment's mappings become the source environment's: ids kept, switches as they are now." }
        form method="get" action=(path) class="panel filters" {
            (env_select("from", "From", &envs, &from))
            (env_select("to", "To", &envs, &to))
            div class="field" { button type="submit" class="quiet" id="show-diff" { "Show changes" } }
        }
        @if chosen && from == to {
            p class="notice error" role="alert" { "Choose two different environments." }
        }
        @if let Some(changes) = &diff {
            section class="panel" aria-labelledby="diff-heading" {
                h2 id="diff-heading" { "Changes to " code { (to) } " (dry run)" }
                (changes_table(changes, "Promotion changes"))
                @if !changes.is_empty() {
                    @if view.managed_by_file {
                        p { (super::sources::file_marker()) " A file source's mappings change in the file." }
                    } @else {
                        form method="post" action=(path) {
                            (layout::csrf_field(&session))
                            input type="hidden" name="from" value=(from);
                            input type="hidden" name="to" value=(to);
                            button type="submit" id="apply-promote" { "Promote " (from) " → " (to) }
                        }
                    }
                }
            }
        }
    };
    Ok(html(layout::page("Promote", Nav::Sources, &session, content)).into_response())
}

/// `POST /sources/{source}/promote`: applies the promotion as one revision.
pub(crate) async fn promote(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(source): Path<String>,
    Form(form): Form<PromoteForm>,
) -> Result<Response, ConsoleError> {
    let (changes, revision) = state
        .manager()
        .promote(state.actor(), &source, &form.from, &form.to, false)
        .await?;
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / " (source) " / Promote" }
        h1 { "Promoted " code { (form.from) } " → " code { (form.to) } }
        p class="notice" role="status" {
            @match revision {
                Some(n) => { "Revision " (n) "." },
                None => { "Nothing to change." },
            }
        }
        (changes_table(&changes, "Applied changes"))
        p { a href=(super::sources::environment_path(&source, &form.to)) { "Open " (form.to) } }
    };
    Ok(html(layout::page("Promoted", Nav::Sources, &session, content)).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct RevisionsQuery {
    #[serde(default)]
    before: String,
}

/// A link to revision `number` on the revision log (the page that starts
/// with it); revision 0 is the configuration file alone.
pub(crate) fn revision_link(number: u64) -> Markup {
    html! {
        @if number == 0 {
            "0 " span class="muted" { "(the configuration file alone)" }
        } @else {
            a href={ (layout::link("/revisions")) "?before=" (number + 1) "#revision-" (number) } class="revision" {
                "Revision " (number)
            }
        }
    }
}

/// `GET /revisions?before=`: the revision log, newest first, a page at a time.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<RevisionsQuery>,
) -> Result<Response, ConsoleError> {
    let before =
        match q.before.trim() {
            "" => None,
            n => Some(n.parse::<u64>().map_err(|_| {
                ConsoleError::BadRequest("`before` is a revision number".to_owned())
            })?),
        };
    let revisions = state.manager().revisions(before, PAGE_ROWS).await?;
    let older = (revisions.len() == PAGE_ROWS)
        .then(|| revisions.last().map(|r| r.number))
        .flatten();
    let content = html! {
        h1 { "Revisions" }
        p class="muted" { "Every configuration change, newest first. Console changes are made by " code { "console:" } " and the admin token's fingerprint; secrets are masked." }
        table aria-label="Revision log" {
            thead { tr {
                th scope="col" { "Revision" } th scope="col" { "Time" } th scope="col" { "Actor" }
                th scope="col" { "Summary" } th scope="col" { "Changes" }
            } }
            tbody id="revisions" {
                @if revisions.is_empty() {
                    tr class="empty" { td colspan="5" class="muted" { "No revision yet." } }
                }
                @for r in &revisions {
                    tr data-revision=(r.number) id={ "revision-" (r.number) } {
                        td { (r.number) }
                        td { (layout::time(r.created_at)) }
                        td { code class="actor" { (r.actor) } }
                        td class="summary" { (r.summary) }
                        td {
                            details {
                                summary { "Changes" }
                                (layout::json_block(&r.changes, "Changes"))
                            }
                        }
                    }
                }
            }
        }
        @if let Some(n) = older {
            div class="pager" {
                a href={ (layout::link("/revisions")) "?before=" (n) } { "Older" }
            }
        }
    };
    Ok(html(layout::page("Revisions", Nav::Revisions, &session, content)).into_response())
}
