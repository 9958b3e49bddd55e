//! Creating and editing a mapping from a received event: pick the event
//! type and the action, then fill each parameter by clicking a field of the
//! newest event of that type (the path picker), with a preview of what the
//! mapping would resolve and plan for that event.

use std::collections::BTreeMap;

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use tributary_core::{
    ActionType, FieldPath,
    config::{ActionParameter, DocumentError, SourceKind, action_parameters},
    event::Event,
    path::PathInput,
    plan::{ActionPlan, PlanNote, PlanOutcome, SkipReason},
};
use tributary_manage::{ManageError, rehearsal_request};
use tributary_store::EventFilter;

use super::{
    environment::not_found,
    html,
    sources::{encode, environment_path},
};
use crate::{
    ConsoleError, ConsoleState, config_view, error,
    forms::{self, FieldErrors},
    layout::{self, Nav},
    session::Session,
};

/// The prefix of a parameter's form field (`p.workflow`).
const PARAM: &str = "p.";

/// The id a proposed mapping without one has in a preview.
const PREVIEW_ID: &str = "console-preview";

/// How deep the path picker shows an event, and how many members of one
/// object or array: a hostile event cannot make the page unbounded.
const PICKER_DEPTH: usize = 8;
const PICKER_MEMBERS: usize = 100;

/// What the mapping form holds: the event type, the action, an optional id
/// and each parameter's text.
#[derive(Clone, Debug, Default)]
pub(crate) struct MappingForm {
    id: String,
    event: String,
    action: String,
    sample: String,
    params: BTreeMap<String, String>,
}

impl MappingForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "id" => form.id = value,
                "event" => form.event = value,
                "action" => form.action = value,
                "sample" => form.sample = value,
                other => {
                    if let Some(param) = other.strip_prefix(PARAM) {
                        form.params.insert(param.to_owned(), value);
                    }
                }
            }
        }
        form
    }

    /// From a stored mapping: string parameters as they are, the others
    /// (constants, field tables) kept aside, shown but not edited here.
    fn from_mapping(mapping: &Value) -> Self {
        let mut form = Self {
            id: mapping["id"].as_str().unwrap_or_default().to_owned(),
            event: mapping["event"].as_str().unwrap_or_default().to_owned(),
            action: mapping["action"].as_str().unwrap_or_default().to_owned(),
            ..Self::default()
        };
        for (k, v) in mapping.as_object().into_iter().flatten() {
            match v {
                Value::String(s) if !["id", "event", "action"].contains(&k.as_str()) => {
                    form.params.insert(k.clone(), s.clone());
                }
                Value::Bool(true) if k == "create_audience" => {
                    form.params.insert(k.clone(), "true".to_owned());
                }
                _ => {}
            }
        }
        form
    }

    fn action(&self) -> Option<ActionType> {
        self.action.parse().ok()
    }

    fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", |v| v.trim())
    }

    /// The mapping as the management layer takes it (a new mapping).
    fn document(&self) -> Map<String, Value> {
        let mut doc = Map::new();
        if !self.id.trim().is_empty() {
            doc.insert("id".into(), json!(self.id.trim()));
        }
        doc.insert("event".into(), json!(self.event));
        doc.insert("action".into(), json!(self.action.trim()));
        for p in self.action().map(action_parameters).unwrap_or_default() {
            let value = self.param(p.name);
            if value.is_empty() {
                continue;
            }
            if p.reads_path || p.literal_key {
                doc.insert(p.name.into(), json!(value));
            } else if p.name == "create_audience" {
                doc.insert(p.name.into(), json!(value == "true"));
            }
        }
        doc
    }

    /// A merge patch that turns `current` into this form's mapping: empty
    /// fields remove what they held, parameters the new action does not take
    /// are removed, parameters this form does not edit are kept.
    fn patch(&self, current: &Value) -> Value {
        let mut patch = self.document();
        patch.remove("id");
        let taken: Vec<ActionParameter> = self.action().map(action_parameters).unwrap_or_default();
        for (k, v) in current.as_object().into_iter().flatten() {
            if ["id", "event", "action", "active"].contains(&k.as_str()) || patch.contains_key(k) {
                continue;
            }
            let spec = taken.iter().find(|p| p.name == k);
            let edited_here = matches!(v, Value::String(_) | Value::Bool(_));
            match spec {
                None => {
                    patch.insert(k.clone(), Value::Null);
                }
                Some(_) if edited_here => {
                    patch.insert(k.clone(), Value::Null);
                }
                Some(_) => {}
            }
        }
        Value::Object(patch)
    }
}

