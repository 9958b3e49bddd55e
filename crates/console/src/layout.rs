//! The page shell and the small pieces every page uses. maud escapes every
//! `(value)` it renders; nothing here uses `PreEscaped`, so an event name,
//! header or error text is always shown as text.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::{BASE_PATH, security::CSRF_FIELD, session::Session};

/// A path inside the console as a link (`/sources` -> `/console/sources`).
pub(crate) fn link(path: &str) -> String {
    format!("{BASE_PATH}{path}")
}

/// The top navigation's entries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Sources,
    Events,
    Actions,
    Revisions,
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            @if let Some(token) = csrf {
                meta name="csrf-token" content=(token);
            }
            title { (title) " · Tributary console" }
            link rel="stylesheet" href=(link("/assets/console.css"));
            script src=(link("/assets/console.js")) defer {}
        }
    }
}

/// A page for a signed-in operator: navigation, sign-out, content.
pub(crate) fn page(title: &str, nav: Nav, session: &Session, content: Markup) -> Markup {
    let csrf = session.csrf.expose();
    let item = |target: Nav, path: &str, label: &str| {
        html! {
            li {
                a href=(link(path)) aria-current=[(nav == target).then_some("page")] { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(csrf)))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href=(link("/sources")) { "Tributary" }
                    nav aria-label="Main" {
                        ul {
                            (item(Nav::Sources, "/sources", "Sources"))
                            (item(Nav::Events, "/events", "Events"))
                            (item(Nav::Actions, "/actions", "Actions"))
                            (item(Nav::Revisions, "/revisions", "Revisions"))
                        }
                    }
                    form method="post" action=(link("/sign-out")) class="sign-out" {
                        (csrf_field(session))
                        button type="submit" class="quiet" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    (content)
                }
            }
        }
    }
}

/// A page without navigation (sign-in, errors).
pub(crate) fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body class="bare" {
                main id="main" class="narrow" { (content) }
            }
        }
    }
}

/// The hidden CSRF field every form of a signed-in page carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf.expose()); }
}

/// A "Copy" button for the text of the element `target` (hidden until the
/// script shows it: without JavaScript it could not work).
pub(crate) fn copy_button(target: &str, what: &str) -> Markup {
    html! {
        button type="button" class="copy quiet" data-copy-target=(target) hidden
            aria-label={ "Copy " (what) } { "Copy" }
    }
}

/// A "Copy" button for a secret: shown only once the secret is revealed.
pub(crate) fn copy_after_reveal_button(target: &str, what: &str) -> Markup {
    html! {
        button type="button" class="copy quiet after-reveal" data-copy-target=(target) hidden
            aria-label={ "Copy " (what) } { "Copy" }
    }
}

/// A time as UTC text in a `<time>` element.
pub(crate) fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

/// An optional time, or a dash.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span class="muted" { "never" } },
    }
}

/// A status as a coloured badge (`accepted`, `failed`, ...).
pub(crate) fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (status) } { (status) } }
}

/// A verification outcome as a badge; a failed one stands out.
pub(crate) fn verification_badge(label: &str) -> Markup {
    let class = if label.ends_with(":failed") {
        "failed"
    } else {
        "verification"
    };
    html! { span class={ "badge " (class) } data-verification=(label) { (label) } }
}

/// Pretty JSON in a scrollable block.
pub(crate) fn json_block(value: &serde_json::Value, label: &str) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre class="json" tabindex="0" aria-label=(label) { code { (text) } } }
}

/// Plain text (a command, say) in a scrollable block.
pub(crate) fn text_block(text: &str, label: &str) -> Markup {
    html! { pre class="json" tabindex="0" aria-label=(label) { code { (text) } } }
}

/// A labelled input of a filter form (`kind` is the input type).
pub(crate) fn input_field(name: &str, label: &str, kind: &str, value: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div class="field" {
            label for=(id) { (label) }
            input type=(kind) id=(id) name=(name) value=(value);
        }
    }
}

/// A labelled choice of a filter form, with "Any" first.
pub(crate) fn select_field<'a>(
    name: &str,
    label: &str,
    options: impl IntoIterator<Item = &'a str>,
    current: &str,
) -> Markup {
    let id = format!("f-{name}");
    html! {
        div class="field" {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" { "Any" }
                @for o in options {
                    option value=(o) selected[current.trim() == o] { (o) }
                }
            }
        }
    }
}
