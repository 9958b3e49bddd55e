//! Every read of the configuration the console makes: sources, their
//! environments and mappings, the public URL, the admin token. Nothing else
//! in this crate touches `Pipeline::config()`, so how the live configuration
//! is obtained can change here alone.

use tributary_core::Secret;
use tributary_pipeline::Pipeline;

/// One configured source, as the console shows it.
#[derive(Clone, Debug)]
pub(crate) struct SourceView {
    pub(crate) key: String,
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) environments: Vec<EnvironmentView>,
}

/// One environment of a source.
#[derive(Clone, Debug)]
pub(crate) struct EnvironmentView {
    pub(crate) slug: String,
    /// The full receive URL (its path holds the token).
    pub(crate) receive_url: String,
    pub(crate) has_write_key: bool,
    pub(crate) has_api_key: bool,
    pub(crate) identify: bool,
    pub(crate) mappings: Vec<MappingView>,
}

impl EnvironmentView {
    pub(crate) fn active_mappings(&self) -> usize {
        self.mappings.iter().filter(|m| m.active).count()
    }
}

/// One mapping with whether it runs now (its toggle, else the file).
#[derive(Clone, Debug)]
pub(crate) struct MappingView {
    pub(crate) id: String,
    pub(crate) event: String,
    pub(crate) action: &'static str,
    pub(crate) active: bool,
}

/// Which credential of a source environment to reveal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CredentialKind {
    /// The Tracking API write key.
    WriteKey,
    /// The environment's API key (bearer key of the resource API).
    ApiKey,
}

impl CredentialKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::WriteKey => "write_key",
            Self::ApiKey => "api_key",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::WriteKey => "Write key",
            Self::ApiKey => "API key",
        }
    }
}

/// The admin token the console signs in with; `None` turns the console off.
pub(crate) fn admin_token(pipeline: &Pipeline) -> Option<Secret> {
    pipeline.config().admin.token.clone()
}

/// Whether the service is reached over HTTPS (the session cookie is then `Secure`).
pub(crate) fn served_over_https(pipeline: &Pipeline) -> bool {
    pipeline
        .config()
        .server
        .public_url
        .to_ascii_lowercase()
        .starts_with("https://")
}

/// Every source being served: the file's in file order, then those made
/// through the management API.
pub(crate) fn sources(pipeline: &Pipeline) -> Vec<SourceView> {
    let config = pipeline.config();
    let base = config.server.public_url.trim_end_matches('/');
    let live = pipeline.live();
    live.sources()
        .map(|s| &s.config)
        .map(|source| SourceView {
            key: source.key.clone(),
            kind: source.kind.as_str(),
            name: source.name.clone(),
            environments: source
                .environments
                .iter()
                .map(|(slug, se)| EnvironmentView {
                    slug: slug.clone(),
                    receive_url: format!("{base}/integrations/receive/{}", se.token.expose()),
                    has_write_key: se.write_key.is_some(),
                    has_api_key: se.api_key.is_some(),
                    identify: se.identify,
                    mappings: se
                        .mappings
                        .iter()
                        .map(|m| MappingView {
                            id: m.id.clone(),
                            event: m.event.clone(),
                            action: m.action.as_str(),
                            active: pipeline.mapping_active(&source.key, slug, m),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// One source and one of its environments.
pub(crate) fn environment(
    pipeline: &Pipeline,
    source: &str,
    environment: &str,
) -> Option<(SourceView, EnvironmentView)> {
    let mut view = sources(pipeline).into_iter().find(|s| s.key == source)?;
    let index = view
        .environments
        .iter()
        .position(|e| e.slug == environment)?;
    let env = view.environments.swap_remove(index);
    view.environments.clear();
    Some((view, env))
}

/// A credential's value, for the one place that shows it (a reveal).
pub(crate) fn credential(
    pipeline: &Pipeline,
    source: &str,
    environment: &str,
    kind: CredentialKind,
) -> Option<String> {
    let live = pipeline.live();
    let se = live.source(source)?.config.environments.get(environment)?;
    let secret = match kind {
        CredentialKind::WriteKey => se.write_key.as_ref(),
        CredentialKind::ApiKey => se.api_key.as_ref(),
    }?;
    Some(secret.expose().to_owned())
}
