//! Which source environment a request is for: by the token in its receive
//! URL, or by the write key of a Segment-compatible API call.

use std::collections::HashMap;

use tributary_core::config::{Config, SourceConfig, SourceEnvironment};

/// A source environment a request was routed to.
#[derive(Clone, Copy)]
pub struct Route<'a> {
    /// The source.
    pub source: &'a SourceConfig,
    /// The environment slug.
    pub environment: &'a str,
    /// Its settings.
    pub settings: &'a SourceEnvironment,
}

/// Token and write-key indexes over a configuration.
pub(crate) struct Routes {
    tokens: HashMap<String, (usize, String)>,
    write_keys: HashMap<String, (usize, String)>,
}

impl Routes {
    pub(crate) fn new(config: &Config) -> Self {
        let mut tokens = HashMap::new();
        let mut write_keys = HashMap::new();
        for (i, source) in config.sources.iter().enumerate() {
            for (env, se) in &source.environments {
                tokens.insert(se.token.expose().to_owned(), (i, env.clone()));
                if let Some(k) = &se.write_key {
                    write_keys.insert(k.expose().to_owned(), (i, env.clone()));
                }
            }
        }
        Self { tokens, write_keys }
    }

    fn resolve<'a>(config: &'a Config, hit: Option<&(usize, String)>) -> Option<Route<'a>> {
        let (i, env) = hit?;
        let source = config.sources.get(*i)?;
        let (environment, settings) = source.environments.get_key_value(env)?;
        Some(Route {
            source,
            environment,
            settings,
        })
    }

    /// The hash probe finds the candidate; the final comparison of the
    /// secret itself is constant-time, so timing says nothing about how much
    /// of a guessed token was right.
    pub(crate) fn by_token<'a>(&self, config: &'a Config, token: &str) -> Option<Route<'a>> {
        Self::resolve(config, self.tokens.get(token))
            .filter(|r| r.settings.token.matches(token.as_bytes()))
    }

    pub(crate) fn by_write_key<'a>(&self, config: &'a Config, key: &str) -> Option<Route<'a>> {
        Self::resolve(config, self.write_keys.get(key)).filter(|r| {
            r.settings
                .write_key
                .as_ref()
                .is_some_and(|k| k.matches(key.as_bytes()))
        })
    }
}
