//! Loading and validating the configuration file.
//!
//! Syntax and type errors come from the TOML parser, which stops at the first;
//! everything else (unknown keys, unknown actions, paths that do not compile,
//! duplicate keys or tokens, missing parameters, unset `${ENV}` references) is
//! collected so one run of `check-config` lists every problem with its line.
//!
//! This file holds the entry points and the validation state (`Cx`) with its
//! shared readers (secrets, tokens, paths, durations); each part of the file
//! has a module: `settings` (server, store, admin, workers, environments),
//! `sources` (sources and their source environments), `verification` and
//! `mappings`.

use std::{fmt, ops::Range, time::Duration};

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use super::{
    env_ref::expand_env_refs,
    model::*,
    parse_duration,
    raw::*,
    template::{TemplateLookup, apply_templates, no_templates},
};
use crate::{FieldPath, Secret, path::DataAlias};

mod mappings;
mod settings;
mod sources;
mod verification;

/// One problem in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file's name as given to [`load`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted field path, e.g. `sources[0].environments.production.mappings[2].action`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// Every problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Shortest accepted ingestion token: 22 base62 characters carry 128 bits.
pub const MIN_TOKEN_CHARS: usize = 22;

/// Parses and validates `text` (the contents of `file`). `env` resolves
/// `${NAME}` references; pass `|n| std::env::var(n).ok()` in a binary.
pub fn load(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    load_with_templates(file, text, env, &no_templates)
}

/// [`load`], where a `[[sources]]` table may name a template
/// (`template = "stripe"`) that `templates` finds: the table starts from
/// the template's defaults (the `template` module's docs). A binary passes
/// `tributary_templates::lookup`.
pub fn load_with_templates(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    templates: TemplateLookup<'_>,
) -> Result<Config, ConfigErrors> {
    let mut cx = Cx::new(file, text, env);
    let mut root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            cx.toml_error(&e);
            return Err(cx.finish());
        }
    };
    for problem in apply_templates(root.get_mut(), templates) {
        cx.error(problem.span, problem.field, problem.message);
    }
    let mut unknown = Vec::new();
    let de = toml::Deserializer::from(root.clone());
    let raw: RawConfig = match serde_ignored::deserialize(de, |path| unknown.push(segments(&path)))
    {
        Ok(raw) => raw,
        Err(e) => {
            cx.toml_error(&e);
            return Err(cx.finish());
        }
    };
    for path in unknown {
        let span = find_span(root.get_ref(), &path).unwrap_or(0..0);
        let (field, key) = match path.split_last() {
            Some((key, parent)) => (display_path(parent), key.clone()),
            None => (String::new(), String::new()),
        };
        let field = if field.is_empty() {
            key.clone()
        } else {
            format!("{field}.{key}")
        };
        cx.error(span, field, format!("unknown key `{key}`"));
    }
    let config = cx.config(raw);
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(cx.finish())
    }
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    };
    match path {
        Path::Seq { index, .. } => out.push(index.to_string()),
        // Spanned<T> travels through serde as a struct with private keys.
        Path::Map { key, .. } if !key.starts_with("$__") => out.push(key.clone()),
        _ => {}
    }
    out
}

fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn find_span(table: &DeTable<'_>, path: &[String]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (key, value) = table.iter().find(|(k, _)| k.get_ref() == first)?;
    if rest.is_empty() {
        return Some(key.span());
    }
    find_in_value(value.get_ref(), rest).or_else(|| Some(key.span()))
}

fn find_in_value(value: &DeValue<'_>, path: &[String]) -> Option<Range<usize>> {
    match value {
        DeValue::Table(t) => find_span(t, path),
        DeValue::Array(items) => {
            let (first, rest) = path.split_first()?;
            let item = items.get(first.parse::<usize>().ok()?)?;
            if rest.is_empty() {
                Some(item.span())
            } else {
                find_in_value(item.get_ref(), rest)
            }
        }
        _ => None,
    }
}

/// Validation state: the text (for line numbers), the environment, the errors so far.
pub(super) struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<(usize, ConfigError)>,
}

