//! `[[sources]]` and their source environments: keys, kinds, credentials,
//! paths and dedup. Verification and mappings have modules of their own.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Range,
};

use super::{Cx, valid_slug};
use crate::{
    FieldPath,
    config::{model::*, raw::*},
    path::DataAlias,
};

impl Cx<'_> {
    pub(super) fn sources(
        &mut self,
        raw: &[S<RawSource>],
        raw_envs: &BTreeMap<String, S<RawEnvironment>>,
        envs: &BTreeMap<String, EnvironmentConfig>,
    ) -> Vec<SourceConfig> {
        let mut sources = Vec::new();
        let mut keys: HashMap<String, Range<usize>> = HashMap::new();
        for (i, source) in raw.iter().enumerate() {
            let field = format!("sources[{i}]");
            if let Some(s) = self.source(source, &field, raw_envs, envs) {
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
        sources
    }

    pub(super) fn source(
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

    pub(super) fn source_environment(
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

    pub(super) fn retired_token(
        &mut self,
        raw: &S<RawRetiredToken>,
        field: &str,
    ) -> Option<RetiredToken> {
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

    pub(super) fn dedup(
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

    /// Tokens, write keys and API keys identify a source environment on their
    /// own, so two source environments may not share one.
    pub(super) fn check_unique_credentials(&mut self, raw: &RawConfig) {
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
