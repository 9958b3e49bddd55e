//! `template = "<key>"` in a `[[sources]]` table: the source starts from a
//! template's defaults, and whatever the table sets wins (docs/templates.md,
//! "How a template fills a source").
//!
//! The templates themselves live above core (`tributary-templates`); the
//! loader receives them as a lookup function, like the env lookup. A
//! template's defaults are given as TOML text with the keys of a
//! `[[sources]]` table (without `key` and `environments`) plus an
//! `[environment]` table that every source environment of the source starts
//! from. The text is parsed into the file's own parse tree before the file is
//! validated, so a source made from a template is checked by exactly the
//! rules and messages of a hand-written one; a problem in a value the
//! template supplied is reported at the table's `template` line.

use std::ops::Range;

use serde_json::{Map, Value};
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

/// Finds a template's defaults (TOML text, see the module docs) by key.
/// `tributary_templates::lookup` is the one the binaries pass.
pub type TemplateLookup<'a> = &'a dyn Fn(&str) -> Option<&'static str>;

/// A lookup that knows no template, for callers that have none.
pub fn no_templates(_: &str) -> Option<&'static str> {
    None
}

/// The key a `[[sources]]` table names its template with.
pub const TEMPLATE_KEY: &str = "template";

/// The table of a template's defaults every source environment starts from.
pub const ENVIRONMENT_DEFAULTS_KEY: &str = "environment";

/// A problem found while applying templates: where, which field, what.
pub(super) struct TemplateProblem {
    pub(super) span: Range<usize>,
    pub(super) field: String,
    pub(super) message: String,
}

/// Replaces every `template = "..."` of the root's `[[sources]]` tables by
/// the template's defaults, under what the table sets.
pub(super) fn apply_templates<'a>(
    root: &mut DeTable<'a>,
    templates: TemplateLookup<'_>,
) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    let Some(sources) = root.get_mut("sources") else {
        return problems;
    };
    let DeValue::Array(sources) = sources.get_mut() else {
        return problems;
    };
    for (i, source) in sources.iter_mut().enumerate() {
        let DeValue::Table(table) = source.get_mut() else {
            continue;
        };
        let Some(named) = table.remove(TEMPLATE_KEY) else {
            continue;
        };
        let field = format!("sources[{i}].{TEMPLATE_KEY}");
        let span = named.span();
        let Some(key) = named.get_ref().as_str() else {
            problems.push(TemplateProblem {
                span,
                field,
                message: "must be a template key, like \"stripe\"".to_owned(),
            });
            continue;
        };
        let Some(text) = templates(key) else {
            problems.push(TemplateProblem {
                span,
                field,
                message: format!(
                    "unknown template `{key}` (GET /api/v1/source_providers lists them)"
                ),
            });
            continue;
        };
        let defaults = match DeTable::parse(text) {
            Ok(d) => d.into_inner(),
            Err(e) => {
                problems.push(TemplateProblem {
                    span,
                    field,
                    message: format!("template `{key}` does not parse: {}", e.message().trim()),
                });
                continue;
            }
        };
        fill_table(table, defaults, &span);
    }
    problems
}

fn fill_table<'a>(table: &mut DeTable<'a>, mut defaults: DeTable<'a>, span: &Range<usize>) {
    let environment = defaults.remove(ENVIRONMENT_DEFAULTS_KEY);
    for (k, v) in defaults {
        if !table.contains_key(k.get_ref().as_ref()) {
            table.insert(Spanned::new(span.clone(), k.into_inner()), respan(v, span));
        }
    }
    let Some(environment) = environment else {
        return;
    };
    let DeValue::Table(environment) = environment.into_inner() else {
        return;
    };
    let Some(envs) = table.get_mut("environments") else {
        return;
    };
    let DeValue::Table(envs) = envs.get_mut() else {
        return;
    };
    for (_, env) in envs.iter_mut() {
        if let DeValue::Table(env) = env.get_mut() {
            fill_environment(env, environment.clone(), span);
        }
    }
}

/// A source environment keeps what it sets. Tables (verification, dedup)
/// are filled key by key, except a verification that names another scheme,
/// which replaces the template's whole (its keys belong to its scheme).
fn fill_environment<'a>(env: &mut DeTable<'a>, defaults: DeTable<'a>, span: &Range<usize>) {
    for (k, v) in defaults {
        let name = k.get_ref().as_ref();
        match env.get_mut(name) {
            None => {
                env.insert(Spanned::new(span.clone(), k.into_inner()), respan(v, span));
            }
            Some(own) => {
                let (DeValue::Table(own), DeValue::Table(default)) =
                    (own.get_mut(), v.into_inner())
                else {
                    continue;
                };
                if name == "verification"
                    && own.get("scheme").map(|s| s.get_ref().as_str())
                        != default.get("scheme").map(|s| s.get_ref().as_str())
                    && own.contains_key("scheme")
                {
                    continue;
                }
                for (dk, dv) in default {
                    if !own.contains_key(dk.get_ref().as_ref()) {
                        own.insert(
                            Spanned::new(span.clone(), dk.into_inner()),
                            respan(dv, span),
                        );
                    }
                }
            }
        }
    }
}

/// Positions in the template's text mean nothing in the file: every value
/// the template supplies is placed at the table's `template` key.
fn respan<'a>(value: Spanned<DeValue<'a>>, span: &Range<usize>) -> Spanned<DeValue<'a>> {
    let value = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(
            t.into_iter()
                .map(|(k, v)| (Spanned::new(span.clone(), k.into_inner()), respan(v, span)))
                .collect(),
        ),
        DeValue::Array(mut items) => {
            for item in items.iter_mut() {
                let taken = std::mem::replace(item, Spanned::new(0..0, DeValue::Boolean(false)));
                *item = respan(taken, span);
            }
            DeValue::Array(items)
        }
        other => other,
    };
    Spanned::new(span.clone(), value)
}

/// The same filling on a source document (the management API's form):
/// `table` with `template` removed, over the template's defaults, with the
/// `environment` defaults under each of `environments` (created when the
/// table has none). Values are copied, so a later change to the template
/// never reaches the document.
pub fn fill_document(
    table: &Map<String, Value>,
    defaults: &Map<String, Value>,
    environments: &[&str],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in defaults {
        if k != ENVIRONMENT_DEFAULTS_KEY {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in table {
        if k != TEMPLATE_KEY {
            out.insert(k.clone(), v.clone());
        }
    }
    let Some(Value::Object(env_defaults)) = defaults.get(ENVIRONMENT_DEFAULTS_KEY) else {
        return out;
    };
    let envs = out
        .entry("environments")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(envs) = envs else {
        return out;
    };
    for slug in environments {
        envs.entry(slug.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    for env in envs.values_mut() {
        let Value::Object(env) = env else { continue };
        for (k, v) in env_defaults {
            match (env.get_mut(k), v) {
                (None, _) => {
                    env.insert(k.clone(), v.clone());
                }
                (Some(Value::Object(own)), Value::Object(default)) => {
                    if k == "verification"
                        && own.contains_key("scheme")
                        && own.get("scheme") != default.get("scheme")
                    {
                        continue;
                    }
                    for (dk, dv) in default {
                        own.entry(dk.clone()).or_insert_with(|| dv.clone());
                    }
                }
                _ => {}
            }
        }
    }
    out
}
