//! Loading and validating the configuration file.
//!
//! Syntax and type errors come from the TOML parser, which stops at the first;
//! everything else (unknown keys, unknown actions, paths that do not compile,
//! duplicate keys or tokens, missing parameters, unset `${ENV}` references) is
//! collected so one run of `check-config` lists every problem with its line.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::SocketAddr,
    num::NonZeroU32,
    ops::Range,
    time::Duration,
};

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use super::{
    env_ref::expand_env_refs,
    model::*,
    params::{self, Form, Need},
    raw::*,
    sealed::SealingKey,
    template::{TemplateLookup, apply_templates, no_templates},
    verification::*,
};
use crate::{ActionType, FieldPath, Secret, path::DataAlias};

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

    fn retired_token(&mut self, raw: &S<RawRetiredToken>, field: &str) -> Option<RetiredToken> {
        let r = raw.get_ref();
        let token = match &r.token {
            Some(t) => self.token(t, &format!("{field}.token")),
            None => {
                self.error(raw.span(), format!("{field}.token"), "is required");
                None
            }
        };
        let until = match &r.until {
            Some(u) => {
                let text = match u.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Datetime(d) => d.to_string(),
                    _ => String::new(),
                };
                match chrono::DateTime::parse_from_rfc3339(&text) {
                    Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                    Err(_) => {
                        self.error(
                            u.span(),
                            format!("{field}.until"),
                            "must be an RFC 3339 time with an offset, like `2026-12-03T10:00:00Z`",
                        );
                        None
                    }
                }
            }
            None => {
                self.error(raw.span(), format!("{field}.until"), "is required");
                None
            }
        };
        Some(RetiredToken {
            token: token?,
            until: until?,
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
        let admin = AdminSettings {
            token: raw.admin.token.as_ref().and_then(|t| {
                let s = self.secret(t, "admin.token")?;
                if s.expose().len() < 16 {
                    self.error(t.span(), "admin.token", "must be at least 16 characters");
                }
                Some(s)
            }),
            console: raw.admin.console.as_ref().is_none_or(|c| *c.get_ref()),
        };
        let environments = raw
            .environments
            .iter()
            .filter_map(|(slug, env)| {
                let field = format!("environments.{slug}");
                if !valid_slug(slug) {
                    self.error(
                        env.span(),
                        &field,
                        "environment names use lowercase letters, digits, `-` and `_`",
                    );
                }
                let mut rate_limits = BTreeMap::new();
                for (name, limit) in &env.get_ref().rate_limits {
                    let at = format!("{field}.rate_limits.{name}");
                    let action = match name.parse::<ActionType>() {
                        Ok(a) => a,
                        Err(e) => {
                            self.error(limit.span(), at, e.to_string());
                            continue;
                        }
                    };
                    match u32::try_from(*limit.get_ref())
                        .ok()
                        .and_then(NonZeroU32::new)
                    {
                        Some(n) => {
                            rate_limits.insert(action, n);
                        }
                        None => self.error(
                            limit.span(),
                            at,
                            "must be a positive number of attempts per second",
                        ),
                    }
                }
                let sink = match &env.get_ref().sink {
                    None => SinkConfig::Local,
                    Some(s) => self.sink(s, &format!("{field}.sink"))?,
                };
                Some((slug.clone(), EnvironmentConfig { sink, rate_limits }))
            })
            .collect::<BTreeMap<_, _>>();
        let workers = self.workers(&raw.workers);
        let mut sources = Vec::new();
        let mut keys: HashMap<String, Range<usize>> = HashMap::new();
        for (i, source) in raw.sources.iter().enumerate() {
            let field = format!("sources[{i}]");
            if let Some(s) = self.source(source, &field, &raw.environments, &environments) {
                if let Some(first) = keys.get(&s.key) {
                    let (line, _) = self.position(first.start);
                    self.error(
                        source.span(),
                        format!("{field}.key"),
                        format!(
                            "duplicate source key `{}` (first defined on line {line})",
                            s.key
                        ),
                    );
                } else {
                    keys.insert(s.key.clone(), source.span());
                }
                sources.push(s);
            }
        }
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

    fn workers(&mut self, raw: &RawWorkers) -> WorkerSettings {
        let d = WorkerSettings::default();
        let positive = |cx: &mut Self, v: &Option<S<i64>>, name: &str, default: u64| -> u64 {
            match v {
                Some(n) if *n.get_ref() >= 1 => u64::try_from(*n.get_ref()).unwrap_or(default),
                Some(n) => {
                    cx.error(n.span(), format!("workers.{name}"), "must be at least 1");
                    default
                }
                None => default,
            }
        };
        let concurrency = positive(
            self,
            &raw.concurrency_per_sink,
            "concurrency_per_sink",
            d.concurrency_per_sink as u64,
        );
        let in_flight = positive(
            self,
            &raw.max_in_flight,
            "max_in_flight",
            d.max_in_flight as u64,
        );
        let attempts = positive(
            self,
            &raw.max_attempts,
            "max_attempts",
            u64::from(d.max_attempts),
        );
        let retry_base = raw
            .retry_base
            .as_ref()
            .and_then(|b| self.duration(b, "workers.retry_base"))
            .unwrap_or(d.retry_base);
        let retry_cap = raw
            .retry_cap
            .as_ref()
            .and_then(|c| self.duration(c, "workers.retry_cap"))
            .unwrap_or(d.retry_cap);
        WorkerSettings {
            enabled: raw.enabled.as_ref().is_none_or(|e| *e.get_ref()),
            concurrency_per_sink: usize::try_from(concurrency).unwrap_or(usize::MAX),
            max_in_flight: usize::try_from(in_flight).unwrap_or(usize::MAX),
            max_attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            retry_base,
            retry_cap: retry_cap.max(retry_base),
        }
    }

    fn server(&mut self, raw: &RawServer) -> ServerSettings {
        let listen = match &raw.listen {
            Some(l) => {
                let v = self
                    .interpolate(l, "server.listen")
                    .unwrap_or_else(|| l.get_ref().clone());
                if v.parse::<SocketAddr>().is_err() {
                    self.error(
                        l.span(),
                        "server.listen",
                        format!("`{v}` is not a socket address like `127.0.0.1:8080`"),
                    );
                }
                v
            }
            None => "127.0.0.1:8080".to_owned(),
        };
        let public_url = match &raw.public_url {
            Some(u) => {
                let v = self.interpolate(u, "server.public_url").unwrap_or_default();
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    self.error(
                        u.span(),
                        "server.public_url",
                        "must start with http:// or https://",
                    );
                }
                v.trim_end_matches('/').to_owned()
            }
            None => format!("http://{listen}"),
        };
        let max_body_bytes = match &raw.max_body_bytes {
            Some(n) if *n.get_ref() <= 0 => {
                self.error(n.span(), "server.max_body_bytes", "must be positive");
                DEFAULT_MAX_BODY_BYTES
            }
            Some(n) => usize::try_from(*n.get_ref()).unwrap_or(DEFAULT_MAX_BODY_BYTES),
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let worker_threads = match &raw.worker_threads {
            Some(n) if !(1..=1024).contains(n.get_ref()) => {
                self.error(
                    n.span(),
                    "server.worker_threads",
                    "must be from 1 to 1024 (leave it out to choose by the number of cores)",
                );
                None
            }
            Some(n) => usize::try_from(*n.get_ref()).ok(),
            None => None,
        };
        let header_read_timeout = self.timeout(
            raw.header_read_timeout.as_ref(),
            "server.header_read_timeout",
            DEFAULT_HEADER_READ_TIMEOUT,
        );
        let idle_timeout = self.timeout(
            raw.idle_timeout.as_ref(),
            "server.idle_timeout",
            DEFAULT_IDLE_TIMEOUT,
        );
        let body_read_timeout = self.timeout(
            raw.body_read_timeout.as_ref(),
            "server.body_read_timeout",
            DEFAULT_BODY_READ_TIMEOUT,
        );
        let max_connections = match &raw.max_connections {
            Some(n) if !(1..=1_000_000).contains(n.get_ref()) => {
                self.error(
                    n.span(),
                    "server.max_connections",
                    "must be from 1 to 1000000",
                );
                DEFAULT_MAX_CONNECTIONS
            }
            Some(n) => usize::try_from(*n.get_ref()).unwrap_or(DEFAULT_MAX_CONNECTIONS),
            None => DEFAULT_MAX_CONNECTIONS,
        };
        let default_budget = max_body_bytes.saturating_mul(DEFAULT_BODY_BUDGET_BODIES);
        let body_budget_bytes = match &raw.body_budget_bytes {
            Some(n) if usize::try_from(*n.get_ref()).is_ok_and(|n| n >= max_body_bytes) => {
                usize::try_from(*n.get_ref()).unwrap_or(default_budget)
            }
            Some(n) => {
                self.error(
                    n.span(),
                    "server.body_budget_bytes",
                    format!(
                        "must be at least server.max_body_bytes ({max_body_bytes}), so the largest body fits"
                    ),
                );
                default_budget
            }
            None => default_budget,
        };
        ServerSettings {
            listen,
            public_url,
            max_body_bytes,
            worker_threads,
            header_read_timeout,
            idle_timeout,
            max_connections,
            body_read_timeout,
            body_budget_bytes,
        }
    }

    fn store(&mut self, raw: &RawStore) -> StoreSettings {
        let backend_name = raw
            .backend
            .as_ref()
            .map_or("sqlite", |b| b.get_ref().as_str());
        let backend = match backend_name {
            "sqlite" => {
                if let Some(u) = &raw.url {
                    self.error(
                        u.span(),
                        "store.url",
                        "`url` is for the postgres backend; sqlite takes `path`",
                    );
                }
                StoreBackend::Sqlite {
                    path: raw
                        .path
                        .as_ref()
                        .and_then(|p| self.interpolate(p, "store.path"))
                        .unwrap_or_else(|| "./tributary-data".to_owned()),
                }
            }
            "postgres" => {
                if let Some(p) = &raw.path {
                    self.error(
                        p.span(),
                        "store.path",
                        "`path` is for the sqlite backend; postgres takes `url`",
                    );
                }
                let url = match &raw.url {
                    Some(u) => self.secret(u, "store.url").unwrap_or_default(),
                    None => {
                        let span = raw.backend.as_ref().map_or(0..0, |b| b.span());
                        self.error(span, "store.url", "the postgres backend needs `url`");
                        Secret::default()
                    }
                };
                StoreBackend::Postgres { url }
            }
            other => {
                let span = raw.backend.as_ref().map_or(0..0, |b| b.span());
                self.error(
                    span,
                    "store.backend",
                    format!("unknown backend `{other}`; expected `sqlite` or `postgres`"),
                );
                StoreBackend::Sqlite {
                    path: "./tributary-data".to_owned(),
                }
            }
        };
        let retention_days = match &raw.retention_days {
            Some(d) if *d.get_ref() < 1 => {
                self.error(d.span(), "store.retention_days", "must be at least 1 day");
                DEFAULT_RETENTION_DAYS
            }
            Some(d) => u32::try_from(*d.get_ref()).unwrap_or(u32::MAX),
            None => DEFAULT_RETENTION_DAYS,
        };
        let secrets_key = raw.secrets_key.as_ref().and_then(|k| {
            let text = self.interpolate(k, "store.secrets_key")?;
            match SealingKey::from_base64(&text) {
                Ok(key) => Some(key),
                Err(message) => {
                    self.error(k.span(), "store.secrets_key", message);
                    None
                }
            }
        });
        StoreSettings {
            backend,
            retention_days,
            secrets_key,
        }
    }

    fn sink(&mut self, raw: &S<toml::Value>, field: &str) -> Option<SinkConfig> {
        let span = raw.span();
        let table = match raw.get_ref() {
            toml::Value::String(kind) if kind == "local" => return Some(SinkConfig::Local),
            toml::Value::String(kind) if kind == "knock" || kind == "webhook" => {
                self.error(
                    span,
                    field,
                    format!(
                        "the `{kind}` sink needs settings: write it as a table, e.g. [{field}] kind = \"{kind}\""
                    ),
                );
                return None;
            }
            toml::Value::Table(t) => t,
            _ => {
                self.error(
                    span,
                    field,
                    "expected `local`, or a table with `kind` = \"local\", \"knock\" or \"webhook\"",
                );
                return None;
            }
        };
        let get = |k: &str| table.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let allowed: &[&str] = match get("kind").as_deref() {
            Some("local") => &["kind"],
            Some("knock") => &["kind", "secret_key", "base_url"],
            Some("webhook") => &["kind", "url", "secret"],
            other => {
                self.error(
                    span,
                    format!("{field}.kind"),
                    format!(
                        "unknown sink kind {}; expected \"local\", \"knock\" or \"webhook\"",
                        other.map_or("(missing)".to_owned(), |o| format!("`{o}`"))
                    ),
                );
                return None;
            }
        };
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    span.clone(),
                    format!("{field}.{key}"),
                    format!("unknown key `{key}`"),
                );
            }
        }
        let required = |cx: &mut Self, key: &str| -> Option<String> {
            let Some(v) = get(key) else {
                cx.error(span.clone(), format!("{field}.{key}"), "is required");
                return None;
            };
            cx.interpolate(&S::new(span.clone(), v), &format!("{field}.{key}"))
        };
        match get("kind").as_deref() {
            Some("knock") => {
                let secret_key = required(self, "secret_key")?;
                let base_url = match get("base_url") {
                    Some(u) => {
                        self.interpolate(&S::new(span.clone(), u), &format!("{field}.base_url"))?
                    }
                    None => DEFAULT_KNOCK_BASE_URL.to_owned(),
                };
                Some(SinkConfig::Knock {
                    secret_key: Secret::new(secret_key),
                    base_url: base_url.trim_end_matches('/').to_owned(),
                })
            }
            Some("webhook") => {
                let url = required(self, "url");
                let secret = required(self, "secret");
                Some(SinkConfig::Webhook {
                    url: url?,
                    secret: Secret::new(secret?),
                })
            }
            _ => Some(SinkConfig::Local),
        }
    }

    fn source(
        &mut self,
        raw: &S<RawSource>,
        field: &str,
        raw_envs: &BTreeMap<String, S<RawEnvironment>>,
        envs: &BTreeMap<String, EnvironmentConfig>,
    ) -> Option<SourceConfig> {
        let span = raw.span();
        let raw = raw.get_ref();
        let key = match &raw.key {
            Some(k) if valid_slug(k.get_ref()) => Some(k.get_ref().clone()),
            Some(k) => {
                self.error(
                    k.span(),
                    format!("{field}.key"),
                    "source keys use lowercase letters, digits, `-` and `_`",
                );
                None
            }
            None => {
                self.error(span.clone(), format!("{field}.key"), "is required");
                None
            }
        };
        let kind = match &raw.kind {
            Some(k) => match k.get_ref().parse::<SourceKind>() {
                Ok(kind) => Some(kind),
                Err(msg) => {
                    self.error(k.span(), format!("{field}.kind"), msg);
                    None
                }
            },
            None => {
                self.error(span, format!("{field}.kind"), "is required");
                None
            }
        };
        let (key, kind) = (key?, kind?);
        let field = format!("sources[{key}]");
        let mut environments = BTreeMap::new();
        for (slug, se) in &raw.environments {
            let env_field = format!("{field}.environments.{slug}");
            if !envs.contains_key(slug) && !raw_envs.contains_key(slug) {
                let declared: Vec<_> = envs.keys().map(String::as_str).collect();
                self.error(
                    se.span(),
                    &env_field,
                    format!(
                        "environment `{slug}` is not declared in [environments] (declared: {})",
                        if declared.is_empty() {
                            "none".to_owned()
                        } else {
                            declared.join(", ")
                        }
                    ),
                );
            }
            if let Some(settings) = self.source_environment(se, &env_field, kind) {
                environments.insert(slug.clone(), settings);
            }
        }
        Some(SourceConfig {
            name: raw
                .name
                .as_ref()
                .map_or_else(|| key.clone(), |n| n.get_ref().clone()),
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            key,
            kind,
            environments,
        })
    }

    fn source_environment(
        &mut self,
        raw: &S<RawSourceEnvironment>,
        field: &str,
        kind: SourceKind,
    ) -> Option<SourceEnvironment> {
        let span = raw.span();
        let raw = raw.get_ref();
        let alias = kind.data_alias();
        let token = match &raw.token {
            Some(t) => self.token(t, &format!("{field}.token")),
            None => {
                self.error(
                    span,
                    format!("{field}.token"),
                    "is required: the secret part of this source environment's receive URL",
                );
                None
            }
        };
        let retired_tokens = raw
            .retired_tokens
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.retired_token(r, &format!("{field}.retired_tokens[{i}]")))
            .collect();
        let write_key = raw
            .write_key
            .as_ref()
            .and_then(|w| self.secret(w, &format!("{field}.write_key")));
        let api_key = raw
            .api_key
            .as_ref()
            .and_then(|a| self.secret(a, &format!("{field}.api_key")));
        let identify = match &raw.identify {
            Some(i) if *i.get_ref() && !kind.is_cdp() => {
                self.error(
                    i.span(),
                    format!("{field}.identify"),
                    format!(
                        "`{kind}` sources do not receive identify calls; map an `identify_user` action instead"
                    ),
                );
                false
            }
            Some(i) => *i.get_ref(),
            None => kind.is_cdp(),
        };
        let configurable_path = |cx: &mut Self, p: &Option<S<String>>, name: &str| {
            let p = p.as_ref()?;
            if !kind.has_configurable_paths() {
                cx.error(
                    p.span(),
                    format!("{field}.{name}"),
                    format!("`{kind}` sources have a fixed format; `{name}` applies to `http`, `polytomic`, `hightouch` and `census` sources"),
                );
                return None;
            }
            cx.path(p, &format!("{field}.{name}"), alias)
        };
        let event_type_path = configurable_path(self, &raw.event_type_path, "event_type_path");
        let event_type = match &raw.event_type {
            Some(t) if !kind.has_configurable_paths() => {
                self.error(
                    t.span(),
                    format!("{field}.event_type"),
                    format!("`{kind}` sources have a fixed format; `event_type` applies to `http`, `polytomic`, `hightouch` and `census` sources"),
                );
                None
            }
            Some(t) if t.get_ref().is_empty() => {
                self.error(t.span(), format!("{field}.event_type"), "is empty");
                None
            }
            Some(t) => Some(t.get_ref().clone()),
            None => None,
        };
        let timestamp_path = configurable_path(self, &raw.timestamp_path, "timestamp_path");
        let verification = raw
            .verification
            .as_ref()
            .and_then(|v| self.verification(v, &format!("{field}.verification")));
        let preprocess = raw
            .preprocess
            .as_ref()
            .and_then(|p| self.preprocess(p, &format!("{field}.preprocess")));
        let dedup = self.dedup(raw.dedup.as_ref(), &format!("{field}.dedup"), alias);
        let mappings = self.mappings(&raw.mappings, field, alias);
        Some(SourceEnvironment {
            token: token?,
            retired_tokens,
            write_key,
            api_key,
            verification,
            preprocess,
            identify,
            dedup: dedup?,
            event_type,
            event_type_path,
            timestamp_path,
            mappings,
        })
    }

    fn verification(&mut self, raw: &S<RawVerification>, field: &str) -> Option<Verification> {
        let span = raw.span();
        let raw = raw.get_ref();
        let Some(scheme) = &raw.scheme else {
            self.error(
                span,
                format!("{field}.scheme"),
                "is required: segment-signature, hmac-sha256, timestamped, shared-secret, bearer or standard-webhooks",
            );
            return None;
        };
        let allowed: &[&str] = match scheme.get_ref().as_str() {
            "segment-signature" => &["secret", "signed_part"],
            "bearer" => &["secret"],
            "hmac-sha256" => &["secret", "header", "encoding", "prefix"],
            "timestamped" => &["secret", "header", "encoding", "tolerance"],
            "shared-secret" => &["secret", "header"],
            "standard-webhooks" => &["secret", "tolerance"],
            other => {
                self.error(
                    scheme.span(),
                    format!("{field}.scheme"),
                    format!(
                        "unknown scheme `{other}`; expected segment-signature, hmac-sha256, timestamped, shared-secret, bearer or standard-webhooks"
                    ),
                );
                return None;
            }
        };
        let present = [
            ("header", raw.header.as_ref().map(|h| h.span())),
            ("encoding", raw.encoding.as_ref().map(|h| h.span())),
            ("prefix", raw.prefix.as_ref().map(|h| h.span())),
            ("tolerance", raw.tolerance.as_ref().map(|h| h.span())),
            ("signed_part", raw.signed_part.as_ref().map(|h| h.span())),
        ];
        for (name, at) in present {
            if let Some(at) = at
                && !allowed.contains(&name)
            {
                self.error(
                    at,
                    format!("{field}.{name}"),
                    format!(
                        "`{name}` does not apply to the `{}` scheme",
                        scheme.get_ref()
                    ),
                );
            }
        }
        let secret = match &raw.secret {
            Some(s) => self.secret(s, &format!("{field}.secret")),
            None => {
                self.error(span.clone(), format!("{field}.secret"), "is required");
                None
            }
        };
        let header = |default: Option<&str>, cx: &mut Self| -> Option<String> {
            match (&raw.header, default) {
                (Some(h), _) => Some(h.get_ref().to_ascii_lowercase()),
                (None, Some(d)) => Some(d.to_owned()),
                (None, None) => {
                    cx.error(
                        span.clone(),
                        format!("{field}.header"),
                        "is required for this scheme",
                    );
                    None
                }
            }
        };
        let encoding = |cx: &mut Self, default: SignatureEncoding| match &raw.encoding {
            None => Some(default),
            Some(e) => match e.get_ref().as_str() {
                "hex" => Some(SignatureEncoding::Hex),
                "base64" => Some(SignatureEncoding::Base64),
                other => {
                    cx.error(
                        e.span(),
                        format!("{field}.encoding"),
                        format!("unknown encoding `{other}`; expected `hex` or `base64`"),
                    );
                    None
                }
            },
        };
        let tolerance = |cx: &mut Self| match &raw.tolerance {
            None => Some(DEFAULT_TOLERANCE),
            Some(t) => cx.duration(t, &format!("{field}.tolerance")),
        };
        let scheme = match scheme.get_ref().as_str() {
            "segment-signature" => {
                let signed_part = match &raw.signed_part {
                    None => Some(SignedPart::Body),
                    Some(p) => match p.get_ref().as_str() {
                        "body" => Some(SignedPart::Body),
                        "first-element" => Some(SignedPart::FirstElement),
                        other => {
                            self.error(
                                p.span(),
                                format!("{field}.signed_part"),
                                format!(
                                    "unknown value `{other}`; expected `body` or `first-element`"
                                ),
                            );
                            None
                        }
                    },
                };
                VerificationScheme::SegmentSignature {
                    secret: secret?,
                    signed_part: signed_part?,
                }
            }
            "bearer" => VerificationScheme::Bearer { token: secret? },
            "hmac-sha256" => {
                let header = header(None, self);
                let encoding = encoding(self, SignatureEncoding::Hex);
                VerificationScheme::HmacSha256 {
                    secret: secret?,
                    header: header?,
                    encoding: encoding?,
                    prefix: raw.prefix.as_ref().map(|p| p.get_ref().clone()),
                }
            }
            "timestamped" => {
                let header = header(None, self);
                let encoding = encoding(self, SignatureEncoding::Base64);
                let tolerance = tolerance(self);
                VerificationScheme::Timestamped {
                    secret: secret?,
                    header: header?,
                    encoding: encoding?,
                    tolerance: tolerance?,
                }
            }
            "shared-secret" => VerificationScheme::SharedSecret {
                secret: secret?,
                header: header(Some(DEFAULT_SHARED_SECRET_HEADER), self)?,
            },
            _ => {
                let tolerance = tolerance(self);
                VerificationScheme::StandardWebhooks {
                    secret: secret?,
                    tolerance: tolerance?,
                }
            }
        };
        Some(Verification {
            scheme,
            enforce: raw.enforce.as_ref().is_none_or(|e| *e.get_ref()),
        })
    }

    fn dedup(
        &mut self,
        raw: Option<&S<RawDedup>>,
        field: &str,
        alias: DataAlias,
    ) -> Option<DedupSettings> {
        let raw = raw.map(S::get_ref);
        let key_path = match raw.and_then(|r| r.key_path.as_ref()) {
            Some(p) => self.path(p, &format!("{field}.key_path"), alias)?,
            None => FieldPath::compile("messageId", alias).ok()?,
        };
        let window = match raw.and_then(|r| r.window.as_ref()) {
            Some(w) => {
                let d = self.duration(w, &format!("{field}.window"))?;
                if d.is_zero() {
                    self.error(
                        w.span(),
                        format!("{field}.window"),
                        "must be longer than zero",
                    );
                }
                d
            }
            None => DEFAULT_DEDUP_WINDOW,
        };
        Some(DedupSettings {
            enabled: raw
                .and_then(|r| r.enabled.as_ref())
                .is_none_or(|e| *e.get_ref()),
            key_path,
            window,
        })
    }

    fn mappings(&mut self, raw: &[S<RawMapping>], field: &str, alias: DataAlias) -> Vec<Mapping> {
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

    fn mapping(&mut self, raw: &S<RawMapping>, field: &str, alias: DataAlias) -> Option<Mapping> {
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
        for (name, value) in raw.params() {
            let need = spec.iter().find(|(n, _)| *n == name).map(|(_, need)| *need);
            let param_field = format!("{field}.{name}");
            let Some(need) = need else {
                if let Some(v) = value {
                    let takes: Vec<_> = spec.iter().map(|(n, _)| *n).collect();
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
            if matches!(params::form(name), Form::Bool | Form::Fields) {
                continue;
            }
            let source = match (value, need) {
                (Some(v), _) => self.param(v, name, &param_field, alias),
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
            if !assign(&mut params, name, source) {
                ok = false;
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
            && spec.iter().any(|(n, _)| *n == "data_fields")
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

    fn param(
        &mut self,
        value: &S<toml::Value>,
        name: &str,
        field: &str,
        alias: DataAlias,
    ) -> Option<ValueSource> {
        let form = params::form(name);
        match (value.get_ref(), form) {
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

    fn data_fields(
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
            match self.param(&spanned, "data", &format!("{field}.{name}"), alias) {
                Some(source) => out.push((name.clone(), source)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Tokens, write keys and API keys identify a source environment on their
    /// own, so two source environments may not share one.
    fn check_unique_credentials(&mut self, raw: &RawConfig) {
        let mut seen: HashMap<(&'static str, String), String> = HashMap::new();
        for (i, source) in raw.sources.iter().enumerate() {
            for (slug, se) in &source.get_ref().environments {
                let se = se.get_ref();
                for (what, value) in [
                    ("token", &se.token),
                    ("write_key", &se.write_key),
                    ("api_key", &se.api_key),
                ] {
                    let Some(value) = value else { continue };
                    let field = format!("sources[{i}].environments.{slug}.{what}");
                    // Compare resolved values so two references to one variable collide too.
                    let resolved = {
                        let mut probe = Cx::new(self.file, self.text, self.env);
                        probe.interpolate(value, &field)
                    };
                    let Some(resolved) = resolved else { continue };
                    if let Some(first) = seen.get(&(what, resolved.clone())) {
                        self.error(
                            value.span(),
                            field,
                            format!("the same {what} is already used by {first}"),
                        );
                    } else {
                        seen.insert(
                            (what, resolved),
                            format!("sources[{i}].environments.{slug}"),
                        );
                    }
                }
            }
        }
    }
}

fn assign(params: &mut MappingParams, name: &str, source: ValueSource) -> bool {
    let slot = match name {
        "workflow" => &mut params.workflow,
        "recipients" => &mut params.recipients,
        "actor" => &mut params.actor,
        "tenant" => &mut params.tenant,
        "data" => &mut params.data,
        "cancellation_key" => &mut params.cancellation_key,
        "user_id" => &mut params.user_id,
        "name" => &mut params.name,
        "email" => &mut params.email,
        "phone_number" => &mut params.phone_number,
        "avatar" => &mut params.avatar,
        "locale" => &mut params.locale,
        "timezone" => &mut params.timezone,
        "properties" => &mut params.properties,
        "collection" => &mut params.collection,
        "object_id" => &mut params.object_id,
        "tenant_id" => &mut params.tenant_id,
        "settings" => &mut params.settings,
        "audience" => &mut params.audience,
        "members" => &mut params.members,
        _ => return false,
    };
    *slot = Some(source);
    true
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// TOML to JSON. Datetimes become their RFC 3339 text.
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

use super::parse_duration;
