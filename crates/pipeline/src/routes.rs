//! Which source environment a request is for: by the token in its receive
//! URL, or by the write key of a Segment-compatible API call.

use std::{collections::HashMap, sync::Arc};

use tributary_core::config::{SourceConfig, SourceEnvironment};
use tributary_script::Script;

use crate::live::LiveSource;

/// A source environment a request was routed to.
#[derive(Clone, Copy)]
pub struct Route<'a> {
    /// The source.
    pub source: &'a SourceConfig,
    /// The environment slug.
    pub environment: &'a str,
    /// Its settings.
    pub settings: &'a SourceEnvironment,
    /// Its preprocess script, when it has one.
    pub script: Option<&'a Arc<Script>>,
}

/// Token and write-key indexes over a list of sources (by position).
pub(crate) struct Routes {
    tokens: HashMap<String, (usize, String)>,
    write_keys: HashMap<String, (usize, String)>,
}

impl Routes {
    pub(crate) fn new<'a>(sources: impl Iterator<Item = &'a SourceConfig>) -> Self {
        let mut tokens = HashMap::new();
        let mut write_keys = HashMap::new();
        for (i, source) in sources.enumerate() {
            for (env, se) in &source.environments {
                tokens.insert(se.token.expose().to_owned(), (i, env.clone()));
                for retired in &se.retired_tokens {
                    tokens
                        .entry(retired.token.expose().to_owned())
                        .or_insert_with(|| (i, env.clone()));
                }
                if let Some(k) = &se.write_key {
                    write_keys.insert(k.expose().to_owned(), (i, env.clone()));
                }
            }
        }
        Self { tokens, write_keys }
    }

    fn resolve<'a>(
        sources: &'a [Arc<LiveSource>],
        hit: Option<&(usize, String)>,
    ) -> Option<Route<'a>> {
        let (i, env) = hit?;
        let live = sources.get(*i)?;
        let (environment, settings) = live.config.environments.get_key_value(env)?;
        Some(Route {
            source: &live.config,
            environment,
            settings,
            script: live.scripts.get(env),
        })
    }

    /// The hash probe finds the candidate; the final comparison of the
    /// secret itself is constant-time, so timing says nothing about how much
    /// of a guessed token was right. A retired token answers until its time
    /// is up.
    pub(crate) fn by_token<'a>(
        &self,
        sources: &'a [Arc<LiveSource>],
        token: &str,
    ) -> Option<Route<'a>> {
        Self::resolve(sources, self.tokens.get(token)).filter(|r| {
            // The clock is read only for a retired token, not on every request.
            r.settings.token.matches(token.as_bytes())
                || r.settings
                    .retired_tokens
                    .iter()
                    .any(|t| t.token.matches(token.as_bytes()) && t.until > chrono::Utc::now())
        })
    }

    pub(crate) fn by_write_key<'a>(
        &self,
        sources: &'a [Arc<LiveSource>],
        key: &str,
    ) -> Option<Route<'a>> {
        Self::resolve(sources, self.write_keys.get(key)).filter(|r| {
            r.settings
                .write_key
                .as_ref()
                .is_some_and(|k| k.matches(key.as_bytes()))
        })
    }
}
