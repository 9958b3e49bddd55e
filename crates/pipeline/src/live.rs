//! The sources a pipeline serves, one revision at a time.
//!
//! A [`LiveConfig`] is immutable: the file's sources, then the store's at
//! one revision, with their routes and mapping index. A new revision makes
//! a new `LiveConfig` that shares every unchanged source; requests hold the
//! one they started with (`Arc`) until they finish, so a change never lands
//! in the middle of a request.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Map, Value};
use tributary_core::{
    MappingEngine,
    config::{
        Config, EnvironmentConfig, SealingKey, SourceConfig, is_sealed, source_from_document,
    },
};
use tributary_store::StoredSource;

use crate::{Route, routes::Routes};

/// Where a live source is defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// In the configuration file: changed by editing the file and restarting.
    File,
    /// In the store, through the management API.
    Store {
        /// The revision that last changed it.
        revision: u64,
        /// Its document as stored.
        document: Map<String, Value>,
    },
}

/// A source and where it is defined.
#[derive(Debug)]
pub struct LiveSource {
    /// The compiled source.
    pub config: SourceConfig,
    /// Where it is defined.
    pub origin: Origin,
}

/// The sources at one revision, with their indexes.
pub struct LiveConfig {
    revision: u64,
    sources: Vec<Arc<LiveSource>>,
    routes: Routes,
    engine: MappingEngine,
}

/// A stored source that could not be served at a revision, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unservable {
    /// The source key.
    pub key: String,
    /// Why (a key also in the file, or what its document fails).
    pub reason: String,
}

impl LiveConfig {
    /// The file's sources alone (revision 0).
    pub fn from_file(config: &Config) -> Self {
        let sources: Vec<_> = config
            .sources
            .iter()
            .map(|s| {
                Arc::new(LiveSource {
                    config: s.clone(),
                    origin: Origin::File,
                })
            })
            .collect();
        Self::build(0, sources, MappingEngine::new(config))
    }

    fn build(revision: u64, sources: Vec<Arc<LiveSource>>, engine: MappingEngine) -> Self {
        Self {
            routes: Routes::new(sources.iter().map(|s| &s.config)),
            revision,
            sources,
            engine,
        }
    }

    /// This configuration with the store's changes up to `head` applied.
    /// A stored source whose key the file defines, or whose document no
    /// longer compiles (an environment removed from the file), is left out
    /// and reported; the rest are served.
    pub fn with_changes(
        &self,
        head: u64,
        changes: Vec<StoredSource>,
        environments: &BTreeMap<String, EnvironmentConfig>,
        key: Option<&SealingKey>,
    ) -> (Self, Vec<Unservable>) {
        let mut sources = self.sources.clone();
        let mut engine = self.engine.clone();
        let mut problems = Vec::new();
        for change in changes {
            let at = sources.iter().position(|s| s.config.key == change.key);
            if at.is_some_and(|i| sources[i].origin == Origin::File) {
                problems.push(Unservable {
                    key: change.key,
                    reason: "the configuration file defines a source with this key".to_owned(),
                });
                continue;
            }
            if let Some(i) = at {
                sources.remove(i);
            }
            let Some(text) = change.document else {
                engine = engine.with_source(&change.key, None);
                continue;
            };
            match compile(&text, environments, key) {
                Ok((config, document)) => {
                    engine = engine.with_source(&change.key, Some(&config));
                    let source = Arc::new(LiveSource {
                        config,
                        origin: Origin::Store {
                            revision: change.revision,
                            document,
                        },
                    });
                    // File sources first (file order), then stored ones by key.
                    let at = sources
                        .iter()
                        .position(|s| s.origin != Origin::File && s.config.key > change.key)
                        .unwrap_or(sources.len());
                    sources.insert(at, source);
                }
                Err(reason) => {
                    engine = engine.with_source(&change.key, None);
                    problems.push(Unservable {
                        key: change.key,
                        reason,
                    });
                }
            }
        }
        (Self::build(head, sources, engine), problems)
    }

    /// The store revision this configuration is at (0: the file alone).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every source: the file's in file order, then the store's by key.
    pub fn sources(&self) -> impl Iterator<Item = &LiveSource> {
        self.sources.iter().map(AsRef::as_ref)
    }

    /// The source with this key.
    pub fn source(&self, key: &str) -> Option<&LiveSource> {
        self.sources().find(|s| s.config.key == key)
    }

    /// The mapping engine over these sources.
    pub fn engine(&self) -> &MappingEngine {
        &self.engine
    }

    /// The source environment a receive token belongs to (a retired token
    /// within its grace period included).
    pub fn route_by_token(&self, token: &str) -> Option<Route<'_>> {
        self.routes
            .by_token(&self.sources, token, chrono::Utc::now())
    }

    /// The source environment a Tracking API write key belongs to.
    pub fn route_by_write_key(&self, key: &str) -> Option<Route<'_>> {
        self.routes.by_write_key(&self.sources, key)
    }

    /// The source environment whose API key is `presented`. Every configured
    /// key is compared, each in constant time, so timing says nothing about
    /// which key (or how much of one) was close.
    pub fn route_by_api_key(&self, presented: &str) -> Option<Route<'_>> {
        let mut found = None;
        for source in &self.sources {
            for (environment, settings) in &source.config.environments {
                let hit = settings
                    .api_key
                    .as_ref()
                    .is_some_and(|k| !k.is_empty() && k.matches(presented.as_bytes()));
                if hit && found.is_none() {
                    found = Some(Route {
                        source: &source.config,
                        environment,
                        settings,
                    });
                }
            }
        }
        found
    }
}

fn compile(
    text: &str,
    environments: &BTreeMap<String, EnvironmentConfig>,
    key: Option<&SealingKey>,
) -> Result<(SourceConfig, Map<String, Value>), String> {
    let mut document: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| format!("its stored document is unreadable: {e}"))?;
    if is_sealed(&document) {
        let key =
            key.ok_or("its secrets are sealed and [store] secrets_key is not set in this process")?;
        key.open(&mut document)?;
    }
    let config =
        source_from_document(&Value::Object(document.clone()), environments).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {}", e.pointer, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
    Ok((config, document))
}
