//! The sources page: every source, each environment's traffic, receive URL,
//! credentials (revealed on request) and mapping counts.

use std::collections::HashMap;

use axum::{
    Extension, Form, Json,
    extract::{Path, State},
    http::{HeaderMap, header::ACCEPT},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use serde_json::json;
use tributary_store::SourceStatus;

use super::html;
use crate::{
    ConsoleError, ConsoleState,
    config_view::{self, CredentialKind, EnvironmentView, SourceView},
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
) -> maud::Markup {
    html! {
        div class="row" {
            span class="muted" { (kind.label()) ":" }
            span class="secret" id=(id) aria-live="polite" { "••••••••" }
            form method="post" class="reveal" data-output=(id)
                action={ (environment_path(source, env)) "/reveal" } {
                (layout::csrf_field(session))
                input type="hidden" name="kind" value=(kind.as_str());
                button type="submit" class="quiet" aria-label={ "Reveal " (kind.label()) " of " (source) " " (env) } { "Reveal" }
            }
            (layout::copy_after_reveal_button(id, kind.label()))
        }
    }
}

fn source_panel(
    session: &Session,
    index: usize,
    source: &SourceView,
    statuses: &HashMap<(&str, &str), &SourceStatus>,
) -> maud::Markup {
    html! {
        section class="panel" aria-labelledby={ "source-" (index) } {
            h2 id={ "source-" (index) } {
                (source.name) " "
                span class="muted" { "(" code { (source.key) } ", " (source.kind) ")" }
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
) -> maud::Markup {
    let url_id = format!("receive-url-{i}-{j}");
    html! {
        tr {
            th scope="row" {
                a href=(environment_path(&source.key, &env.slug)) { (env.slug) }
            }
            td { (status.map_or(0, |s| s.count_30d)) }
            td { (layout::maybe_time(status.and_then(|s| s.last_received_at))) }
            td { (env.active_mappings()) " / " (env.mappings.len()) }
            td { (layout::badge(if env.identify { "on" } else { "off" })) }
            td {
                div class="row" {
                    span class="url receive-url" id=(url_id) data-value=(env.receive_url)
                        data-source=(source.key) data-environment=(env.slug) { (env.receive_url) }
                    (layout::copy_button(&url_id, "receive URL"))
                }
                @if env.has_write_key {
                    (credential_row(session, &source.key, &env.slug, CredentialKind::WriteKey, &format!("write-key-{i}-{j}")))
                }
                @if env.has_api_key {
                    (credential_row(session, &source.key, &env.slug, CredentialKind::ApiKey, &format!("api-key-{i}-{j}")))
                }
            }
        }
    }
}

/// `GET /sources`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Result<Response, ConsoleError> {
    let sources = config_view::sources(state.pipeline());
    let statuses = state.pipeline().store().source_statuses(Utc::now()).await?;
    let by_env: HashMap<(&str, &str), &SourceStatus> = statuses
        .iter()
        .map(|s| ((s.source.as_str(), s.environment.as_str()), s))
        .collect();
    let content = html! {
        h1 { "Sources" }
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

/// `POST /sources/{source}/environments/{environment}/reveal`: one
/// credential in clear, as JSON for the page's script or as a page. Logged
/// with what was revealed, never the value.
pub(crate) async fn reveal(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<Reveal>,
) -> Result<Response, ConsoleError> {
    let value = config_view::credential(state.pipeline(), &source, &environment, form.kind)
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "no {} for source `{source}`, environment `{environment}`",
                form.kind.label()
            ))
        })?;
    tracing::info!(
        source,
        environment,
        credential = form.kind.as_str(),
        "Console credential revealed."
    );
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(Json(json!({"value": value})).into_response());
    }
    let content = html! {
        h1 { (form.kind.label()) " of " code { (source) } " / " code { (environment) } }
        div class="panel row" {
            span class="secret" id="revealed" data-value=(value) { (value) }
            (layout::copy_button("revealed", form.kind.label()))
        }
        p { a href=(layout::link("/sources")) { "Back to sources" } }
    };
    Ok(html(layout::page("Credential", Nav::Sources, &session, content)).into_response())
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
