//! Every read of the configuration the console makes: sources, their
//! environments and mappings, the public URL, the admin token. Nothing else
//! in this crate touches `Pipeline::config()`, so how the live configuration
//! is obtained can change here alone.

use tributary_core::{Secret, config::SourceKind};
use tributary_manage::{Credential, MaskedSecret};
use tributary_pipeline::{Origin, Pipeline};

/// One configured source, as the console shows it.
#[derive(Clone, Debug)]
pub(crate) struct SourceView {
    pub(crate) key: String,
    pub(crate) kind: SourceKind,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Defined in the configuration file: only its switches change here.
    pub(crate) managed_by_file: bool,
    pub(crate) environments: Vec<EnvironmentView>,
}

/// One environment of a source.
#[derive(Clone, Debug)]
pub(crate) struct EnvironmentView {
    pub(crate) slug: String,
    /// The receive URL with its token masked (the token is the URL's
    /// credential; the full URL is shown only by a recorded reveal).
    pub(crate) receive_url_masked: String,
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

/// Which credential of a source environment to reveal or rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CredentialKind {
    /// The receive URL's token (a reveal shows the whole URL).
    Token,
    /// The Tracking API write key.
    WriteKey,
    /// The environment's API key (bearer key of the resource API).
    ApiKey,
}

impl CredentialKind {
    pub(crate) fn as_str(self) -> &'static str {
        self.credential().key()
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Token => "Receive URL",
            Self::WriteKey => "Write key",
            Self::ApiKey => "API key",
        }
    }

    /// The management layer's name for it.
    pub(crate) fn credential(self) -> Credential {
        match self {
            Self::Token => Credential::Token,
            Self::WriteKey => Credential::WriteKey,
            Self::ApiKey => Credential::ApiKey,
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
        .map(|live| (&live.config, live.origin == Origin::File))
        .map(|(source, managed_by_file)| SourceView {
            key: source.key.clone(),
            kind: source.kind,
            name: source.name.clone(),
            description: source.description.clone().unwrap_or_default(),
            managed_by_file,
            environments: source
                .environments
                .iter()
                .map(|(slug, se)| EnvironmentView {
                    slug: slug.clone(),
                    receive_url_masked: receive_url(
                        base,
                        &MaskedSecret::of(se.token.expose()).masked,
                    ),
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

/// A receive URL for a token (or its masked form).
pub(crate) fn receive_url(base: &str, token: &str) -> String {
    format!(
        "{}/integrations/receive/{token}",
        base.trim_end_matches('/')
    )
}

/// The service's public URL, without a trailing slash.
pub(crate) fn public_url(pipeline: &Pipeline) -> &str {
    pipeline.config().server.public_url.trim_end_matches('/')
}