/// The form field a JSON pointer into a mapping names.
fn field_of(pointer: &str) -> Option<String> {
    let first = forms::first_segment(pointer)?;
    Some(match first.as_str() {
        "id" | "event" | "action" => first,
        param => format!("{PARAM}{param}"),
    })
}

/// One parameter's path resolved against the sample event.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The parameter.
    pub(crate) parameter: &'static str,
    /// The path read (as written, or the parameter's default).
    pub(crate) path: String,
    /// Whether the path is the default (nothing was written).
    pub(crate) default: bool,
    /// What it reached; `None`: nothing.
    pub(crate) value: Option<Value>,
}

/// What a proposed mapping does with a sample event.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rehearsal {
    /// Why the proposal would be refused (pointers into the mapping).
    pub(crate) errors: Vec<DocumentError>,
    /// Why the sample itself could not be run through the source (its
    /// adapter's refusal).
    pub(crate) refused: Option<String>,
    /// Each path parameter's value in the sample.
    pub(crate) values: Vec<Resolved>,
    /// The plans the proposed mapping gives the sample.
    pub(crate) plans: Vec<ActionPlan>,
}

/// Rehearses a proposed mapping over a sample event, changing nothing:
/// the environment's mappings with the proposal appended (or in place of
/// the mapping `replacing`) go to [`Manager::rehearse`] with the sample's
/// body and headers as the request (unverified: the stored headers hold no
/// signature), so the plans and their notes are the engine's own.
///
/// [`Manager::rehearse`]: tributary_manage::Manager::rehearse
pub(crate) async fn rehearse(
    state: &ConsoleState,
    place: (&str, &str),
    replacing: Option<&str>,
    proposal: &Map<String, Value>,
    sample: Option<&Event>,
) -> Result<Rehearsal, ConsoleError> {
    let (source, environment) = place;
    let mut list = state.manager().mappings(source, environment).await?;
    let mut proposal = proposal.clone();
    let id = match proposal.get("id").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => {
            let id = replacing.unwrap_or(PREVIEW_ID).to_owned();
            proposal.insert("id".into(), json!(id));
            id
        }
    };
    let index = match replacing.and_then(|r| list.iter().position(|m| m["id"] == json!(r))) {
        Some(at) => {
            list[at] = Value::Object(proposal.clone());
            at
        }
        None => {
            list.push(Value::Object(proposal.clone()));
            list.len() - 1
        }
    };
    // Without a sample the proposal is still compiled (its errors shown);
    // an empty object stands in for the request, and what it plans is not shown.
    let request = match sample {
        Some(sample) => rehearsal_request(
            Value::String(sample.raw.to_string()),
            &sample
                .headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => rehearsal_request(json!({}), &BTreeMap::new()),
    };
    let mut rehearsal = Rehearsal::default();
    let answer = match state
        .manager()
        .rehearse(
            source,
            environment,
            request,
            false,
            Some(&Value::Array(list)),
        )
        .await
    {
        Ok(answer) => answer,
        Err(ManageError::Invalid(errors)) => {
            let prefix = format!("/mappings/{index}");
            rehearsal.errors = errors
                .into_iter()
                .map(|mut d| {
                    if let Some(rest) = d.pointer.strip_prefix(&prefix) {
                        d.pointer = rest.to_owned();
                    }
                    d
                })
                .collect();
            return Ok(rehearsal);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(sample) = sample else {
        return Ok(rehearsal);
    };
    let rehearsed = match answer {
        Ok(rehearsed) => rehearsed,
        Err(refused) => {
            rehearsal.refused = Some(refused.to_string());
            return Ok(rehearsal);
        }
    };
    let event = rehearsed.events.into_iter().next();
    let input_event = event.as_ref().map_or(sample, |e| &e.event);
    rehearsal.values = resolved_values(&proposal, input_event, state, source);
    rehearsal.plans = event
        .map(|e| e.plans)
        .unwrap_or_default()
        .into_iter()
        .filter(|plan| plan.origin.mapping() == Some(id.as_str()))
        .collect();
    Ok(rehearsal)
}

/// Each path parameter of `proposal` with what it reads in `event` (the
/// parameter's default path when none is written).
fn resolved_values(
    proposal: &Map<String, Value>,
    event: &Event,
    state: &ConsoleState,
    source: &str,
) -> Vec<Resolved> {
    let Some(alias) = config_view::sources(state.pipeline())
        .into_iter()
        .find(|s| s.key == source)
        .map(|s| s.kind.data_alias())
    else {
        return Vec::new();
    };
    let input = PathInput::of(event);
    let action: Option<ActionType> = proposal
        .get("action")
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok());
    let mut values = Vec::new();
    for p in action.map(action_parameters).unwrap_or_default() {
        if !p.reads_path {
            continue;
        }
        let (path, default) = match proposal.get(p.name) {
            Some(Value::String(path)) => (path.clone(), false),
            Some(_) => continue,
            None => match p.default_path {
                Some(path) => (path.to_owned(), true),
                None => continue,
            },
        };
        let Ok(compiled_path) = FieldPath::compile(&path, alias) else {
            continue;
        };
        values.push(Resolved {
            parameter: p.name,
            value: compiled_path.resolve(input).map(|v| v.into_owned()),
            path,
            default,
        });
    }
    values
}

/// What a plan warns about, as a list (nothing when all is well): each
/// optional path that reached nothing (the engine's notes) and, for a
/// skipped plan, why.
pub(crate) fn plan_warnings(plan: &ActionPlan) -> Markup {
    let mut warnings: Vec<String> = plan
        .notes
        .iter()
        .filter(|note| matches!(note, PlanNote::PathReachedNothing { .. }))
        .map(ToString::to_string)
        .collect();
    if let PlanOutcome::Skipped {
        reason: SkipReason::Invalid { error },
    } = &plan.outcome
    {
        warnings.push(format!("skipped: {error}"));
    }
    html! {
        @if !warnings.is_empty() {
            ul class="warnings" {
                @for w in &warnings { li class="warning" role="note" { "⚠ " (w) } }
            }
        }
    }
}

fn preview(rehearsal: &Rehearsal, sample: Option<&Event>) -> Markup {
    html! {
        @if sample.is_none() {
            p class="muted" { "No event of this type received yet: send one to preview with it." }
        }
        @if !rehearsal.errors.is_empty() {
            ul class="preview-errors" {
                @for e in &rehearsal.errors {
                    li class="field-error" {
                        @if !e.pointer.is_empty() { code { (e.pointer.trim_start_matches('/')) } ": " }
                        (e.message)
                    }
                }
            }
        }
        @if let Some(refused) = &rehearsal.refused {
            p class="field-error" { "The sample could not be run through this source: " (refused) }
        }
        @if !rehearsal.values.is_empty() {
            table class="resolved" aria-label="Resolved values" {
                thead { tr { th scope="col" { "Parameter" } th scope="col" { "Path" } th scope="col" { "Value in the sample" } } }
                tbody {
                    @for r in &rehearsal.values {
                        tr data-parameter=(r.parameter) {
                            td { code { (r.parameter) } }
                            td { code { (r.path) } @if r.default { " " span class="muted" { "(default)" } } }
                            td {
                                @match &r.value {
                                    Some(v) => code class="value" { (compact(v)) },
                                    None => span class="muted" { "nothing" },
                                }
                            }
                        }
                    }
                }
            }
        }
        @for plan in &rehearsal.plans {
            div class="plan" data-status=(if plan.is_planned() { "planned" } else { "skipped" }) {
                p {
                    (layout::badge(if plan.is_planned() { "planned" } else { "skipped" }))
                    " " code { (plan.action.as_str()) }
                }
                (plan_warnings(plan))
                (layout::json_block(&serde_json::to_value(plan).unwrap_or_default(), "Planned action"))
            }
        }
    }
}

/// A value on one line, cut at 200 characters.
fn compact(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The newest event of `event_type` in this source environment.
async fn newest_sample(
    state: &ConsoleState,
    source: &str,
    environment: &str,
    event_type: &str,
) -> Result<Option<Event>, ConsoleError> {
    if event_type.is_empty() {
        return Ok(None);
    }
    let store = state.queries();
    // When the type was last seen bounds the search to the newest entries,
    // however rare the type is in a long log.
    let Some(last_seen) = store
        .known_event_types(source, environment)
        .await?
        .into_iter()
        .find(|t| t.event_type == event_type)
        .map(|t| t.last_seen_at)
    else {
        return Ok(None);
    };
    let filter = EventFilter {
        source: Some(source.to_owned()),
        environment: Some(environment.to_owned()),
        event_type: Some(event_type.to_owned()),
        since: Some(last_seen - chrono::Duration::seconds(1)),
        ..EventFilter::default()
    };
    let page = store.list_events(&filter, None, 1).await?;
    let Some(record) = page.items.into_iter().next() else {
        return Ok(None);
    };
    Ok(store
        .event_detail(record.id)
        .await?
        .and_then(|d| d.event.event))
}

/// The sample event's JSON as a tree whose keys are buttons that put their
/// path into the focused parameter.
fn picker(sample: &Event) -> Markup {
    html! {
        div class="picker" role="group" aria-labelledby="picker-heading" {
            h2 id="picker-heading" { "Fields of the newest " code { (sample.event) } }
            p class="muted small" {
                "Focus a parameter, then choose a field: its path goes into that parameter. "
                span id="pick-target" aria-live="polite" {}
            }
            (tree(&sample.raw, "", 0))
        }
    }
}

/// The path of `key` under `parent`, or `None` when a dot path cannot
/// name it (a key with a dot, an empty key).
fn child_path(parent: &str, key: &str) -> Option<String> {
    if key.is_empty() || key.contains('.') || key.starts_with('$') || key.trim() != key {
        return None;
    }
    Some(if parent.is_empty() {
        // `data.`, `headers.` and `body.` at the top read other things;
        // a body member with such a name is reached through `body.`.
        if ["data", "headers", "body"].contains(&key) {
            format!("body.{key}")
        } else {
            key.to_owned()
        }
    } else {
        format!("{parent}.{key}")
    })
}

fn tree(value: &Value, path: &str, depth: usize) -> Markup {
    let members: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    html! {
        ul class="tree" {
            @for (key, child) in members.iter().take(PICKER_MEMBERS) {
                @let child_path = child_path(path, key);
                li {
                    @match &child_path {
                        Some(p) => button type="button" class="pick" data-path=(p)
                            aria-label={ "Use " (p) } { (key) },
                        None => code class="unpickable" { (key) },
                    }
                    @match child {
                        Value::Object(_) | Value::Array(_) => {
                            @if depth < PICKER_DEPTH {
                                @if let Some(p) = &child_path { (tree(child, p, depth + 1)) }
                            } @else {
                                span class="muted" { " …" }
                            }
                        }
                        scalar => { ": " code class="value" { (compact(scalar)) } }
                    }
                }
            }
            @if members.len() > PICKER_MEMBERS {
                li class="muted" { "… " (members.len() - PICKER_MEMBERS) " more" }
            }
        }
    }
}

struct FormPage<'a> {
    source: &'a str,
    environment: &'a str,
    kind: SourceKind,
    /// The mapping being edited (`None`: a new one).
    editing: Option<&'a str>,
    /// Parameters of the stored mapping this form does not edit.
    kept: Vec<(String, Value)>,
    event_types: Vec<String>,
}

fn form_page(
    session: &Session,
    page: &FormPage<'_>,
    form: &MappingForm,
    errors: &FieldErrors,
    sample: Option<&Event>,
    rehearsal: &Rehearsal,
) -> Markup {
    let base = environment_path(page.source, page.environment);
    let action = form.action();
    let params = action.map(action_parameters).unwrap_or_default();
    let mut shown: Vec<String> = vec!["id".into(), "event".into(), "action".into()];
    shown.extend(params.iter().map(|p| format!("{PARAM}{}", p.name)));
    let shown_refs: Vec<&str> = shown.iter().map(String::as_str).collect();
    let (title, submit_to) = match page.editing {
        Some(id) => (
            format!("Edit mapping {id}"),
            format!("{base}/mappings/{}/edit", encode(id)),
        ),
        None => ("New mapping".to_owned(), format!("{base}/mappings")),
    };
    let choose_to = match page.editing {
        Some(id) => format!("{base}/mappings/{}/edit", encode(id)),
        None => format!("{base}/new-mapping"),
    };
    let content = html! {
        p class="muted" {
            a href=(layout::link("/sources")) { "Sources" } " / "
            a href=(base) { (page.source) " / " (page.environment) } " / " (title)
        }
        h1 { (title) }
        (errors.notice(&shown_refs))
        div class="mapping-layout" {
            div {
                form method="get" action=(choose_to) class="panel choose" {
                    div class="field" {
                        label for="c-event" { "Event type" }
                        @if page.editing.is_some() || page.event_types.is_empty() {
                            input type="text" id="c-event" name="event" value=(form.event);
                        } @else {
                            select id="c-event" name="event" {
                                @if !page.event_types.contains(&form.event) {
                                    option value=(form.event) selected { (if form.event.is_empty() { "Choose…" } else { form.event.as_str() }) }
                                }
                                @for t in &page.event_types {
                                    option value=(t) selected[*t == form.event] { (t) }
                                }
                            }
                        }
                    }
                    div class="field" {
                        label for="c-action" { "Action" }
                        select id="c-action" name="action" {
                            @if action.is_none() { option value="" selected { "Choose…" } }
                            @for a in ActionType::ALL {
                                option value=(a.as_str()) selected[Some(a) == action] { (a.as_str()) }
                            }
                        }
                    }
                    button type="submit" class="quiet" id="choose" { "Choose" }
                }
                @if let Some(action) = action {
                    form method="post" action=(submit_to) class="panel mapping" id="mapping-form"
                        data-preview={ (base) "/preview" } novalidate {
                        (layout::csrf_field(session))
                        input type="hidden" name="event" value=(form.event);
                        input type="hidden" name="action" value=(action.as_str());
                        input type="hidden" name="sample" value=(sample.map(|s| s.id.to_string()).unwrap_or_default());
                        @if let Some(id) = page.editing {
                            input type="hidden" name="id" value=(id);
                            input type="hidden" name="replacing" value=(id);
                            p { "Mapping " code { (id) } ": " code { (form.event) } " → " code { (action.as_str()) } }
                        } @else {
                            p { code { (form.event) } " → " code { (action.as_str()) } }
                            (forms::text_field("id", "Id (optional)", &form.id, errors,
                                Some("Left empty, it becomes event:action.")))
                        }
                        @for p in &params {
                            (param_field(p, form, errors))
                        }
                        @if !page.kept.is_empty() {
                            div class="kept" {
                                p class="muted" { "Kept as they are (change them through the API):" }
                                @for (k, v) in &page.kept {
                                    p { code { (k) } " = " code { (compact(v)) } }
                                }
                            }
                        }
                        p class="muted small" { "Paths are read from the event as received (" code { "properties.plan" } ", " code { "userId" } ", " code { "headers.x-name" } ")." }
                        button type="submit" id="save-mapping" { "Save mapping" }
                    }
                }
            }
            div {
                @if let Some(sample) = sample {
                    section class="panel" { (picker(sample)) }
                } @else if !form.event.is_empty() {
                    p class="panel muted" { "No " code { (form.event) } " event received yet: send one to pick its fields." }
                }
                @if action.is_some() {
                    section class="panel" aria-labelledby="preview-heading" {
                        h2 id="preview-heading" { "Preview" " " span class="live" hidden { "· updates as you type" } }
                        div id="preview" aria-live="polite" data-kind=(page.kind.as_str()) {
                            (preview(rehearsal, sample))
                        }
                    }
                }
            }
        }
    };
    layout::page(&title, Nav::Sources, session, content)
}

fn param_field(p: &ActionParameter, form: &MappingForm, errors: &FieldErrors) -> Markup {
    let name = format!("{PARAM}{}", p.name);
    let id = format!("f-p-{}", p.name);
    let help_id = format!("{id}-help");
    let messages = errors.of(&name);
    let hint = if p.literal_key {
        "A literal key, as the product knows it.".to_owned()
    } else if let Some(default) = p.default_path {
        format!("A path; left empty, it reads {default}.")
    } else {
        "A path into the event.".to_owned()
    };
    html! {
        div class="field" {
            @if p.name == "create_audience" {
                div class="check" {
                    input type="checkbox" id=(id) name=(name) value="true" checked[form.param(p.name) == "true"];
                    label for=(id) { (p.name) }
                }
            } @else {
                label for=(id) { (p.name) @if p.required { " " span class="required" { "(required)" } } }
                input type="text" id=(id) name=(name) value=(form.param(p.name))
                    class=(if p.reads_path { "param-path" } else { "param-key" })
                    data-parameter=(p.name)
                    aria-invalid=[(!messages.is_empty()).then_some("true")]
                    aria-describedby=(help_id);
                (forms::field_help(&help_id, Some(&hint), messages))
            }
        }
    }
}

fn page_facts<'a>(
    state: &ConsoleState,
    source: &'a str,
    environment: &'a str,
) -> Result<FormPage<'a>, ConsoleError> {
    let (view, _) = config_view::environment(state.pipeline(), source, environment)
        .ok_or_else(|| not_found(source, environment))?;
    if view.managed_by_file {
        return Err(ManageError::ManagedByFile(source.to_owned()).into());
    }
    Ok(FormPage {
        source,
        environment,
        kind: view.kind,
        editing: None,
        kept: Vec::new(),
        event_types: Vec::new(),
    })
}

