//! "Rehearse a payload" on a source environment's page: a body as a
//! platform would send it, optional headers, verification on or off, run
//! through [`tributary_manage::Manager::rehearse`] with the served mappings.
//! The answer shows each event with its plans (resolved payloads and
//! warnings) or the refusal a real request would get, with its status.
//! Nothing is stored and nothing runs.

use std::collections::BTreeMap;

use axum::{
    Extension, Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tributary_adapter::ErrorCategory;
use tributary_manage::rehearsal_request;
use tributary_pipeline::{PipelineError, Rehearsal, RejectedItem};

use super::{
    environment::not_found, events::plan_origin, html, mapping::plan_warnings,
    sources::environment_path,
};
use crate::{
    ConsoleError, ConsoleState, config_view,
    layout::{self, Nav},
    session::Session,
};

/// What the rehearse form holds.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct RehearseForm {
    #[serde(default)]
    body: String,
    /// One `Name: value` a line.
    #[serde(default)]
    headers: String,
    #[serde(default)]
    verify: Option<String>,
}

impl RehearseForm {
    fn verify(&self) -> bool {
        self.verify.as_deref() == Some("true")
    }
}

/// The headers field read as `Name: value` lines (blank lines skipped).
fn parse_headers(text: &str) -> Result<BTreeMap<String, String>, ConsoleError> {
    let mut headers = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                headers.insert(name.trim().to_owned(), value.trim().to_owned());
            }
            _ => {
                return Err(ConsoleError::BadRequest(format!(
                    "`headers` line {} is not `Name: value`",
                    n + 1
                )));
            }
        }
    }
    Ok(headers)
}

