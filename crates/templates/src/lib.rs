//! Tributary's source templates: for each platform an operator connects
//! (Stripe, Clerk, WorkOS, Supabase, PostHog, Shopify, Amplitude, Clay, the
//! CDPs, legacy and custom HTTP), the settings and mappings a new source
//! starts from, and example payloads per event type (docs/templates.md).
//!
//! Templates are data: `fixtures/templates/<key>/` holds each one's
//! `template.toml`, `defaults.toml` and example payloads, embedded at build
//! time. Nothing here does I/O or keeps state.
//!
//! A source is made from a template by copying its defaults, so a later
//! change to a template never changes a source that already exists:
//! [`source_document`] (a new source's document), [`fill_from_template`]
//! (a management API request that names a `template`), and [`lookup`], which
//! `tributary_core::config::load_with_templates` takes for
//! `template = "<key>"` in the configuration file.
//!
//! ```
//! use tributary_core::config;
//!
//! let stripe = tributary_templates::get("stripe").unwrap();
//! assert_eq!(stripe.kind, "http");
//! let document = tributary_templates::source_document(stripe, "billing", "Billing", &["production"]);
//! assert_eq!(document["environments"]["production"]["dedup"]["key_path"], "body.id");
//!
//! let text = r#"
//! [environments.production]
//!
//! [[sources]]
//! key = "billing"
//! template = "stripe"
//!
//! [sources.environments.production]
//! token = "tok_billing_0123456789abcdef"
//! verification = { secret = "whsec_example" }
//! "#;
//! let loaded = config::load_with_templates("t.toml", text, &|_| None, &tributary_templates::lookup)
//!     .unwrap();
//! assert_eq!(loaded.sources[0].kind, config::SourceKind::Http);
//! ```

mod manifest;
mod provider;

use std::{collections::BTreeMap, sync::LazyLock};

use serde_json::{Map, Value};
use tributary_core::config::{SourceDocument, TEMPLATE_KEY, fill_document};

pub use manifest::{CATEGORIES, parse};
pub use provider::{Include, provider, providers};

/// Every problem this crate reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A template's files do not make a template (a build-time data error;
    /// the crate's tests load every template).
    #[error("template `{template}`: {file}: {message}")]
    Invalid {
        /// The template's key.
        template: String,
        /// The file the problem is in.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A request named a template that does not exist.
    #[error("unknown template `{0}`")]
    Unknown(String),
    /// A request's `template` is not a string.
    #[error("`template` must be a template key, like \"stripe\"")]
    NotAKey,
    /// An `include` value the providers API does not know.
    #[error("unknown include `{0}`; expected any of {1}")]
    UnknownInclude(String, &'static str),
}

/// One template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Unique key, e.g. `stripe`.
    pub key: String,
    /// Display name, e.g. `Stripe`.
    pub name: String,
    /// One sentence for people.
    pub description: String,
    /// The product's categories (`Billing`, `Identity`, ...).
    pub categories: Vec<String>,
    /// The platform's site.
    pub website_url: Option<String>,
    /// The platform's documentation of the webhooks it sends.
    pub webhooks_docs_url: Option<String>,
    /// How the platform signs or authenticates a request, in words.
    pub signing: String,
    /// Which secret the verification needs and where the operator finds it;
    /// `None` when the template verifies nothing by default.
    pub secret: Option<String>,
    /// The source kind a new source gets (`http`, `segment`, ...).
    pub kind: String,
    /// The defaults as TOML text (what [`lookup`] answers).
    pub defaults_toml: &'static str,
    /// The defaults as JSON: `[[sources]]` keys, and `environment`, what
    /// every source environment starts from.
    pub defaults: Map<String, Value>,
    /// Example payloads, one per event type.
    pub examples: Vec<Example>,
}

/// An example request body of one event type, as the platform sends it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The event type the template's path reads from it.
    pub event_type: String,
    /// The file under `fixtures/templates/<key>/`.
    pub file: String,
    /// The body.
    pub body: Value,
    /// Headers the platform sends besides its signature (lowercase names).
    pub headers: BTreeMap<String, String>,
}