async fn render(
    state: &ConsoleState,
    session: &Session,
    mut page: FormPage<'_>,
    mut form: MappingForm,
    errors: &FieldErrors,
) -> Result<Markup, ConsoleError> {
    page.event_types =
        super::environment::event_types_newest_first(state, page.source, page.environment)
            .await?
            .into_iter()
            .map(|t| t.event_type)
            .collect();
    let sample = newest_sample(state, page.source, page.environment, &form.event).await?;
    form.sample = sample
        .as_ref()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    let rehearsal = if form.action().is_some() {
        rehearse(
            state,
            (page.source, page.environment),
            page.editing,
            &form.document(),
            sample.as_ref(),
        )
        .await?
    } else {
        Rehearsal::default()
    };
    Ok(form_page(
        session,
        &page,
        &form,
        errors,
        sample.as_ref(),
        &rehearsal,
    ))
}

/// `GET /sources/{source}/environments/{environment}/new-mapping`: the
/// form (`?event=` and `?action=` choose what it maps).
pub(crate) async fn new_form(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let page = page_facts(&state, &source, &environment)?;
    let form = MappingForm::from_pairs(query);
    let markup = render(&state, &session, page, form, &FieldErrors::default()).await?;
    Ok(html(markup).into_response())
}

/// `POST /sources/{source}/environments/{environment}/mappings`: creates
/// the mapping; a refusal shows the form again with each message beside
/// its field.
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let page = page_facts(&state, &source, &environment)?;
    let form = MappingForm::from_pairs(pairs);
    let result = state
        .manager()
        .create_mapping(
            state.actor(),
            &source,
            &environment,
            None,
            Value::Object(form.document()),
        )
        .await;
    match result {
        Ok(committed) => {
            tracing::info!(
                source,
                environment,
                revision = committed.revision,
                "Mapping created from the console."
            );
            Ok(Redirect::to(&environment_path(&source, &environment)).into_response())
        }
        Err(e) => refused(&state, &session, page, form, e).await,
    }
}

