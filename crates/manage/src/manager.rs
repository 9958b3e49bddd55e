//! The operations: read, create, change and delete sources, environments
//! and mappings; rotate and reveal secrets; promote; list revisions.
//!
//! Every change follows one path ([`Manager::commit_source`]): read the
//! newest revision, check the caller's `If-Match` against the source's own
//! revision, apply the change to the source's document, compile it with the
//! file's loader, check credentials are not shared, and commit it as the
//! next revision. When another change (to any source) commits first, the
//! store refuses ours and the path runs again on the newer state, so a
//! change is never made against a state nobody checked.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tributary_adapter::RawRequest;
use tributary_core::{
    config::{DocumentError, SourceConfig, SourceKind, source_from_document},
    json::pointer_token,
};
use tributary_pipeline::{LiveConfig, LiveSource, Origin, Pipeline, PipelineError, Rehearsal};
use tributary_script::Script;
use tributary_store::{ConfigRevision, NewRevision, StoreError};

use crate::{
    ManageError,
    diff::{Change, diff, masked},
    secrets::{self, MaskedSecret},
};

/// How many times a change is re-applied when other changes keep committing first.
const COMMIT_ATTEMPTS: usize = 8;

/// Default grace period of a rotated receive token.
pub const DEFAULT_TOKEN_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Which credential of a source environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The receive URL's token.
    Token,
    /// The Tracking API write key.
    WriteKey,
    /// The resource API key.
    ApiKey,
}

impl Credential {
    /// The document key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::WriteKey => "write_key",
            Self::ApiKey => "api_key",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Token => "tok",
            Self::WriteKey => "wk",
            Self::ApiKey => "sk",
        }
    }

    /// From its document key.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Token, Self::WriteKey, Self::ApiKey]
            .into_iter()
            .find(|c| c.key() == name)
    }
}

/// A committed change: the revision and the source's new state.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The revision it made.
    pub revision: u64,
    /// The source as it is now (`None`: deleted).
    pub source: Option<Value>,
    /// Secrets made by the change, shown this once.
    pub secrets: Value,
}

/// The live configuration's management layer over a pipeline and its store.
pub struct Manager {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) file_documents: BTreeMap<String, Map<String, Value>>,
}

impl Manager {
    /// A manager over `pipeline`. `file_documents` are the configuration
    /// file's `[[sources]]` tables as written (see
    /// [`tributary_core::config::source_documents`]), shown for file sources.
    pub fn new(pipeline: Arc<Pipeline>, file_documents: Vec<Map<String, Value>>) -> Self {
        let file_documents = file_documents
            .into_iter()
            .filter_map(|d| Some((d.get("key")?.as_str()?.to_owned(), d)))
            .collect();
        Self {
            pipeline,
            file_documents,
        }
    }