impl Template {
    /// What every source environment starts from (settings and mappings).
    pub fn environment_defaults(&self) -> Map<String, Value> {
        match self
            .defaults
            .get(tributary_core::config::ENVIRONMENT_DEFAULTS_KEY)
        {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }

    /// The verification scheme a new source environment gets, if any.
    pub fn verification_scheme(&self) -> Option<&str> {
        self.defaults
            .get(tributary_core::config::ENVIRONMENT_DEFAULTS_KEY)?
            .get("verification")?
            .get("scheme")?
            .as_str()
    }
}

macro_rules! embedded {
    ($($key:literal => [$($file:literal),* $(,)?]),* $(,)?) => {
        [$(
            (
                $key,
                include_str!(concat!("../../../fixtures/templates/", $key, "/template.toml")),
                include_str!(concat!("../../../fixtures/templates/", $key, "/defaults.toml")),
                &[$(($file, include_str!(concat!("../../../fixtures/templates/", $key, "/", $file)))),*]
                    as &[(&str, &str)],
            )
        ),*]
    };
}

/// One template's files: key, `template.toml`, `defaults.toml`, and the
/// example payloads by file name.
type Embedded = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Every template's files, in the order templates are listed.
const EMBEDDED: [Embedded; 14] = embedded! {
    "stripe" => ["customer.created.json", "invoice.created.json", "invoice.paid.json"],
    "clerk" => [
        "user.created.json", "user.updated.json", "user.deleted.json",
        "organization.created.json", "organization.updated.json",
    ],
    "workos" => [
        "dsync.user.created.json", "dsync.user.deleted.json", "dsync.group.created.json",
        "connection.activated.json",
    ],
    "supabase" => ["insert.json", "update.json", "delete.json"],
    "posthog" => ["identify.json", "custom_event.json", "feature_flag_called.json"],
    "shopify" => ["customers-create.json", "customers-update.json", "orders-create.json"],
    "amplitude" => ["identify.json", "event.json", "cohort.json"],
    "clay" => ["lead.enriched.json", "lead.qualified.json"],
    "segment" => ["track.json", "identify.json"],
    "rudderstack" => ["track.json", "identify.json"],
    "jitsu" => ["track.json", "identify.json"],
    "freshpaint" => ["track.json", "identify.json"],
    "http-legacy" => ["track.json"],
    "http" => ["task.assigned.json"],
};

static TEMPLATES: LazyLock<Vec<Template>> = LazyLock::new(|| {
    EMBEDDED
        .iter()
        .filter_map(|(key, manifest, defaults, files)| {
            // The crate's tests load every template, so a broken one fails
            // the build's tests rather than hiding here.
            parse(key, manifest, defaults, files).ok()
        })
        .collect()
});

/// Every template, in a fixed order (webhook platforms, then CDPs, then
/// the generic HTTP ones).
pub fn all() -> &'static [Template] {
    &TEMPLATES
}

/// The template with this key.
pub fn get(key: &str) -> Option<&'static Template> {
    all().iter().find(|t| t.key == key)
}

/// The lookup `tributary_core::config::load_with_templates` takes: a
/// template's defaults as TOML text.
pub fn lookup(key: &str) -> Option<&'static str> {
    get(key).map(|t| t.defaults_toml)
}

/// A new source's document (the keys of a `[[sources]]` table) made from
/// `template`: its kind, description and, under each of `environments`,
/// its settings and mappings. Values are copied: the document does not
/// refer to the template, so a later template change never reaches it. A
/// verification the template sets still needs its `secret`.
pub fn source_document(
    template: &Template,
    key: &str,
    name: &str,
    environments: &[&str],
) -> SourceDocument {
    let mut table = Map::new();
    table.insert("key".into(), Value::String(key.to_owned()));
    table.insert("name".into(), Value::String(name.to_owned()));
    fill_document(&table, &template.defaults, environments)
}

/// A management API request that names a template (`"template": "stripe"`)
/// with the template's defaults filled in under what it sets, for each of
/// `environments`; a request without `template` is answered as it is.
pub fn fill_from_template(
    request: &SourceDocument,
    environments: &[&str],
) -> Result<SourceDocument, TemplateError> {
    let Some(named) = request.get(TEMPLATE_KEY) else {
        return Ok(request.clone());
    };
    let key = named.as_str().ok_or(TemplateError::NotAKey)?;
    let template = get(key).ok_or_else(|| TemplateError::Unknown(key.to_owned()))?;
    Ok(fill_document(request, &template.defaults, environments))
}