impl<'a> Cx<'a> {
    fn new(file: &'a str, text: &'a str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            file,
            text,
            env,
            errors: Vec::new(),
        }
    }

    fn finish(self) -> ConfigErrors {
        let mut errors = self.errors;
        errors.sort_by_key(|(offset, _)| *offset);
        ConfigErrors(errors.into_iter().map(|(_, e)| e).collect())
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = self.text[line_start..]
            .char_indices()
            .take_while(|(i, _)| line_start + i < offset)
            .count()
            + 1;
        (line, column)
    }

    /// The 1-based line where the text of the string value at `span` starts:
    /// TOML drops a newline right after a multi-line string's opening quotes.
    pub(super) fn string_first_line(&self, span: &Range<usize>) -> usize {
        let (line, _) = self.position(span.start);
        let value = self.text.get(span.clone()).unwrap_or_default();
        let opened = value
            .strip_prefix("'''")
            .or_else(|| value.strip_prefix("\"\"\""));
        match opened {
            Some(rest) if rest.starts_with('\n') || rest.starts_with("\r\n") => line + 1,
            _ => line,
        }
    }

    pub(super) fn error(
        &mut self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = self.position(span.start);
        self.errors.push((
            span.start,
            ConfigError {
                file: self.file.to_owned(),
                line,
                column,
                field: field.into(),
                message: message.into(),
            },
        ));
    }

    fn toml_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        self.error(span, "", e.message().trim().to_owned());
    }

    /// Replaces every `${NAME}` in a string field (`expand_env_refs`); each
    /// problem is an error at the field.
    fn interpolate(&mut self, value: &S<String>, field: &str) -> Option<String> {
        match expand_env_refs(value.get_ref(), self.env) {
            Ok(text) => Some(text),
            Err(problems) => {
                for problem in problems {
                    self.error(value.span(), field, problem.to_string());
                }
                None
            }
        }
    }

    pub(super) fn secret(&mut self, value: &S<String>, field: &str) -> Option<Secret> {
        let v = self.interpolate(value, field)?;
        if v.is_empty() {
            self.error(value.span(), field, "is empty");
            return None;
        }
        Some(Secret::new(v))
    }

    fn token(&mut self, value: &S<String>, field: &str) -> Option<Secret> {
        self.secret(value, field).inspect(|s| {
            let v = s.expose();
            if v.len() < MIN_TOKEN_CHARS
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.error(
                    value.span(),
                    field,
                    format!(
                        "tokens are at least {MIN_TOKEN_CHARS} URL-safe characters (A-Z, a-z, 0-9, - and _) so they carry 128 random bits"
                    ),
                );
            }
        })
    }

    fn path(&mut self, value: &S<String>, field: &str, alias: DataAlias) -> Option<FieldPath> {
        match FieldPath::compile(value.get_ref(), alias) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(value.span(), field, e.to_string());
                None
            }
        }
    }

    fn duration(&mut self, value: &S<String>, field: &str) -> Option<Duration> {
        match parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(msg) => {
                self.error(value.span(), field, msg);
                None
            }
        }
    }

    /// A positive duration, or `default` when the key is absent.
    fn timeout(&mut self, value: Option<&S<String>>, field: &str, default: Duration) -> Duration {
        let Some(value) = value else {
            return default;
        };
        match self.duration(value, field) {
            Some(d) if d.is_zero() => {
                self.error(value.span(), field, "must be longer than zero");
                default
            }
            Some(d) => d,
            None => default,
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(&raw.server);
        let store = self.store(&raw.store);
        let admin = self.admin(&raw.admin);
        let environments = self.environments(&raw.environments);
        let workers = self.workers(&raw.workers);
        let sources = self.sources(&raw.sources, &raw.environments, &environments);
        self.check_unique_credentials(&raw);
        Config {
            server,
            store,
            admin,
            workers,
            environments,
            sources,
        }
    }
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A TOML value as JSON (datetimes as their text).
pub fn to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}