async fn refused(
    state: &ConsoleState,
    session: &Session,
    page: FormPage<'_>,
    form: MappingForm,
    e: ManageError,
) -> Result<Response, ConsoleError> {
    let status = error::manage_status(&e);
    let Some(errors) = FieldErrors::from_refusal(&e, field_of) else {
        return Err(e.into());
    };
    let markup = render(state, session, page, form, &errors).await?;
    Ok((status, html(markup)).into_response())
}

async fn stored_mapping(
    state: &ConsoleState,
    source: &str,
    environment: &str,
    id: &str,
) -> Result<Value, ConsoleError> {
    Ok(state.manager().mapping(source, environment, id).await?)
}

fn kept_parameters(mapping: &Value) -> Vec<(String, Value)> {
    mapping
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            !["id", "event", "action", "active"].contains(&k.as_str())
                && !matches!(v, Value::String(_) | Value::Bool(_))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `GET /sources/{source}/environments/{environment}/mappings/{mapping}/edit`.
pub(crate) async fn edit_form(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment, id)): Path<(String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let mut page = page_facts(&state, &source, &environment)?;
    let current = stored_mapping(&state, &source, &environment, &id).await?;
    page.editing = Some(&id);
    page.kept = kept_parameters(&current);
    let mut form = MappingForm::from_mapping(&current);
    // The choose form may change the event type or the action.
    let chosen = MappingForm::from_pairs(query);
    if !chosen.event.is_empty() {
        form.event = chosen.event;
    }
    if !chosen.action.is_empty() {
        form.action = chosen.action;
    }
    let markup = render(&state, &session, page, form, &FieldErrors::default()).await?;
    Ok(html(markup).into_response())
}

