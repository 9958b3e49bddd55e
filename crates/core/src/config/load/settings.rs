//! The process settings: `[server]`, `[store]`, `[admin]`, `[workers]`, and
//! `[environments]` with their sinks and rate limits.

use std::{collections::BTreeMap, net::SocketAddr, num::NonZeroU32};

use super::valid_slug;

use super::Cx;
use crate::{
    ActionType, Secret,
    config::{model::*, raw::*, sealed::SealingKey},
};

impl Cx<'_> {
    pub(super) fn admin(&mut self, raw: &RawAdmin) -> AdminSettings {
        AdminSettings {
            token: raw.token.as_ref().and_then(|t| {
                let s = self.secret(t, "admin.token")?;
                if s.expose().len() < 16 {
                    self.error(t.span(), "admin.token", "must be at least 16 characters");
                }
                Some(s)
            }),
            console: raw.console.as_ref().is_none_or(|c| *c.get_ref()),
        }
    }

    pub(super) fn workers(&mut self, raw: &RawWorkers) -> WorkerSettings {
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

    pub(super) fn server(&mut self, raw: &RawServer) -> ServerSettings {
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
        let worker_threads = self.optional_count(
            raw.worker_threads.as_ref(),
            "server.worker_threads",
            1..=1024,
            " (leave it out to choose by the number of cores)",
        );
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

    /// An optional count within `range`; out of it, an error naming
    /// `field` (with `hint` after the range) and `None`.
    fn optional_count(
        &mut self,
        raw: Option<&S<i64>>,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
        hint: &str,
    ) -> Option<usize> {
        let n = raw?;
        if range.contains(n.get_ref()) {
            return usize::try_from(*n.get_ref()).ok();
        }
        self.error(
            n.span(),
            field,
            format!("must be from {} to {}{hint}", range.start(), range.end()),
        );
        None
    }

    pub(super) fn store(&mut self, raw: &RawStore) -> StoreSettings {
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
                for (value, field) in [
                    (&raw.pool_size, "store.pool_size"),
                    (&raw.committers, "store.committers"),
                ] {
                    if let Some(v) = value {
                        let key = field.trim_start_matches("store.");
                        self.error(
                            v.span(),
                            field,
                            format!("`{key}` is for the postgres backend"),
                        );
                    }
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
                let pool_size =
                    self.optional_count(raw.pool_size.as_ref(), "store.pool_size", 1..=1000, "");
                let committers =
                    self.optional_count(raw.committers.as_ref(), "store.committers", 1..=64, "");
                StoreBackend::Postgres {
                    url,
                    pool_size,
                    committers,
                }
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

    pub(super) fn environments(
        &mut self,
        raw: &BTreeMap<String, S<RawEnvironment>>,
    ) -> BTreeMap<String, EnvironmentConfig> {
        raw.iter()
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
            .collect()
    }

    pub(super) fn sink(&mut self, raw: &S<toml::Value>, field: &str) -> Option<SinkConfig> {
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
}
