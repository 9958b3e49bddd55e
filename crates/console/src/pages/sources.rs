//! The sources page: every source, each environment's traffic, receive URL
//! and credentials (revealed on request, each reveal recorded), mapping
//! counts and identify switch; creating, rotating and deleting sources.

use std::collections::HashMap;

use axum::{
    Extension, Form, Json,
    extract::{Path, Query, State},
    http::{HeaderMap, header::ACCEPT},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tributary_core::config::SourceKind;
use tributary_manage::{DEFAULT_TOKEN_GRACE, ManageError};
use tributary_store::SourceStatus;

use super::html;
use crate::{
    ConsoleError, ConsoleState,
    config_view::{self, CredentialKind, EnvironmentView, SourceView},
    error,
    forms::{self, FieldErrors},
    layout::{self, Nav},
    session::Session,
};

/// The path of a source environment's page (and of its actions).
pub(crate) fn environment_path(source: &str, environment: &str) -> String {
    layout::link(&format!(
        "/sources/{}/environments/{}",
        encode(source),
        encode(environment)
    ))
}

/// A path segment, percent-encoded.
pub(crate) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn credential_row(
    session: &Session,
    source: &str,
    env: &str,
    kind: CredentialKind,
    id: &str,
) -> Markup {
    html! {
        div class="row" {
            span class="muted" { (kind.label()) ":" }
            span class="secret" id=(id) aria-live="polite" { "••••••••" }
            (reveal_form(session, source, env, kind, id, "Reveal", false))
            (layout::copy_after_reveal_button(id, kind.label()))
        }
    }
}

/// The receive URL, masked, with **Copy receive URL** (a recorded reveal
/// that shows the URL in the element `id` and copies it).
pub(crate) fn receive_url(
    session: &Session,
    source: &str,
    env: &EnvironmentView,
    id: &str,
) -> Markup {
    html! {
        div class="row" {
            span class="url receive-url" id=(id) aria-live="polite"
                data-source=(source) data-environment=(env.slug) { (env.receive_url_masked) }
            (reveal_form(session, source, &env.slug, CredentialKind::Token, id, "Copy receive URL", true))
        }
    }
}

/// The identify switch's state and, for a source not defined in the file,
/// the button that flips it; `from_environment` brings the operator back to
/// the environment's page instead of the sources page.
pub(crate) fn identify_switch(
    session: &Session,
    source: &SourceView,
    env: &EnvironmentView,
    from_environment: bool,
) -> Markup {
    html! {
        div class="row" {
            (layout::badge(if env.identify { "on" } else { "off" }))
            @if !source.managed_by_file {
                form method="post" action={ (environment_path(&source.key, &env.slug)) "/identify" } class="identify" {
                    (layout::csrf_field(session))
                    input type="hidden" name="identify" value=(if env.identify { "false" } else { "true" });
                    @if from_environment { input type="hidden" name="back" value="environment"; }
                    button type="submit" class="quiet"
                        aria-label={ (if env.identify { "Switch identify off for " } else { "Switch identify on for " }) (source.key) " " (env.slug) } {
                        (if env.identify { "Switch off" } else { "Switch on" })
                    }
                }
            }
        }
    }
}

/// A form that reveals a credential (recorded in the revision log) into the
/// element `output`; with `copy`, the script copies it once revealed.
fn reveal_form(
    session: &Session,
    source: &str,
    env: &str,
    kind: CredentialKind,
    output: &str,
    label: &str,
    copy: bool,
) -> Markup {
    html! {
        form method="post" class="reveal" data-output=(output) data-copy=[copy.then_some("1")]
            action={ (environment_path(source, env)) "/reveal" } {
            (layout::csrf_field(session))
            input type="hidden" name="kind" value=(kind.as_str());
            button type="submit" class="quiet" aria-label={ (label) ": " (kind.label()) " of " (source) " " (env) } { (label) }
        }
    }
}

/// The read-only marker of a source the configuration file defines.
pub(crate) fn file_marker() -> Markup {
    html! {
        span class="badge file" title="Defined in the configuration file: change it there; only its switches change here." {
            "managed by file · read-only"
        }
    }
}

fn source_panel(
    session: &Session,
    index: usize,
    source: &SourceView,
    statuses: &HashMap<(&str, &str), &SourceStatus>,
) -> Markup {
    let source_path = layout::link(&format!("/sources/{}", encode(&source.key)));
    html! {
        section class="panel" aria-labelledby={ "source-" (index) } data-source=(source.key) {
            div class="row spread" {
                h2 id={ "source-" (index) } {
                    (source.name) " "
                    span class="muted" { "(" code { (source.key) } ", " (source.kind.as_str()) ")" }
                }
                div class="row" {
                    @if source.managed_by_file {
                        (file_marker())
                    } @else {
                        span class="badge api" { "managed by API" }
                    }
                    @if source.environments.len() > 1 {
                        a class="button quiet" href={ (source_path) "/promote" } { "Promote…" }
                    }
                    @if !source.managed_by_file {
                        a class="button quiet danger" href={ (source_path) "/delete" }
                            aria-label={ "Delete source " (source.key) } { "Delete…" }
                    }
                }
            }
            @if !source.description.is_empty() {
                p class="muted" { (source.description) }
            }
            table {
                thead { tr {
                    th scope="col" { "Environment" }
                    th scope="col" { "Events (30 days)" }
                    th scope="col" { "Last received" }
                    th scope="col" { "Active mappings" }
                    th scope="col" { "Identify" }
                    th scope="col" { "Receive URL and keys" }
                } }
                tbody {
                    @for (j, env) in source.environments.iter().enumerate() {
                        (environment_row(session, index, j, source, env, statuses.get(&(source.key.as_str(), env.slug.as_str())).copied()))
                    }
                }
            }
        }
    }
}

fn environment_row(
    session: &Session,
    i: usize,
    j: usize,
    source: &SourceView,
    env: &EnvironmentView,
    status: Option<&SourceStatus>,
) -> Markup {
    let url_id = format!("receive-url-{i}-{j}");
    let base = environment_path(&source.key, &env.slug);
    html! {
        tr data-environment=(env.slug) {
            th scope="row" {
                a href=(base) { (env.slug) }
            }
            td { (status.map_or(0, |s| s.count_30d)) }
            td { (layout::maybe_time(status.and_then(|s| s.last_received_at))) }
            td { (env.active_mappings()) " / " (env.mappings.len()) }
            td {
                (identify_switch(session, source, env, false))
            }
            td {
                (receive_url(session, &source.key, env, &url_id))
                @if env.has_write_key {
                    (credential_row(session, &source.key, &env.slug, CredentialKind::WriteKey, &format!("write-key-{i}-{j}")))
                }
                @if env.has_api_key {
                    (credential_row(session, &source.key, &env.slug, CredentialKind::ApiKey, &format!("api-key-{i}-{j}")))
                }
                @if !source.managed_by_file {
                    (rotate_forms(session, &source.key, env))
                }
            }
        }
    }
}

fn rotate_forms(session: &Session, source: &str, env: &EnvironmentView) -> Markup {
    let mut kinds = vec![CredentialKind::Token];
    if env.has_write_key {
        kinds.push(CredentialKind::WriteKey);
    }
    if env.has_api_key {
        kinds.push(CredentialKind::ApiKey);
    }
    html! {
        details class="rotate" {
            summary { "Rotate…" }
            p class="muted small" {
                "A rotated receive token keeps working for 24 hours; a write key or API key stops at once."
            }
            div class="row" {
                @for kind in kinds {
                    form method="post" action={ (environment_path(source, &env.slug)) "/rotate" } {
                        (layout::csrf_field(session))
                        input type="hidden" name="credential" value=(kind.as_str());
                        button type="submit" class="quiet"
                            aria-label={ "Rotate " (kind.label()) " of " (source) " " (env.slug) } {
                            "Rotate " (rotate_label(kind))
                        }
                    }
                }
            }
        }
    }
}

fn rotate_label(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Token => "token",
        CredentialKind::WriteKey => "write key",
        CredentialKind::ApiKey => "API key",
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    deleted: String,
}

/// `GET /sources`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let sources = config_view::sources(state.pipeline());
    let statuses = state.queries().source_statuses(Utc::now()).await?;
    let by_env: HashMap<(&str, &str), &SourceStatus> = statuses
        .iter()
        .map(|s| ((s.source.as_str(), s.environment.as_str()), s))
        .collect();
    let content = html! {
        div class="row spread" {
            h1 { "Sources" }
            a class="button" id="new-source" href=(layout::link("/sources/new")) { "New source" }
        }
        @if !query.deleted.is_empty() {
            p class="notice" role="status" { "Source " code { (query.deleted) } " deleted. Its event and action logs are kept." }
        }
        @if sources.is_empty() {
            p class="muted" { "No source is configured." }
        }
        @for (i, source) in sources.iter().enumerate() {
            (source_panel(&session, i, source, &by_env))
        }
    };
    Ok(html(layout::page("Sources", Nav::Sources, &session, content)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Reveal {
    kind: CredentialKind,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `POST /sources/{source}/environments/{environment}/reveal`: one
/// credential in clear (a token as its whole receive URL), as JSON for the
/// page's script or as a page. Goes through the management layer, which
/// records the reveal in the revision log (never the value).
pub(crate) async fn reveal(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<Reveal>,
) -> Result<Response, ConsoleError> {
    let secret = state
        .manager()
        .reveal(state.actor(), &source, &environment, form.kind.credential())
        .await?;
    let value = match form.kind {
        CredentialKind::Token => {
            config_view::receive_url(config_view::public_url(state.pipeline()), &secret)
        }
        _ => secret,
    };
    tracing::info!(
        source,
        environment,
        credential = form.kind.as_str(),
        "Console credential revealed."
    );
    if wants_json(&headers) {
        return Ok(Json(json!({"value": value})).into_response());
    }
    let content = html! {
        h1 { (form.kind.label()) " of " code { (source) } " / " code { (environment) } }
        div class="panel row" {
            span class="secret" id="revealed" data-value=(value) { (value) }
            (layout::copy_button("revealed", form.kind.label()))
        }
        p class="muted" { "This reveal is recorded in the revision log." }
        p { a href=(layout::link("/sources")) { "Back to sources" } }
    };
    Ok(html(layout::page("Credential", Nav::Sources, &session, content)).into_response())
}

/// What the new-source form holds.
#[derive(Deserialize, Default)]
pub(crate) struct NewSource {
    #[serde(default)]
    key: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

const NEW_SOURCE_FIELDS: [&str; 4] = ["key", "kind", "name", "description"];

fn new_source_page(session: &Session, form: &NewSource, errors: &FieldErrors) -> Markup {
    let kind_errors = errors.of("kind");
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / New source" }
        h1 { "New source" }
        (errors.notice(&NEW_SOURCE_FIELDS))
        form method="post" action=(layout::link("/sources")) class="panel narrow-form" novalidate {
            (layout::csrf_field(session))
            (forms::text_field("key", "Key", &form.key, errors,
                Some("Lowercase letters, digits, - and _; it names the source in URLs and logs.")))
            div class="field" {
                label for="f-kind" { "Kind" }
                select id="f-kind" name="kind" aria-invalid=[(!kind_errors.is_empty()).then_some("true")]
                    aria-describedby="f-kind-help" {
                    @for kind in SourceKind::ALL {
                        option value=(kind.as_str()) selected[form.kind == kind.as_str()] { (kind.as_str()) }
                    }
                }
                (forms::field_help("f-kind-help", Some("What sends to it: the receive URL speaks its format."), kind_errors))
            }
            (forms::text_field("name", "Name", &form.name, errors, None))
            (forms::text_field("description", "Description", &form.description, errors, None))
            button type="submit" id="create-source" { "Create source" }
        }
    };
    layout::page("New source", Nav::Sources, session, content)
}

/// `GET /sources/new`: the form.
pub(crate) async fn new_form(Extension(session): Extension<Session>) -> Response {
    html(new_source_page(
        &session,
        &NewSource::default(),
        &FieldErrors::default(),
    ))
    .into_response()
}

/// `POST /sources`: creates the source, then shows each environment's
/// receive URL and keys this once, with a curl line to try.
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<NewSource>,
) -> Result<Response, ConsoleError> {
    let mut input = json!({"key": form.key.trim(), "kind": form.kind.trim()});
    for (field, value) in [("name", &form.name), ("description", &form.description)] {
        if !value.trim().is_empty() {
            input[field] = json!(value.trim());
        }
    }
    let created = match state.manager().create_source(state.actor(), input).await {
        Ok(created) => created,
        Err(e) => {
            let status = error::manage_status(&e);
            let Some(errors) = FieldErrors::from_refusal(&e, forms::first_segment) else {
                return Err(e.into());
            };
            return Ok((status, html(new_source_page(&session, &form, &errors))).into_response());
        }
    };
    let key = form.key.trim();
    tracing::info!(
        source = key,
        revision = created.revision,
        "Source created from the console."
    );
    let secrets = created.secrets.as_object().cloned().unwrap_or_default();
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / " (key) }
        h1 { "Source " code { (key) } " created" }
        p class="notice" role="status" {
            "Revision " (created.revision) ". The secrets below are shown this once: copy them now. "
            "Later, each is shown only on request, and each such reveal is recorded."
        }
        @for (j, (env, shown)) in secrets.iter().enumerate() {
            section class="panel created" data-environment=(env) {
                h2 { code { (env) } }
                dl class="facts" {
                    @if let Some(url) = shown["receive_url"].as_str() {
                        dt { "Receive URL" }
                        dd { div class="row" {
                            span class="url created-url" id={ "created-url-" (j) } data-value=(url) { (url) }
                            (layout::copy_button(&format!("created-url-{j}"), "receive URL"))
                        } }
                    }
                    @for (field, label) in [("write_key", "Write key"), ("api_key", "API key")] {
                        @if let Some(value) = shown[field].as_str() {
                            dt { (label) }
                            dd { div class="row" {
                                span class="secret" id={ "created-" (field) "-" (j) } data-value=(value) { (value) }
                                (layout::copy_button(&format!("created-{field}-{j}"), label))
                            } }
                        }
                    }
                }
                @if let Some(url) = shown["receive_url"].as_str() {
                    h3 { "Try it" }
                    (layout::text_block(&curl_line(url), "A curl line that sends a test event"))
                }
            }
        }
        p { a class="button" href=(environment_path(key, secrets.keys().next().map_or("", String::as_str))) { "Open its first environment" } " "
            a href=(layout::link("/sources")) { "Back to sources" } }
    };
    Ok(html(layout::page(
        "Source created",
        Nav::Sources,
        &session,
        content,
    ))
    .into_response())
}

/// A curl command that sends one test event to a receive URL.
fn curl_line(url: &str) -> String {
    format!(
        "curl -X POST '{url}' \\\n  -H 'content-type: application/json' \\\n  -d '{{\"type\":\"track\",\"event\":\"Test Event\",\"userId\":\"user-1\",\"properties\":{{\"plan\":\"pro\"}}}}'"
    )
}

#[derive(Deserialize)]
pub(crate) struct Identify {
    identify: bool,
    /// `environment`: back to the environment's page.
    #[serde(default)]
    back: String,
}

/// `POST /sources/{source}/environments/{environment}/identify`: the
/// identify switch, through the management layer.
pub(crate) async fn identify(
    State(state): State<ConsoleState>,
    Path((source, environment)): Path<(String, String)>,
    Form(form): Form<Identify>,
) -> Result<Response, ConsoleError> {
    state
        .manager()
        .update_environment(
            state.actor(),
            &source,
            &environment,
            None,
            json!({"identify": form.identify}),
        )
        .await?;
    if form.back == "environment" {
        return Ok(Redirect::to(&environment_path(&source, &environment)).into_response());
    }
    Ok(Redirect::to(&layout::link("/sources")).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Rotate {
    credential: CredentialKind,
}

/// `POST /sources/{source}/environments/{environment}/rotate`: a fresh
/// credential, shown this once.
pub(crate) async fn rotate(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
    Form(form): Form<Rotate>,
) -> Result<Response, ConsoleError> {
    let committed = state
        .manager()
        .rotate(
            state.actor(),
            &source,
            &environment,
            form.credential.credential(),
            DEFAULT_TOKEN_GRACE,
        )
        .await?;
    let shown = &committed.secrets;
    let value = match form.credential {
        CredentialKind::Token => shown["receive_url"].as_str(),
        other => shown[other.as_str()].as_str(),
    }
    .unwrap_or_default()
    .to_owned();
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / " (source) " / " (environment) }
        h1 { "New " (rotate_label(form.credential)) " for " code { (source) } " / " code { (environment) } }
        p class="notice" role="status" { "Revision " (committed.revision) ". Shown this once: copy it now." }
        div class="panel row" {
            span class="secret" id="rotated" data-value=(value) { (value) }
            (layout::copy_button("rotated", form.credential.label()))
        }
        @if let Some(until) = shown["previous_token_valid_until"].as_str() {
            p { "The previous receive URL keeps working until " (until) "." }
        } @else if form.credential != CredentialKind::Token {
            p { "The previous " (rotate_label(form.credential)) " stopped working." }
        }
        p { a href=(layout::link("/sources")) { "Back to sources" } }
    };
    Ok(html(layout::page("Rotated", Nav::Sources, &session, content)).into_response())
}

fn delete_page(session: &Session, source: &SourceView, message: Option<&str>) -> Markup {
    let mappings: usize = source.environments.iter().map(|e| e.mappings.len()).sum();
    let content = html! {
        p class="muted" { a href=(layout::link("/sources")) { "Sources" } " / " (source.key) }
        h1 { "Delete source " code { (source.key) } "?" }
        @if let Some(m) = message {
            p class="notice error" role="alert" { (m) }
        }
        div class="panel" {
            p { "Its receive URLs and keys stop working from the next revision. Its event and action logs are kept." }
            @if mappings > 0 {
                p { "It has " (mappings) " mapping(s)." }
            }
            form method="post" action=(layout::link(&format!("/sources/{}/delete", encode(&source.key)))) {
                (layout::csrf_field(session))
                @if mappings > 0 {
                    div class="field check" {
                        input type="checkbox" id="f-force" name="force" value="true";
                        label for="f-force" { "Also delete its " (mappings) " mapping(s)" }
                    }
                }
                div class="row" {
                    button type="submit" class="danger" id="confirm-delete" { "Delete " (source.key) }
                    a href=(layout::link("/sources")) { "Cancel" }
                }
            }
        }
    };
    layout::page("Delete source", Nav::Sources, session, content)
}

/// One source as the console shows it, or a 404.
pub(crate) fn find_source(state: &ConsoleState, key: &str) -> Result<SourceView, ConsoleError> {
    config_view::sources(state.pipeline())
        .into_iter()
        .find(|s| s.key == key)
        .ok_or_else(|| ConsoleError::NotFound(format!("no source `{key}`")))
}

/// `GET /sources/{source}/delete`: the confirmation step.
pub(crate) async fn delete_form(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(source): Path<String>,
) -> Result<Response, ConsoleError> {
    let view = find_source(&state, &source)?;
    Ok(html(delete_page(&session, &view, None)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Delete {
    #[serde(default)]
    force: bool,
}

/// `POST /sources/{source}/delete`: deletes it (refused while it has
/// mappings unless `force`; the manager's message is shown).
pub(crate) async fn delete(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(source): Path<String>,
    Form(form): Form<Delete>,
) -> Result<Response, ConsoleError> {
    match state
        .manager()
        .delete_source(state.actor(), &source, None, form.force)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "{}?deleted={}",
            layout::link("/sources"),
            encode(&source)
        ))
        .into_response()),
        Err(e @ (ManageError::Conflict { .. } | ManageError::ManagedByFile(_))) => {
            let view = find_source(&state, &source)?;
            let status = error::manage_status(&e);
            Ok((
                status,
                html(delete_page(&session, &view, Some(&e.to_string()))),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::encode;

    fn decode(s: &str) -> Vec<u8> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn an_encoded_segment_is_safe_and_decodes_to_the_original(segment in "\\PC{0,24}") {
            let encoded = encode(&segment);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)), "{}", encoded);
            prop_assert_eq!(decode(&encoded), segment.as_bytes());
        }
    }
}
