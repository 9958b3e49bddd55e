//! Forms that change the configuration: the management layer's refusals
//! turned into messages beside the field they name, and the labelled
//! inputs that show them.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tributary_manage::ManageError;

/// Messages by form field; `""` holds those that name no field.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// The refusal's messages, each under the form field its JSON pointer
    /// names (`field_of` maps a pointer to a field; `None`: the whole form).
    /// `None` when the refusal is not about what was sent (a missing source,
    /// the store), which the caller shows as an error page.
    pub(crate) fn from_refusal(
        e: &ManageError,
        field_of: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let mut errors = Self::default();
        match e {
            ManageError::Invalid(list) => {
                for d in list {
                    errors.add(field_of(&d.pointer), d.message.clone());
                }
            }
            ManageError::Conflict { pointer, message } => {
                errors.add(field_of(pointer), message.clone());
            }
            ManageError::ManagedByFile(_) | ManageError::Stale { .. } => {
                errors.add(None, e.to_string());
            }
            ManageError::NotFound { .. } | ManageError::Store(_) => return None,
        }
        Some(errors)
    }

    /// Adds a message for `field` (`None`: the whole form).
    pub(crate) fn add(&mut self, field: Option<String>, message: String) {
        self.0
            .entry(field.unwrap_or_default())
            .or_default()
            .push(message);
    }

    /// The messages of one field.
    pub(crate) fn of(&self, field: &str) -> &[String] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    /// The messages no field shows: those for the whole form and those for a
    /// field the form does not have (listed with the field's name).
    pub(crate) fn general(&self, shown: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(field, _)| !shown.contains(&field.as_str()))
            .flat_map(|(field, messages)| {
                messages.iter().map(move |m| {
                    if field.is_empty() {
                        m.clone()
                    } else {
                        format!("{field}: {m}")
                    }
                })
            })
            .collect()
    }

    /// A notice listing the messages no field shows.
    pub(crate) fn notice(&self, shown: &[&str]) -> Markup {
        let general = self.general(shown);
        html! {
            @if !general.is_empty() {
                div class="notice error" role="alert" {
                    @for m in &general { p { (m) } }
                }
            }
        }
    }
}

/// The form field a JSON pointer into a source names (`/key`, `/kind`, ...):
/// its first segment.
pub(crate) fn first_segment(pointer: &str) -> Option<String> {
    let first = pointer.strip_prefix('/')?.split('/').next()?;
    (!first.is_empty()).then(|| first.replace("~1", "/").replace("~0", "~"))
}

/// A labelled text input with its messages, linked for screen readers.
pub(crate) fn text_field(
    name: &str,
    label: &str,
    value: &str,
    errors: &FieldErrors,
    hint: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let messages = errors.of(name);
    let described = format!("{id}-help");
    html! {
        div class="field" {
            label for=(id) { (label) }
            input type="text" id=(id) name=(name) value=(value)
                aria-invalid=[(!messages.is_empty()).then_some("true")]
                aria-describedby=[(hint.is_some() || !messages.is_empty()).then_some(described.as_str())];
            (field_help(&described, hint, messages))
        }
    }
}

/// The hint and the messages under a field.
pub(crate) fn field_help(id: &str, hint: Option<&str>, messages: &[String]) -> Markup {
    html! {
        @if hint.is_some() || !messages.is_empty() {
            div id=(id) {
                @if let Some(h) = hint { p class="hint muted" { (h) } }
                @for m in messages { p class="field-error" { (m) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tributary_core::config::DocumentError;

    use super::*;

    proptest! {
        #[test]
        fn a_pointer_names_its_first_segment_unescaped(segment in "[^/]{1,12}", rest in "(/[^/]{0,6}){0,3}") {
            let pointer = format!("/{}{rest}", segment.replace('~', "~0"));
            prop_assert_eq!(first_segment(&pointer), Some(segment));
        }

        #[test]
        fn any_pointer_is_read_without_panicking(pointer in "\\PC{0,24}") {
            let _ = first_segment(&pointer);
        }
    }

    #[test]
    fn refusals_land_under_the_field_their_pointer_names() {
        let e = ManageError::Invalid(vec![
            DocumentError {
                pointer: "/key".into(),
                message: "bad key".into(),
            },
            DocumentError {
                pointer: "/environments/development/token".into(),
                message: "short".into(),
            },
            DocumentError {
                pointer: String::new(),
                message: "whole".into(),
            },
        ]);
        let errors = FieldErrors::from_refusal(&e, first_segment).unwrap();
        assert_eq!(errors.of("key"), ["bad key"]);
        assert_eq!(
            errors.general(&["key", "kind"]),
            ["whole", "environments: short"]
        );
        let missing = ManageError::NotFound {
            what: "source",
            id: "x".into(),
        };
        assert!(FieldErrors::from_refusal(&missing, first_segment).is_none());
    }
}