    /// The pipeline it changes.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    async fn newest(&self) -> Result<Arc<LiveConfig>, ManageError> {
        self.pipeline.refresh_live().await?;
        Ok(self.pipeline.live())
    }

    /// Every source, with per-environment status.
    pub async fn sources(&self) -> Result<Vec<Value>, ManageError> {
        let live = self.newest().await?;
        let statuses = self.pipeline.store().source_statuses(Utc::now()).await?;
        Ok(live
            .sources()
            .map(|s| {
                let mut view = self.view(s);
                for (env, v) in view["environments"].as_object_mut().into_iter().flatten() {
                    let st = statuses
                        .iter()
                        .find(|st| st.source == s.config.key && st.environment == *env);
                    v["status"]["events_30d"] = json!(st.map_or(0, |st| st.count_30d));
                    v["status"]["last_received_at"] = json!(st.and_then(|st| st.last_received_at));
                }
                view
            })
            .collect())
    }

    /// One source.
    pub async fn source(&self, key: &str) -> Result<Value, ManageError> {
        let live = self.newest().await?;
        let source = live.source(key).ok_or_else(|| not_found("source", key))?;
        Ok(self.view(source))
    }

    /// The ETag of a source's current version.
    pub fn etag(source: &LiveSource) -> String {
        match &source.origin {
            Origin::File => "\"file\"".to_owned(),
            Origin::Store { revision, .. } => format!("\"{revision}\""),
        }
    }

    /// A source as a read shows it: its document with secrets masked,
    /// mapping ids and effective active switches, and mapping counts.
    pub fn view(&self, source: &LiveSource) -> Value {
        let document = match &source.origin {
            Origin::Store { document, .. } => document.clone(),
            Origin::File => self
                .file_documents
                .get(&source.config.key)
                .cloned()
                .unwrap_or_default(),
        };
        let mut view = Value::Object(masked(&document));
        let config = &source.config;
        let overrides = self.pipeline.overrides();
        view["key"] = json!(config.key);
        view["kind"] = json!(config.kind);
        view["name"] = json!(config.name);
        view["managed_by"] = json!(match source.origin {
            Origin::File => "file",
            Origin::Store { .. } => "api",
        });
        view["etag"] = json!(Self::etag(source));
        if let Origin::Store { revision, .. } = source.origin {
            view["revision"] = json!(revision);
        }
        let public_url = &self.pipeline.config().server.public_url;
        let mut environments = Map::new();
        for (slug, se) in &config.environments {
            let mut env = document
                .get("environments")
                .and_then(|e| e.get(slug))
                .and_then(Value::as_object)
                .map(masked)
                .unwrap_or_default();
            env.insert("token".into(), json!(MaskedSecret::of(se.token.expose())));
            env.insert(
                "receive_url".into(),
                json!(format!(
                    "{public_url}/integrations/receive/{}",
                    MaskedSecret::of(se.token.expose()).masked
                )),
            );
            for (name, secret) in [("write_key", &se.write_key), ("api_key", &se.api_key)] {
                if let Some(s) = secret {
                    env.insert(name.into(), json!(MaskedSecret::of(s.expose())));
                }
            }
            env.insert("identify".into(), json!(se.identify));
            let mappings: Vec<Value> = se
                .mappings
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let mut doc = document
                        .get("environments")
                        .and_then(|e| e.get(slug))
                        .and_then(|e| e.get("mappings"))
                        .and_then(|ms| ms.get(i))
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    doc["id"] = json!(m.id);
                    doc["active"] =
                        json!(overrides.get(&config.key, slug, &m.id).unwrap_or(m.active));
                    doc
                })
                .collect();
            let active = mappings
                .iter()
                .filter(|m| m["active"] == json!(true))
                .count();
            env.insert(
                "status".into(),
                json!({"mappings": mappings.len(), "active_mappings": active}),
            );
            env.insert("mappings".into(), Value::Array(mappings));
            environments.insert(slug.clone(), Value::Object(env));
        }
        view["environments"] = Value::Object(environments);
        view
    }

    /// Creates a source from `input` (`key`, `kind`, `name`, `description`,
    /// and optionally `environments` settings). Every environment the
    /// configuration declares gets a fresh receive token, and a write key
    /// (Segment-shaped kinds) or API key (reverse-ETL kinds); the answer
    /// holds them this once.
    pub async fn create_source(&self, actor: &str, input: Value) -> Result<Committed, ManageError> {
        let mut document = json_object(input, "a source")?;
        let key = document
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| ManageError::invalid("/key", "is required"))?
            .to_owned();
        let kind: Option<SourceKind> = document
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|k| k.parse().ok());
        let mut made = Map::new();
        let envs = document.entry("environments").or_insert_with(|| json!({}));
        if let Value::Object(envs) = envs {
            for slug in self.pipeline.config().environments.keys() {
                let env = envs.entry(slug.clone()).or_insert_with(|| json!({}));
                let Value::Object(env) = env else { continue };
                made.insert(slug.clone(), self.fill_credentials(kind, env));
            }
        }
        let summary = format!("create source {key}");
        let mut committed = self
            .commit_source(actor, &summary, &key, None, |current, doc| {
                if current.is_some() {
                    return Err(ManageError::Conflict {
                        pointer: "/key".into(),
                        message: format!("a source with key `{key}` already exists"),
                    });
                }
                *doc = Some(document.clone());
                Ok(())
            })
            .await?;
        committed.secrets = Value::Object(made);
        Ok(committed)
    }

    /// Gives a source environment's document the credentials its kind
    /// takes and it lacks (a receive token; a write key for Segment-shaped
    /// kinds, an API key for reverse-ETL kinds), and answers those made.
    fn fill_credentials(&self, kind: Option<SourceKind>, env: &mut Map<String, Value>) -> Value {
        let mut wanted = vec![Credential::Token];
        match kind {
            Some(k) if k.is_cdp() => wanted.push(Credential::WriteKey),
            Some(SourceKind::Hightouch | SourceKind::Census | SourceKind::Polytomic) => {
                wanted.push(Credential::ApiKey);
            }
            _ => {}
        }
        let mut shown = Map::new();
        for c in wanted {
            if !env.contains_key(c.key()) {
                let value = secrets::generate(c.prefix());
                env.insert(c.key().into(), json!(value));
                shown.insert(c.key().into(), json!(value));
            }
        }
        if let Some(token) = shown.get("token").and_then(Value::as_str) {
            shown.insert("receive_url".into(), json!(self.receive_url(token)));
        }
        Value::Object(shown)
    }

    /// Adds an environment the configuration declares to a source that does
    /// not have it yet (one made before the environment was declared), with
    /// fresh credentials (answered once) and `settings` as its document.
    pub async fn create_environment(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        settings: Value,
    ) -> Result<Committed, ManageError> {
        let mut env = json_object(settings, "an environment")?;
        if !self
            .pipeline
            .config()
            .environments
            .contains_key(environment)
        {
            return Err(not_found("environment", environment));
        }
        let kind = self.pipeline.live().source(key).map(|s| s.config.kind);
        let made = self.fill_credentials(kind, &mut env);
        let summary = format!("create environment {environment} of source {key}");
        let mut committed = self
            .commit_source(actor, &summary, key, None, |_, doc| {
                let doc = doc.as_mut().ok_or_else(|| not_found("source", key))?;
                let envs = doc.entry("environments").or_insert_with(|| json!({}));
                let Value::Object(envs) = envs else {
                    return Err(ManageError::invalid("/environments", "must be an object"));
                };
                if envs.contains_key(environment) {
                    return Err(ManageError::Conflict {
                        pointer: String::new(),
                        message: format!("source `{key}` already has environment `{environment}`"),
                    });
                }
                envs.insert(environment.to_owned(), Value::Object(env.clone()));
                Ok(())
            })
            .await?;
        committed.secrets = made;
        Ok(committed)
    }

    fn receive_url(&self, token: &str) -> String {
        format!(
            "{}/integrations/receive/{token}",
            self.pipeline.config().server.public_url
        )
    }

    /// Changes a source's `name` and `description` (JSON merge patch:
    /// `null` removes the description).
    pub async fn update_source(
        &self,
        actor: &str,
        key: &str,
        if_match: Option<&str>,
        patch: Value,
    ) -> Result<Committed, ManageError> {
        let patch = json_object(patch, "a change")?;
        for field in patch.keys() {
            if !["name", "description"].contains(&field.as_str()) {
                return Err(ManageError::invalid(
                    format!("/{field}"),
                    "only `name` and `description` change here; environments and mappings have their own routes",
                ));
            }
        }
        self.commit_source(
            actor,
            &format!("update source {key}"),
            key,
            if_match,
            |_, doc| {
                let doc = doc.as_mut().ok_or_else(|| not_found("source", key))?;
                merge(doc, &patch);
                Ok(())
            },
        )
        .await
    }

    /// Deletes a source. Refused while it has mappings unless `force`. Its
    /// URLs answer 404 from the next revision on; its logs are kept.
    pub async fn delete_source(
        &self,
        actor: &str,
        key: &str,
        if_match: Option<&str>,
        force: bool,
    ) -> Result<Committed, ManageError> {
        let committed = self.commit_source(actor, &format!("delete source {key}"), key, if_match, |current, doc| {
            let current = current.ok_or_else(|| not_found("source", key))?;
            let mappings: usize = current
                .config
                .environments
                .values()
                .map(|e| e.mappings.len())
                .sum();
            if mappings > 0 && !force {
                return Err(ManageError::Conflict {
                    pointer: String::new(),
                    message: format!(
                        "source `{key}` has {mappings} mappings; delete them first or pass force=true"
                    ),
                });
            }
            *doc = None;
            Ok(())
        })
        .await?;
        self.forget_switches(key, None).await?;
        Ok(committed)
    }

    /// Changes one environment's settings with a JSON merge patch over its
    /// document (`identify`, `verification`, `dedup`, `event_type`,
    /// `event_type_path`, `timestamp_path`, `write_key`, `api_key`).
    /// Mappings and the token have their own operations.
    pub async fn update_environment(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        if_match: Option<&str>,
        patch: Value,
    ) -> Result<Committed, ManageError> {
        let patch = json_object(patch, "a change")?;
        for field in patch.keys() {
            if ["mappings", "token", "retired_tokens"].contains(&field.as_str()) {
                return Err(ManageError::invalid(
                    format!("/{field}"),
                    "changes through its own route (mappings, rotate)",
                ));
            }
        }
        let summary = format!("update environment {environment} of source {key}");
        self.commit_source(actor, &summary, key, if_match, |_, doc| {
            let env = environment_of(doc, key, environment)?;
            merge(env, &patch);
            Ok(())
        })
        .await
    }

    /// Replaces a credential with a fresh one. A replaced receive token keeps
    /// working for `grace` (so senders can move to the new URL); a write key
    /// or API key stops at once. The answer holds the new secret this once.
    pub async fn rotate(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        credential: Credential,
        grace: Duration,
    ) -> Result<Committed, ManageError> {
        let fresh = secrets::generate(credential.prefix());
        let until = Utc::now() + chrono::Duration::from_std(grace).unwrap_or_default();
        let summary = format!("rotate {} of {key}/{environment}", credential.key());
        let mut committed = self
            .commit_source(actor, &summary, key, None, |_, doc| {
                let env = environment_of(doc, key, environment)?;
                let old = env.insert(credential.key().into(), json!(fresh));
                if credential == Credential::Token
                    && let Some(Value::String(old)) = old
                    && !grace.is_zero()
                {
                    let now = Utc::now();
                    let retired = env.entry("retired_tokens").or_insert_with(|| json!([]));
                    if let Value::Array(list) = retired {
                        // Expired ones go; they answer nothing any more.
                        list.retain(|t| {
                            t["until"]
                                .as_str()
                                .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
                                .is_some_and(|u| u > now)
                        });
                        list.push(json!({"token": old, "until": until.to_rfc3339()}));
                    }
                }
                Ok(())
            })
            .await?;
        let mut shown = json!({ credential.key(): fresh });
        if credential == Credential::Token {
            shown["receive_url"] = json!(self.receive_url(&fresh));
            if !grace.is_zero() {
                shown["previous_token_valid_until"] = json!(until);
            }
        }
        committed.secrets = shown;
        Ok(committed)
    }

    /// A credential in full, recorded in the revision log as a reveal
    /// (who, which, when; never the value).
    pub async fn reveal(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        credential: Credential,
    ) -> Result<String, ManageError> {
        let live = self.newest().await?;
        let source = live.source(key).ok_or_else(|| not_found("source", key))?;
        let se = source
            .config
            .environments
            .get(environment)
            .ok_or_else(|| not_found("environment", environment))?;
        let value = match credential {
            Credential::Token => Some(se.token.expose()),
            Credential::WriteKey => se.write_key.as_ref().map(|s| s.expose()),
            Credential::ApiKey => se.api_key.as_ref().map(|s| s.expose()),
        }
        .ok_or_else(|| not_found("credential", credential.key()))?
        .to_owned();
        let summary = format!("reveal {} of {key}/{environment}", credential.key());
        let changes = json!([{"op": "reveal", "source": key, "environment": environment,
            "credential": credential.key(), "fingerprint": secrets::fingerprint(&value)}]);
        self.commit_record(actor, &summary, changes).await?;
        Ok(value)
    }

    /// The mappings of one source environment, as a read shows them.
    pub async fn mappings(&self, key: &str, environment: &str) -> Result<Vec<Value>, ManageError> {
        let view = self.source(key).await?;
        let env = view["environments"]
            .get(environment)
            .ok_or_else(|| not_found("environment", environment))?;
        Ok(env["mappings"].as_array().cloned().unwrap_or_default())
    }

    /// One mapping.
    pub async fn mapping(
        &self,
        key: &str,
        environment: &str,
        id: &str,
    ) -> Result<Value, ManageError> {
        self.mappings(key, environment)
            .await?
            .into_iter()
            .find(|m| m["id"] == json!(id))
            .ok_or_else(|| not_found("mapping", id))
    }

    /// Adds a mapping at the end of the environment's list. Without an
    /// `id` it gets the id the file's loader would derive.
    pub async fn create_mapping(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        if_match: Option<&str>,
        mapping: Value,
    ) -> Result<Committed, ManageError> {
        let mapping = json_object(mapping, "a mapping")?;
        let summary = format!("create mapping in {key}/{environment}");
        let index = std::sync::Mutex::new(0usize);
        self.commit_source(actor, &summary, key, if_match, |current, doc| {
            let env = environment_of(doc, key, environment)?;
            let list = env.entry("mappings").or_insert_with(|| json!([]));
            let Value::Array(list) = list else {
                return Err(ManageError::invalid("/mappings", "must be a list"));
            };
            if let Some(id) = mapping.get("id").and_then(Value::as_str)
                && current
                    .and_then(|c| c.config.environments.get(environment))
                    .is_some_and(|e| e.mappings.iter().any(|m| m.id == id))
            {
                return Err(ManageError::Conflict {
                    pointer: "/id".into(),
                    message: format!("a mapping with id `{id}` already exists"),
                });
            }
            *index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = list.len();
            let mut mapping = mapping.clone();
            let taken: Vec<String> = current
                .and_then(|c| c.config.environments.get(environment))
                .map(|e| e.mappings.iter().map(|m| m.id.clone()).collect())
                .unwrap_or_default();
            pin_id(&mut mapping, &taken);
            list.push(Value::Object(mapping));
            Ok(())
        })
        .await
        .map_err(|e| {
            within_mapping(
                e,
                environment,
                *index
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        })
    }

    /// Changes a mapping with a JSON merge patch (`null` removes a
    /// parameter). On a file source only `active` may change: it is the
    /// runtime switch, kept in the store.
    pub async fn update_mapping(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        id: &str,
        if_match: Option<&str>,
        patch: Value,
    ) -> Result<Committed, ManageError> {
        let patch = json_object(patch, "a change")?;
        let live = self.newest().await?;
        let source = live.source(key).ok_or_else(|| not_found("source", key))?;
        let position = source
            .config
            .environments
            .get(environment)
            .ok_or_else(|| not_found("environment", environment))?
            .mappings
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| not_found("mapping", id))?;
        let active = patch.get("active").and_then(Value::as_bool);
        if source.origin == Origin::File {
            let only_active = patch.len() == 1 && active.is_some();
            if !only_active {
                return Err(ManageError::ManagedByFile(key.to_owned()));
            }
        }
        if let Some(active) = active {
            // The runtime switch is what the engine reads first, for file
            // and stored sources alike; the document keeps the same value.
            self.pipeline
                .set_mapping_active(key, environment, id, active)
                .await?;
        }
        let summary = format!("update mapping {id} in {key}/{environment}");
        if source.origin == Origin::File {
            let changes = json!([{"op": "set_active", "source": key, "environment": environment,
                "mapping": id, "active": active}]);
            let revision = self.commit_record(actor, &summary, changes).await?;
            return Ok(Committed {
                revision: revision.number,
                source: Some(self.view(source)),
                secrets: Value::Null,
            });
        }
        drop(live);
        self.commit_source(actor, &summary, key, if_match, |_, doc| {
            let env = environment_of(doc, key, environment)?;
            let Some(Value::Array(list)) = env.get_mut("mappings") else {
                return Err(not_found("mapping", id));
            };
            let m = list
                .get_mut(position)
                .ok_or_else(|| not_found("mapping", id))?;
            let Value::Object(m) = m else {
                return Err(not_found("mapping", id));
            };
            merge(m, &patch);
            m.insert("id".into(), json!(id));
            Ok(())
        })
        .await
        .map_err(|e| within_mapping(e, environment, position))
    }

    /// Replaces an environment's whole list of mappings (ids pinned as on
    /// create), as one revision.
    pub async fn replace_mappings(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        mappings: Value,
    ) -> Result<Committed, ManageError> {
        let Value::Array(list) = mappings else {
            return Err(ManageError::invalid("/mappings", "must be a list"));
        };
        let mut pinned = Vec::with_capacity(list.len());
        let mut taken = Vec::new();
        for m in list {
            let Value::Object(mut m) = m else {
                return Err(ManageError::invalid(
                    "/mappings",
                    "each mapping is an object",
                ));
            };
            pin_id(&mut m, &taken);
            if let Some(id) = m.get("id").and_then(Value::as_str) {
                taken.push(id.to_owned());
            }
            pinned.push(Value::Object(m));
        }
        let summary = format!("replace the mappings of {key}/{environment}");
        self.commit_source(actor, &summary, key, None, |_, doc| {
            let env = environment_of(doc, key, environment)?;
            env.insert("mappings".into(), Value::Array(pinned.clone()));
            Ok(())
        })
        .await
    }

    /// Deletes a mapping.
    pub async fn delete_mapping(
        &self,
        actor: &str,
        key: &str,
        environment: &str,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Committed, ManageError> {
        let summary = format!("delete mapping {id} in {key}/{environment}");
        let committed = self
            .commit_source(actor, &summary, key, if_match, |current, doc| {
                let position = current
                    .and_then(|c| c.config.environments.get(environment))
                    .and_then(|e| e.mappings.iter().position(|m| m.id == id))
                    .ok_or_else(|| not_found("mapping", id))?;
                let env = environment_of(doc, key, environment)?;
                if let Some(Value::Array(list)) = env.get_mut("mappings")
                    && position < list.len()
                {
                    list.remove(position);
                }
                Ok(())
            })
            .await?;
        self.forget_switches(key, Some((environment, id))).await?;
        Ok(committed)
    }

    /// Copies a source's mappings from one environment to another: the
    /// target's list becomes the source's, ids kept, active switches as
    /// they are now. With `dry_run` nothing is written; either way the
    /// answer lists what changes.
    pub async fn promote(
        &self,
        actor: &str,
        key: &str,
        from: &str,
        to: &str,
        dry_run: bool,
    ) -> Result<(Vec<Change>, Option<u64>), ManageError> {
        let view = self.source(key).await?;
        let mappings = |env: &str| -> Result<Value, ManageError> {
            view["environments"]
                .get(env)
                .map(|e| e["mappings"].clone())
                .ok_or_else(|| not_found("environment", env))
        };
        let (source_list, target_list) = (mappings(from)?, mappings(to)?);
        let changes = diff(Some(&target_list), Some(&source_list));
        if dry_run || changes.is_empty() {
            return Ok((changes, None));
        }
        if view["managed_by"] == json!("file") {
            return Err(ManageError::ManagedByFile(key.to_owned()));
        }
        let summary = format!("promote mappings of {key} from {from} to {to}");
        let committed = self
            .commit_source(actor, &summary, key, None, |_, doc| {
                let env = environment_of(doc, key, to)?;
                env.insert("mappings".into(), source_list.clone());
                Ok(())
            })
            .await?;
        for m in source_list.as_array().into_iter().flatten() {
            if let (Some(id), Some(active)) = (m["id"].as_str(), m["active"].as_bool()) {
                self.pipeline
                    .set_mapping_active(key, to, id, active)
                    .await?;
            }
        }
        Ok((changes, Some(committed.revision)))
    }

    /// Runs a raw payload, as the platform would send it, through a source
    /// environment's verification (when `verify`), adapter and mappings:
    /// the served ones, or `proposed` (a list of mappings, as in the file)
    /// in their place. Nothing is stored and nothing runs. The inner `Err`
    /// is the adapter's refusal, as a real request would get it.
    pub async fn rehearse(
        &self,
        key: &str,
        environment: &str,
        request: RawRequest,
        verify: bool,
        proposed: Option<&Value>,
    ) -> Result<Result<Rehearsal, PipelineError>, ManageError> {
        let live = self.pipeline.live();
        let source = live.source(key).ok_or_else(|| not_found("source", key))?;
        if !source.config.environments.contains_key(environment) {
            return Err(not_found("environment", environment));
        }
        let proposed = match proposed {
            Some(mappings) => Some(self.with_mappings(source, environment, mappings)?),
            None => None,
        };
        match self
            .pipeline
            .rehearse(key, environment, request, verify, proposed.as_ref())
            .await
        {
            Ok(Some(r)) => Ok(Ok(r)),
            Ok(None) => Err(not_found("environment", environment)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// `source` with one environment's mappings replaced by `mappings`,
    /// compiled by the file's loader (errors point into the list).
    fn with_mappings(
        &self,
        source: &LiveSource,
        environment: &str,
        mappings: &Value,
    ) -> Result<SourceConfig, ManageError> {
        // Only the mappings are compiled here: a stand-in token satisfies
        // the loader, and the kind gives the paths their meaning.
        let document = json!({
            "key": source.config.key,
            "kind": source.config.kind,
            "environments": {environment: {
                "token": "tok_rehearsal_stand_in_0000",
                "mappings": mappings,
            }},
        });
        let compiled = source_from_document(&document, &self.pipeline.config().environments)
            .map_err(|errors| {
                let prefix = format!("/environments/{environment}");
                ManageError::Invalid(
                    errors
                        .into_iter()
                        .map(|mut d| {
                            if let Some(rest) = d.pointer.strip_prefix(&prefix) {
                                d.pointer = rest.to_owned();
                            }
                            d
                        })
                        .collect(),
                )
            })?;
        let mut config = source.config.clone();
        if let (Some(target), Some(from)) = (
            config.environments.get_mut(environment),
            compiled.environments.get(environment),
        ) {
            target.mappings.clone_from(&from.mappings);
        }
        Ok(config)
    }

    /// A deleted source's or mapping's runtime switches go with it, so one
    /// made later under the same names starts from its own `active`.
    async fn forget_switches(
        &self,
        key: &str,
        mapping: Option<(&str, &str)>,
    ) -> Result<(), ManageError> {
        self.pipeline
            .store()
            .forget_mapping_overrides(key, mapping)
            .await?;
        self.pipeline.refresh_overrides().await?;
        Ok(())
    }

    /// Revisions, newest first, below `before` when given.
    pub async fn revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ConfigRevision>, ManageError> {
        Ok(self
            .pipeline
            .store()
            .config_revisions(before, limit)
            .await?)
    }

    /// Records a revision that changes no source (a reveal, a file source's
    /// switch), retrying on a concurrent commit.
    async fn commit_record(
        &self,
        actor: &str,
        summary: &str,
        changes: Value,
    ) -> Result<ConfigRevision, ManageError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let base = self.pipeline.store().config_head().await?;
            let revision = NewRevision {
                actor: actor.to_owned(),
                summary: summary.to_owned(),
                changes: changes.clone(),
                sources: Vec::new(),
            };
            if let Some(committed) = self.commit_and_serve(base, revision).await? {
                return Ok(committed);
            }
        }
        Err(StoreError::Conflict("configuration changes kept colliding".into()).into())
    }

    /// Commits `revision` over revision `base` and serves it. `None` when
    /// another change took that revision first: the caller checks its change
    /// again against the new one.
    pub(crate) async fn commit_and_serve(
        &self,
        base: u64,
        revision: NewRevision,
    ) -> Result<Option<ConfigRevision>, ManageError> {
        match self.pipeline.store().commit_config(base, revision).await {
            Err(StoreError::RevisionTaken { .. }) => Ok(None),
            Err(e) => Err(e.into()),
            Ok(committed) => {
                self.pipeline.refresh_live().await?;
                Ok(Some(committed))
            }
        }
    }

    /// The one path every change to a stored source takes (module docs).
    /// `change` gets the source as served now (if any) and its document
    /// (`None`: absent or to be deleted) to change in place.
    async fn commit_source<F>(
        &self,
        actor: &str,
        summary: &str,
        key: &str,
        if_match: Option<&str>,
        change: F,
    ) -> Result<Committed, ManageError>
    where
        F: Fn(Option<&LiveSource>, &mut Option<Map<String, Value>>) -> Result<(), ManageError>,
    {
        for _ in 0..COMMIT_ATTEMPTS {
            let live = self.newest().await?;
            let current = live.source(key);
            if let Some(c) = current {
                if c.origin == Origin::File {
                    return Err(ManageError::ManagedByFile(key.to_owned()));
                }
                if let Some(expected) = if_match
                    && !etag_matches(expected, &Self::etag(c))
                {
                    return Err(ManageError::Stale {
                        key: key.to_owned(),
                        current: Self::etag(c),
                    });
                }
            } else if self.file_documents.contains_key(key) {
                return Err(ManageError::ManagedByFile(key.to_owned()));
            }
            let before = match current.map(|c| &c.origin) {
                Some(Origin::Store { document, .. }) => Some(document.clone()),
                _ => None,
            };
            let mut after = before.clone();
            change(current, &mut after)?;
            let compiled = match &after {
                Some(doc) => Some(self.check(&live, key, doc)?),
                None => None,
            };
            if let Some(source) = &compiled {
                self.check_scripts(source).await?;
            }
            let changes: Vec<Change> = diff(
                before.clone().map(Value::Object).as_ref(),
                after.clone().map(Value::Object).as_ref(),
            );
            let revision = NewRevision {
                actor: actor.to_owned(),
                summary: summary.to_owned(),
                changes: json!([{"op": summary, "source": key, "changes": changes}]),
                sources: vec![(key.to_owned(), after.as_ref().map(|d| self.stored_text(d)))],
            };
            let Some(committed) = self.commit_and_serve(live.revision(), revision).await? else {
                continue;
            };
            tracing::info!(
                actor,
                revision = committed.number,
                source = key,
                "{summary}."
            );
            let now = self.pipeline.live();
            let source = compiled.and(now.source(key)).map(|s| self.view(s));
            return Ok(Committed {
                revision: committed.number,
                source,
                secrets: Value::Null,
            });
        }
        Err(StoreError::Conflict("configuration changes kept colliding".into()).into())
    }

    /// A document as the store keeps it: its secrets sealed when
    /// `[store] secrets_key` is set (docs/managing-sources.md, "Secrets at rest").
    pub(crate) fn stored_text(&self, document: &Map<String, Value>) -> String {
        let mut document = document.clone();
        if let Some(key) = &self.pipeline.config().store.secrets_key {
            key.seal(&mut document, &mut || rand::random());
        }
        Value::Object(document).to_string()
    }

    /// Compiles a document as the file's loader would, and refuses a
    /// credential another source environment already has.
    /// Refuses a source whose preprocess script does not load or exports no
    /// `main`, naming the line. A busy pool skips the check: the script is
    /// checked again when it first runs.
    async fn check_scripts(&self, source: &SourceConfig) -> Result<(), ManageError> {
        let errors = self.script_errors(source, "").await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ManageError::Invalid(errors))
        }
    }

    /// Each of `source`'s preprocess scripts that does not load or exports
    /// no `main`, at `{prefix}/environments/<slug>/preprocess/script`.
    pub(crate) async fn script_errors(
        &self,
        source: &SourceConfig,
        prefix: &str,
    ) -> Vec<DocumentError> {
        let mut errors = Vec::new();
        for (environment, settings) in &source.environments {
            let Some(p) = &settings.preprocess else {
                continue;
            };
            let script = Script::new(
                format!("{}/{environment}", source.key),
                p.script.as_str(),
                Vec::new(),
            );
            match self.pipeline.scripts().check(&script).await {
                Err(e) if !e.is_transient() => errors.push(DocumentError {
                    pointer: format!(
                        "{prefix}/environments/{}/preprocess/script",
                        pointer_token(environment)
                    ),
                    message: e.to_string(),
                }),
                _ => {}
            }
        }
        errors
    }

    fn check(
        &self,
        live: &LiveConfig,
        key: &str,
        document: &Map<String, Value>,
    ) -> Result<SourceConfig, ManageError> {
        if document.get("key").and_then(Value::as_str) != Some(key) {
            return Err(ManageError::invalid("/key", format!("must stay `{key}`")));
        }
        let compiled = source_from_document(
            &Value::Object(document.clone()),
            &self.pipeline.config().environments,
        )
        .map_err(ManageError::Invalid)?;
        // One pass over every other source environment's credentials, each
        // probed in a set of this document's: the common case (nothing
        // shared) costs one hash probe per credential, no allocation. Only a
        // hit runs the ordered search below, which names the conflict.
        let mine: HashSet<(&str, &str)> = compiled
            .environments
            .values()
            .flat_map(credentials)
            .collect();
        let shared = live
            .sources()
            .filter(|s| s.config.key != key)
            .flat_map(|s| s.config.environments.values())
            .any(|other_se| credentials(other_se).any(|c| mine.contains(&c)));
        if !shared {
            return Ok(compiled);
        }
        for (slug, se) in &compiled.environments {
            let mine: Vec<_> = credentials(se).collect();
            for other in live.sources().filter(|s| s.config.key != key) {
                for (other_slug, other_se) in &other.config.environments {
                    for (what, value) in &mine {
                        let taken = credentials(other_se).any(|(w, v)| w == *what && v == *value);
                        if taken {
                            return Err(ManageError::Conflict {
                                pointer: format!("/environments/{slug}/{what}"),
                                message: format!(
                                    "the same {what} is already used by {}/{other_slug}",
                                    other.config.key
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(compiled)
    }
}

/// Gives a mapping without an `id` the one the file's loader would derive
/// (`<event>:<action>`, then `#2`, `#3` past those `taken`), written down so
/// later changes to other mappings never move it.
fn pin_id(mapping: &mut Map<String, Value>, taken: &[String]) {
    if mapping.contains_key("id") {
        return;
    }
    let (Some(event), Some(action)) = (
        mapping.get("event").and_then(Value::as_str),
        mapping.get("action").and_then(Value::as_str),
    ) else {
        return;
    };
    let base = format!("{event}:{action}");
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains(&id) {
        n += 1;
        id = format!("{base}#{n}");
    }
    mapping.insert("id".into(), json!(id));
}

/// Every credential of a source environment, by kind (retired tokens count
/// as tokens: they still route).
pub(crate) fn credentials(
    se: &tributary_core::config::SourceEnvironment,
) -> impl Iterator<Item = (&'static str, &str)> {
    std::iter::once(("token", se.token.expose()))
        .chain(
            se.retired_tokens
                .iter()
                .map(|t| ("token", t.token.expose())),
        )
        .chain(se.write_key.iter().map(|k| ("write_key", k.expose())))
        .chain(se.api_key.iter().map(|k| ("api_key", k.expose())))
}

fn not_found(what: &'static str, id: &str) -> ManageError {
    ManageError::NotFound {
        what,
        id: id.to_owned(),
    }
}

fn environment_of<'a>(
    doc: &'a mut Option<Map<String, Value>>,
    key: &str,
    environment: &str,
) -> Result<&'a mut Map<String, Value>, ManageError> {
    doc.as_mut()
        .ok_or_else(|| not_found("source", key))?
        .get_mut("environments")
        .and_then(Value::as_object_mut)
        .and_then(|e| e.get_mut(environment))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| not_found("environment", environment))
}

/// An error about one mapping of a source document, re-pointed into the
/// mapping itself (what the caller sent).
fn within_mapping(e: ManageError, environment: &str, index: usize) -> ManageError {
    let prefix = format!("/environments/{environment}/mappings/{index}");
    match e {
        ManageError::Invalid(errors) => ManageError::Invalid(
            errors
                .into_iter()
                .map(|mut d| {
                    if let Some(rest) = d.pointer.strip_prefix(&prefix) {
                        d.pointer = rest.to_owned();
                    }
                    d
                })
                .collect(),
        ),
        other => other,
    }
}

/// The object a request sent as `what` ("a source", "a change", ...).
fn json_object(value: Value, what: &str) -> Result<Map<String, Value>, ManageError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ManageError::invalid("", format!("{what} is a JSON object"))),
    }
}

/// RFC 7396 JSON merge patch: `null` removes, objects merge, the rest replaces.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => {
                let slot = target.entry(k.clone()).or_insert_with(|| json!({}));
                if let Value::Object(t) = slot {
                    merge(t, p);
                } else {
                    *slot = Value::Object(p.clone());
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

/// `If-Match` as sent: `"3"`, `W/"3"`, `3` or `*`.
fn etag_matches(presented: &str, current: &str) -> bool {
    let bare = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned()
    };
    presented.trim() == "*" || presented.split(',').any(|p| bare(p) == bare(current))
}

/// A payload to rehearse as the request a platform would send: a string
/// is its bytes, anything else JSON; `content-type: application/json`
/// unless the headers say otherwise.
pub fn rehearsal_request(body: Value, headers: &BTreeMap<String, String>) -> RawRequest {
    let bytes = match body {
        Value::String(s) => s.into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let mut raw = RawRequest::new("", "", bytes, Utc::now());
    if !headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        raw = raw.with_header("content-type", "application/json");
    }
    for (name, value) in headers {
        raw = raw.with_header(name.to_ascii_lowercase(), value);
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_removes_merges_and_replaces() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]})
            .as_object()
            .cloned()
            .unwrap();
        let patch = json!({"a": null, "b": {"c": 5}, "e": [2], "f": "new"});
        merge(&mut target, patch.as_object().unwrap());
        assert_eq!(
            Value::Object(target),
            json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "new"})
        );
    }

    #[test]
    fn if_match_accepts_quoted_weak_bare_and_star() {
        assert!(etag_matches("\"3\"", "\"3\""));
        assert!(etag_matches("W/\"3\"", "\"3\""));
        assert!(etag_matches("3", "\"3\""));
        assert!(etag_matches("*", "\"9\""));
        assert!(etag_matches("\"1\", \"3\"", "\"3\""));
        assert!(!etag_matches("\"2\"", "\"3\""));
    }
}