/// The status a real request with this payload would have been refused with.
fn refusal_status(e: &PipelineError) -> StatusCode {
    match e {
        PipelineError::UnknownToken => StatusCode::NOT_FOUND,
        PipelineError::ScriptBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
        PipelineError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        PipelineError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        other => match other.category() {
            Some(ErrorCategory::MalformedJson) => StatusCode::BAD_REQUEST,
            Some(ErrorCategory::Unauthorized) => StatusCode::UNAUTHORIZED,
            Some(ErrorCategory::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Some(ErrorCategory::UnsupportedEncoding) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some(ErrorCategory::Schema) | None => StatusCode::UNPROCESSABLE_ENTITY,
        },
    }
}

/// The form, filled with what was sent (empty on the environment's page).
pub(crate) fn form(session: &Session, source: &str, environment: &str, f: &RehearseForm) -> Markup {
    html! {
        form method="post" action={ (environment_path(source, environment)) "/rehearse" }
            class="panel rehearse" id="rehearse-form" aria-labelledby="rehearse-heading" {
            (layout::csrf_field(session))
            h2 id="rehearse-heading" { "Rehearse a payload" }
            p class="muted small" {
                "Paste a body as the platform sends it: it goes through this environment's "
                "verification (when ticked), parsing and mappings. Nothing is stored and nothing runs."
            }
            div class="field" {
                label for="f-body" { "Body" }
                textarea id="f-body" name="body" rows="8" spellcheck="false" { (f.body) }
            }
            div class="field" {
                label for="f-headers" { "Headers (optional, one " code { "Name: value" } " a line)" }
                textarea id="f-headers" name="headers" rows="3" spellcheck="false" { (f.headers) }
            }
            div class="field check" {
                input type="checkbox" id="f-verify" name="verify" value="true" checked[f.verify()];
                label for="f-verify" { "Verify the signature, as a real delivery would be" }
            }
            button type="submit" id="rehearse" { "Rehearse" }
        }
    }
}

fn rejected_list(items: &[RejectedItem]) -> Markup {
    html! {
        @if !items.is_empty() {
            h3 { "Refused items" }
            ul class="rejected" {
                @for item in items {
                    li class="field-error" {
                        "Item " (item.index) ": " code { (item.error.code) } " " (item.error.message)
                        @if let Some(field) = &item.error.field { " (" code { (field) } ")" }
                    }
                }
            }
        }
    }
}

fn outcome(rehearsal: &Rehearsal) -> Markup {
    html! {
        section class="panel" id="rehearsal" aria-labelledby="rehearsal-heading" {
            h2 id="rehearsal-heading" { "Rehearsal" " " (layout::badge("accepted")) }
            dl class="facts" {
                dt { "Revision" } dd { (super::revisions::revision_link(rehearsal.revision)) }
                dt { "Verification" } dd { (layout::verification_badge(rehearsal.verification)) }
                dt { "Events" } dd { (rehearsal.events.len()) }
            }
            @if !rehearsal.notes.is_empty() {
                ul class="warnings" {
                    @for note in &rehearsal.notes { li class="warning" role="note" { "⚠ " (note) } }
                }
            }
            @if let Some(preprocess) = &rehearsal.preprocess {
                section class="preprocess" id="preprocess" {
                    h3 { "Preprocess script" }
                    @if let Some(error) = &preprocess.error {
                        ul class="warnings" { li class="warning" role="note" { "⚠ " (error) } }
                    } @else {
                        dl class="facts" {
                            dt { "Verified" }
                            dd { (match preprocess.verified { Some(true) => "yes", Some(false) => "no", None => "not returned" }) }
                        }
                        @if let Some(output) = &preprocess.output {
                            (layout::json_block(output, "Preprocess output"))
                        }
                    }
                }
            }
            (rejected_list(&rehearsal.rejected))
            @for (i, rehearsed) in rehearsal.events.iter().enumerate() {
                section class="rehearsed-event" data-event=(rehearsed.event.event) {
                    h3 { (i + 1) ". " code { (rehearsed.event.event) } " " span class="muted" { (rehearsed.event.kind.as_str()) } }
                    dl class="facts" {
                        dt { "User" } dd { (rehearsed.event.user_id.as_deref().unwrap_or("—")) }
                        dt { "Dedup key" } dd { (rehearsed.dedup_key.as_deref().unwrap_or("—")) }
                    }
                    details {
                        summary { "Normalized event" }
                        (layout::json_block(&serde_json::to_value(&rehearsed.event).unwrap_or_default(), "Normalized event"))
                    }
                    @if rehearsed.plans.is_empty() {
                        p class="muted" { "No mapping plans anything for it." }
                    }
                    @for plan in &rehearsed.plans {
                        div class="plan" data-status=(if plan.is_planned() { "planned" } else { "skipped" }) {
                            p {
                                (layout::badge(if plan.is_planned() { "planned" } else { "skipped" }))
                                " " code { (plan.action.as_str()) } " · " (plan_origin(plan))
                            }
                            (plan_warnings(plan))
                            (layout::json_block(&serde_json::to_value(plan).unwrap_or_default(), "Planned action"))
                        }
                    }
                }
            }
        }
    }
}

fn refusal(e: &PipelineError) -> Markup {
    let status = refusal_status(e);
    let (code, field) = match e {
        PipelineError::Adapter(a) => (a.code().to_owned(), a.field().map(str::to_owned)),
        _ => (String::new(), None),
    };
    html! {
        section class="panel" id="rehearsal" aria-labelledby="rehearsal-heading" {
            h2 id="rehearsal-heading" { "Refused " (layout::badge("rejected")) }
            p class="refusal" {
                "A real request would be answered " strong { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } ": "
                @if !code.is_empty() { code { (code) } " " }
                (e.to_string())
                @if let Some(field) = field { " (" code { (field) } ")" }
            }
            @if let PipelineError::AllItemsRejected { items } = e {
                (rejected_list(items))
            }
        }
    }
}

/// `POST /sources/{source}/environments/{environment}/rehearse`.
pub(crate) async fn rehearse(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
    Form(f): Form<RehearseForm>,
) -> Result<Response, ConsoleError> {
    let (view, env) = config_view::environment(state.pipeline(), &source, &environment)
        .ok_or_else(|| not_found(&source, &environment))?;
    let headers = parse_headers(&f.headers)?;
    let request = rehearsal_request(Value::String(f.body.clone()), &headers);
    let answer = state
        .manager()
        .rehearse(&source, &environment, request, f.verify(), None)
        .await?;
    let base = environment_path(&source, &environment);
    let content = html! {
        p class="muted" {
            a href=(layout::link("/sources")) { "Sources" } " / "
            a href=(base) { (view.key) " / " (env.slug) } " / Rehearse"
        }
        h1 { "Rehearse a payload on " code { (view.key) } " in " code { (env.slug) } }
        p class="notice" role="status" { "Nothing was stored and nothing ran." }
        @match &answer {
            Ok(rehearsal) => (outcome(rehearsal)),
            Err(e) => (refusal(e)),
        }
        (form(&session, &source, &environment, &f))
    };
    Ok(html(layout::page("Rehearse", Nav::Sources, &session, content)).into_response())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn headers_are_read_one_a_line_and_a_bad_line_is_named() {
        let h = parse_headers("X-Signature: abc\n\nContent-Type: text/plain\r\n").unwrap();
        assert_eq!(h["X-Signature"], "abc");
        assert_eq!(h["Content-Type"], "text/plain");
        let e = parse_headers("ok: 1\nno colon").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    proptest! {
        #[test]
        fn any_headers_text_gives_headers_or_an_error_naming_the_field(text in "\\PC{0,64}") {
            match parse_headers(&text) {
                Ok(h) => prop_assert!(h.keys().all(|k| !k.is_empty() && !k.contains(':'))),
                Err(e) => prop_assert!(e.to_string().contains("`headers`")),
            }
        }
    }
}
