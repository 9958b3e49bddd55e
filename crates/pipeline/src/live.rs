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
use tributary_script::Script;
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
    /// Each environment's preprocess script, made with the source, so a
    /// script is compiled once per revision that changes its source.
    pub scripts: BTreeMap<String, Arc<Script>>,
}

impl LiveSource {
    /// `config` with its environments' scripts.
    pub fn new(config: SourceConfig, origin: Origin) -> Arc<Self> {
        let scripts = config
            .environments
            .iter()
            .filter_map(|(env, settings)| {
                let p = settings.preprocess.as_ref()?;
                let vars = p
                    .vars
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                let name = format!("{}/{env}", config.key);
                Some((env.clone(), Script::new(name, p.script.as_str(), vars)))
            })
            .collect();
        Arc::new(Self {
            config,
            origin,
            scripts,
        })
    }
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
            .map(|s| LiveSource::new(s.clone(), Origin::File))
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
        // Stored sources by key: each change is a map operation, so a first
        // load of n sources is O(n log n), not n scans of the list.
        let (file, stored): (Vec<_>, Vec<_>) =
            self.sources.iter().partition(|s| s.origin == Origin::File);
        let mut by_key: BTreeMap<&str, Arc<LiveSource>> = stored
            .into_iter()
            .map(|s| (s.config.key.as_str(), Arc::clone(s)))
            .collect();
        let mut engine = self.engine.clone();
        let mut problems = Vec::new();
        for change in &changes {
            if file.iter().any(|s| s.config.key == change.key) {
                problems.push(Unservable {
                    key: change.key.clone(),
                    reason: "the configuration file defines a source with this key".to_owned(),
                });
                continue;
            }
            by_key.remove(change.key.as_str());
            let Some(text) = &change.document else {
                engine.set_source(&change.key, None);
                continue;
            };
            match compile(text, environments, key) {
                Ok((config, document)) => {
                    engine.set_source(&change.key, Some(&config));
                    let source = LiveSource::new(
                        config,
                        Origin::Store {
                            revision: change.revision,
                            document,
                        },
                    );
                    by_key.insert(change.key.as_str(), source);
                }
                Err(reason) => {
                    engine.set_source(&change.key, None);
                    problems.push(Unservable {
                        key: change.key.clone(),
                        reason,
                    });
                }
            }
        }
        // File sources first (file order), then stored ones by key.
        let sources = file
            .into_iter()
            .cloned()
            .chain(by_key.into_values())
            .collect();
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
        self.routes.by_token(&self.sources, token)
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
                        script: source.scripts.get(environment),
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use tributary_core::{
        Overrides,
        config::load,
        event::{Event, EventId, EventKind},
    };

    use super::*;

    const FILE: &str = "[environments.production]\n[[sources]]\nkey = \"m-file\"\n\
        kind = \"http-legacy\"\n[sources.environments.production]\n\
        token = \"tok_m-file_0123456789abcdefghij\"\n";

    fn change(key: &str, revision: u64, event: Option<&str>) -> StoredSource {
        let document = event.map(|event| {
            json!({"key": key, "kind": "http-legacy", "environments": {"production": {
                "token": format!("tok_{key}_0123456789abcdefghij"),
                "mappings": [{"event": event, "action": "trigger_workflow",
                              "workflow": "w", "recipients": "userId"}]}}})
            .to_string()
        });
        StoredSource {
            key: key.to_owned(),
            revision,
            document,
        }
    }

    fn keys(live: &LiveConfig) -> Vec<&str> {
        live.sources().map(|s| s.config.key.as_str()).collect()
    }

    fn plans(live: &LiveConfig, source: &str, event: &str) -> usize {
        let now = Utc::now();
        let event = Event {
            id: EventId::generate(now),
            environment: "production".into(),
            source: source.into(),
            kind: EventKind::Track,
            event: event.into(),
            user_id: Some("u1".into()),
            anonymous_id: None,
            data: json!({}),
            timestamp: now,
            received_at: now,
            message_id: None,
            raw: json!({}),
            headers: Default::default(),
            preprocess: None,
        };
        live.engine().plan(&event, &Overrides::none()).len()
    }

    #[test]
    fn stored_sources_follow_the_files_by_key_and_each_revision_replaces_only_its_changes() {
        let config = load("t.toml", FILE, &|_| None).unwrap();
        let first = LiveConfig::from_file(&config);
        let mut unreadable = change("b", 1, None);
        unreadable.document = Some("{".into());
        let (one, problems) = first.with_changes(
            1,
            vec![
                change("c", 1, Some("A")),
                change("a", 1, Some("A")),
                change("m-file", 1, Some("A")),
                unreadable,
            ],
            &config.environments,
            None,
        );
        assert_eq!(keys(&one), ["m-file", "a", "c"]);
        let refused: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(refused, ["m-file", "b"], "{problems:?}");
        assert_eq!(plans(&one, "a", "A"), 1);
        assert_eq!(one.source("m-file").unwrap().origin, Origin::File);

        let (two, problems) = one.with_changes(
            2,
            vec![
                change("a", 2, None),
                change("b", 2, Some("B")),
                change("c", 2, Some("C")),
            ],
            &config.environments,
            None,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(two.revision(), 2);
        assert_eq!(keys(&two), ["m-file", "b", "c"]);
        assert!(two.route_by_token("tok_a_0123456789abcdefghij").is_none());
        assert!(two.route_by_token("tok_b_0123456789abcdefghij").is_some());
        assert_eq!((plans(&two, "a", "A"), plans(&two, "b", "B")), (0, 1));
        assert_eq!((plans(&two, "c", "A"), plans(&two, "c", "C")), (0, 1));
        // The revision before is untouched: requests holding it finish on it.
        assert_eq!(keys(&one), ["m-file", "a", "c"]);
        assert_eq!((plans(&one, "a", "A"), plans(&one, "c", "A")), (1, 1));
    }
}