/// `POST /sources/{source}/environments/{environment}/mappings/{mapping}/edit`:
/// changes the mapping with a merge patch (its switch stays as it is).
pub(crate) async fn update(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((source, environment, id)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let mut page = page_facts(&state, &source, &environment)?;
    let current = stored_mapping(&state, &source, &environment, &id).await?;
    page.editing = Some(&id);
    page.kept = kept_parameters(&current);
    let mut form = MappingForm::from_pairs(pairs);
    form.id = id.clone();
    let result = state
        .manager()
        .update_mapping(
            state.actor(),
            &source,
            &environment,
            &id,
            None,
            form.patch(&current),
        )
        .await;
    match result {
        Ok(_) => Ok(Redirect::to(&environment_path(&source, &environment)).into_response()),
        Err(e) => refused(&state, &session, page, form, e).await,
    }
}

/// `POST /sources/{source}/environments/{environment}/mappings/{mapping}/delete`.
pub(crate) async fn delete(
    State(state): State<ConsoleState>,
    Path((source, environment, id)): Path<(String, String, String)>,
) -> Result<Response, ConsoleError> {
    state
        .manager()
        .delete_mapping(state.actor(), &source, &environment, &id, None)
        .await?;
    Ok(Redirect::to(&environment_path(&source, &environment)).into_response())
}

/// `GET /sources/{source}/environments/{environment}/preview`: the
/// preview's fragment for the form's fields (`?replacing=` when editing),
/// for the page's script. Changes nothing.
pub(crate) async fn preview_fragment(
    State(state): State<ConsoleState>,
    Path((source, environment)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let replacing = query
        .iter()
        .find(|(k, _)| k == "replacing")
        .map(|(_, v)| v.clone());
    let form = MappingForm::from_pairs(query);
    let sample = newest_sample(&state, &source, &environment, &form.event).await?;
    let mut proposal = form.document();
    if replacing.is_some() {
        proposal.remove("id");
    }
    let rehearsal = rehearse(
        &state,
        (&source, &environment),
        replacing.as_deref(),
        &proposal,
        sample.as_ref(),
    )
    .await?;
    Ok(html(preview(&rehearsal, sample.as_ref())).into_response())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn picked_paths_read_what_was_clicked() {
        assert_eq!(child_path("", "userId").as_deref(), Some("userId"));
        assert_eq!(
            child_path("properties", "plan").as_deref(),
            Some("properties.plan")
        );
        assert_eq!(child_path("", "data").as_deref(), Some("body.data"));
        assert_eq!(child_path("", "a.b"), None);
        assert_eq!(child_path("", ""), None);
    }

    #[test]
    fn an_edit_removes_emptied_and_foreign_parameters_and_keeps_constants() {
        let current = json!({"id": "m", "event": "E", "action": "trigger_workflow",
            "workflow": "w", "actor": "userId", "tenant": {"value": "t1"}, "user_id": "x", "active": true});
        let form = MappingForm::from_pairs(vec![
            ("event".into(), "E".into()),
            ("action".into(), "trigger_workflow".into()),
            ("p.workflow".into(), "w2".into()),
            ("p.actor".into(), String::new()),
        ]);
        assert_eq!(
            form.patch(&current),
            json!({"event": "E", "action": "trigger_workflow", "workflow": "w2",
                "actor": null, "user_id": null})
        );
    }

    proptest! {
        #[test]
        fn any_form_gives_a_document_without_panicking(
            pairs in proptest::collection::vec(("[a-z_.]{0,12}", "\\PC{0,16}"), 0..12),
        ) {
            let form = MappingForm::from_pairs(pairs);
            let doc = form.document();
            prop_assert!(doc.contains_key("event"));
        }

        #[test]
        fn a_picked_path_is_a_dot_path_that_names_its_key(
            parent in "([a-z]{1,6}(\\.[a-z]{1,6}){0,2})?",
            key in "\\PC{0,12}",
        ) {
            if let Some(p) = child_path(&parent, &key) {
                prop_assert!(p.ends_with(&key));
                prop_assert!(FieldPath::compile(&p, tributary_core::path::DataAlias::EventData).is_ok());
            }
        }
    }
}
