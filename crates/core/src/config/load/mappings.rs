//! A source environment's `mappings`: the event, the action and the action's
//! parameters (which apply, which are required, how each is read: `params`).

use std::collections::HashMap;

use serde_json::Value;

use super::{Cx, to_json};
use crate::{
    ActionType, FieldPath,
    config::{
        model::*,
        params::{self, Form, Need, Param},
        raw::*,
    },
    path::DataAlias,
};

impl Cx<'_> {
    pub(super) fn mappings(
        &mut self,
        raw: &[S<RawMapping>],
        field: &str,
        alias: DataAlias,
    ) -> Vec<Mapping> {
        let mut out = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (i, m) in raw.iter().enumerate() {
            let field = format!("{field}.mappings[{i}]");
            let before = self.errors.len();
            let Some(mut mapping) = self.mapping(m, &field, alias) else {
                debug_assert!(
                    self.errors.len() > before,
                    "{field} dropped without an error"
                );
                continue;
            };
            match &m.get_ref().id {
                Some(id) => {
                    if let Some(first) = ids.get(&mapping.id) {
                        self.error(
                            id.span(),
                            format!("{field}.id"),
                            format!(
                                "duplicate mapping id `{}` (also mappings[{first}])",
                                mapping.id
                            ),
                        );
                    }
                }
                None => {
                    // A derived id must stay stable as the file grows, so it
                    // counts only earlier mappings with the same event and action.
                    let base = mapping.id.clone();
                    let mut n = 1;
                    while ids.contains_key(&mapping.id) {
                        n += 1;
                        mapping.id = format!("{base}#{n}");
                    }
                }
            }
            ids.insert(mapping.id.clone(), i);
            out.push(mapping);
        }
        out
    }

    pub(super) fn mapping(
        &mut self,
        raw: &S<RawMapping>,
        field: &str,
        alias: DataAlias,
    ) -> Option<Mapping> {
        let span = raw.span();
        let raw = raw.get_ref();
        let event = match &raw.event {
            Some(e) if !e.get_ref().is_empty() => Some(e.get_ref().clone()),
            Some(e) => {
                self.error(e.span(), format!("{field}.event"), "is empty");
                None
            }
            None => {
                self.error(
                    span.clone(),
                    format!("{field}.event"),
                    "is required: the event type this mapping matches",
                );
                None
            }
        };
        let action = match &raw.action {
            Some(a) => match a.get_ref().parse::<ActionType>() {
                Ok(action) => Some(action),
                Err(e) => {
                    self.error(a.span(), format!("{field}.action"), e.to_string());
                    None
                }
            },
            None => {
                self.error(span.clone(), format!("{field}.action"), "is required");
                None
            }
        };
        let (event, action) = (event?, action?);
        let spec = params::spec(action);
        let mut params = MappingParams::default();
        let mut ok = true;
        for &param in Param::ALL {
            let (name, value) = (param.name(), raw.param(param));
            let need = spec
                .iter()
                .find(|(p, _)| *p == param)
                .map(|(_, need)| *need);
            let param_field = format!("{field}.{name}");
            let Some(need) = need else {
                if let Some(v) = value {
                    let takes: Vec<_> = spec.iter().map(|(p, _)| p.name()).collect();
                    self.error(
                        v.span(),
                        param_field,
                        format!(
                            "`{name}` does not apply to `{action}`; it takes {}",
                            takes.join(", ")
                        ),
                    );
                    ok = false;
                }
                continue;
            };
            // Booleans and field tables are read below, once applicability is known.
            if matches!(param.form(), Form::Bool | Form::Fields) {
                continue;
            }
            let source = match (value, need) {
                (Some(v), _) => self.param(v, param, &param_field, alias),
                (None, Need::Default(path)) => {
                    FieldPath::compile(path, alias).ok().map(ValueSource::Path)
                }
                (None, Need::Required) => {
                    self.error(
                        span.clone(),
                        param_field,
                        format!("`{action}` needs `{name}`"),
                    );
                    ok = false;
                    continue;
                }
                (None, Need::Optional) => continue,
            };
            let Some(source) = source else {
                ok = false;
                continue;
            };
            // Flags and field tables were skipped above, so every parameter
            // here has a slot.
            if let Some(slot) = params.slot(param) {
                *slot = Some(source);
            }
        }
        if let Some(v) = &raw.create_audience {
            match v.get_ref() {
                toml::Value::Boolean(b) if action == ActionType::AddAudienceMember => {
                    params.create_audience = *b;
                }
                toml::Value::Boolean(_) => {}
                _ => {
                    self.error(
                        v.span(),
                        format!("{field}.create_audience"),
                        "expected true or false",
                    );
                    ok = false;
                }
            }
        }
        if let Some(fields) = &raw.data_fields
            && spec.iter().any(|(p, _)| *p == Param::DataFields)
        {
            params.data_fields =
                self.data_fields(fields, &format!("{field}.data_fields"), alias)?;
        }
        if !ok {
            return None;
        }
        Some(Mapping {
            id: raw
                .id
                .as_ref()
                .map_or_else(|| format!("{event}:{action}"), |i| i.get_ref().clone()),
            event,
            action,
            active: raw.active.as_ref().is_none_or(|a| *a.get_ref()),
            params,
        })
    }

    pub(super) fn param(
        &mut self,
        value: &S<toml::Value>,
        param: Param,
        field: &str,
        alias: DataAlias,
    ) -> Option<ValueSource> {
        let name = param.name();
        match (value.get_ref(), param.form()) {
            (_, Form::Bool | Form::Fields) => None,
            (toml::Value::String(s), Form::Path) => self
                .path(&S::new(value.span(), s.clone()), field, alias)
                .map(ValueSource::Path),
            (toml::Value::String(s), Form::Key) => {
                if s.is_empty() {
                    self.error(value.span(), field, "is empty");
                    return None;
                }
                Some(ValueSource::Literal(Value::String(s.clone())))
            }
            (toml::Value::Table(t), _) => {
                let path = t.get("path");
                let literal = t.get("value");
                let extra: Vec<_> = t
                    .keys()
                    .filter(|k| *k != "path" && *k != "value")
                    .cloned()
                    .collect();
                match (path, literal) {
                    (Some(toml::Value::String(p)), None) if extra.is_empty() => self
                        .path(&S::new(value.span(), p.clone()), field, alias)
                        .map(ValueSource::Path),
                    (None, Some(v)) if extra.is_empty() => Some(ValueSource::Literal(to_json(v))),
                    _ => {
                        self.error(
                            value.span(),
                            field,
                            "write a path as a string or `{ path = \"...\" }`, or a constant as `{ value = ... }`",
                        );
                        None
                    }
                }
            }
            (other, Form::Path) => Some(ValueSource::Literal(to_json(other))),
            (_, Form::Key) => {
                self.error(
                    value.span(),
                    field,
                    format!("expected a `{name}` key as a string, or `{{ path = \"...\" }}`"),
                );
                None
            }
        }
    }

    pub(super) fn data_fields(
        &mut self,
        value: &S<toml::Value>,
        field: &str,
        alias: DataAlias,
    ) -> Option<Vec<(String, ValueSource)>> {
        let toml::Value::Table(t) = value.get_ref() else {
            self.error(
                value.span(),
                field,
                "expected a table of name = \"path\" pairs",
            );
            return None;
        };
        let mut out = Vec::with_capacity(t.len());
        let mut ok = true;
        for (name, v) in t {
            let spanned = S::new(value.span(), v.clone());
            match self.param(&spanned, Param::Data, &format!("{field}.{name}"), alias) {
                Some(source) => out.push((name.clone(), source)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}
