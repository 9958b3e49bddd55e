//! The validated configuration (docs/product-decisions.md, "Words" and "Mappings"):
//! plain data, every path compiled, every secret resolved. Built only by
//! [`crate::config::load`].

use std::{collections::BTreeMap, fmt, num::NonZeroU32, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    params::{Param, with_mapping_parameters},
    preprocess::Preprocess,
    verification::Verification,
};
use crate::{ActionType, FieldPath, Secret, path::DataAlias};

/// The whole configuration file.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[store]`.
    pub store: StoreSettings,
    /// `[admin]`.
    pub admin: AdminSettings,
    /// `[workers]`.
    pub workers: WorkerSettings,
    /// `[environments.<slug>]`, by slug.
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// `[[sources]]`, in file order.
    pub sources: Vec<SourceConfig>,
}

impl Config {
    /// The source with this key.
    pub fn source(&self, key: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.key == key)
    }

    /// Every (source, environment slug, settings) triple, in file order.
    pub fn source_environments(
        &self,
    ) -> impl Iterator<Item = (&SourceConfig, &str, &SourceEnvironment)> {
        self.sources.iter().flat_map(|s| {
            s.environments
                .iter()
                .map(move |(env, se)| (s, env.as_str(), se))
        })
    }
}

/// `[server]`: where the ingest service listens.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSettings {
    /// Socket address to bind, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Base URL printed in receive URLs; defaults to `http://<listen>`.
    pub public_url: String,
    /// Largest accepted body after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Threads of the async runtime that serves HTTP and runs the workers;
    /// `None` leaves the choice to [`ServerSettings::runtime_threads`].
    pub worker_threads: Option<usize>,
    /// From a request's first byte to the end of its head; slower clients
    /// are disconnected.
    pub header_read_timeout: Duration,
    /// How long a connection may go without a request in flight.
    pub idle_timeout: Duration,
    /// Open client connections at most (lowered at start to fit the
    /// file-descriptor limit).
    pub max_connections: usize,
    /// How long a handler waits for a whole request body (408 after it,
    /// nothing accepted).
    pub body_read_timeout: Duration,
    /// Request-body bytes read or held at once across all requests; beyond
    /// it a request is answered 503 with `Retry-After` without being read.
    pub body_budget_bytes: usize,
}

impl ServerSettings {
    /// How many runtime threads to start on a machine with `cores` cores.
    ///
    /// With the SQLite store, one core is left to the store's writer thread:
    /// it is a dedicated OS thread outside the runtime, and every answer waits
    /// for its group commit, so a runtime thread per core makes the one serial
    /// stage queue for a core behind request handling (docs/PERFORMANCE.md,
    /// "Runtime threads"). PostgreSQL's writes run on the runtime itself.
    pub fn runtime_threads(&self, store: &StoreBackend, cores: usize) -> usize {
        match (self.worker_threads, store) {
            (Some(n), _) => n,
            (None, StoreBackend::Sqlite { .. }) => cores.saturating_sub(1).max(1),
            (None, StoreBackend::Postgres { .. }) => cores.max(1),
        }
    }
}

/// Default for [`ServerSettings::max_body_bytes`]: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default for [`ServerSettings::header_read_timeout`] (both binaries).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`ServerSettings::idle_timeout`] (both binaries).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`ServerSettings::max_connections`] (both binaries).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;
/// Default for [`ServerSettings::body_read_timeout`] (both binaries).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerSettings::body_budget_bytes`], in largest bodies: the
/// budget is this many times `max_body_bytes` (both binaries).
pub const DEFAULT_BODY_BUDGET_BODIES: usize = 16;

/// `[store]`: where every byte is kept.
#[derive(Clone, Debug, Serialize)]
pub struct StoreSettings {
    /// Which backend.
    pub backend: StoreBackend,
    /// Event and action logs older than this are pruned.
    pub retention_days: u32,
    /// Seals the secrets of sources made through the management API before
    /// they are stored; `None` stores them as they are.
    #[serde(skip)]
    pub secrets_key: Option<super::sealed::SealingKey>,
}

/// Default for [`StoreSettings::retention_days`].
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// The two store backends.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded SQLite in a directory (the default: zero setup).
    Sqlite {
        /// Data directory.
        path: String,
    },
    /// PostgreSQL, shared by any number of replicas.
    Postgres {
        /// Connection URL (holds a password, so it is a secret).
        url: Secret,
        /// Pooled connections per process; `None` takes the store's
        /// default. Replicas times this must fit the server's
        /// `max_connections`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pool_size: Option<usize>,
        /// Group commits in flight at once per process, each holding one
        /// pooled connection; `None` takes the store's default (one, which
        /// keeps up on the machines measured: docs/PERFORMANCE.md).
        #[serde(skip_serializing_if = "Option::is_none")]
        committers: Option<usize>,
    },
}

/// `[admin]`.
#[derive(Clone, Debug, Serialize)]
pub struct AdminSettings {
    /// Bearer token for `/api/v1`; the admin API is off without one.
    pub token: Option<Secret>,
    /// Serve the operator console at `/console` (with a token).
    pub console: bool,
}

/// `[workers]`: how actions are executed.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerSettings {
    /// Run action workers in this process. Off makes an ingest-only replica
    /// (other replicas sharing the PostgreSQL store execute the actions).
    pub enabled: bool,
    /// Actions executing at once per sink (each environment has its own).
    pub concurrency_per_sink: usize,
    /// Claimed and unfinished actions, all sinks together.
    pub max_in_flight: usize,
    /// Attempts in all before an action fails for good.
    pub max_attempts: u32,
    /// The first retry waits up to this long (doubling, with full jitter).
    #[serde(with = "super::duration_secs")]
    pub retry_base: Duration,
    /// No retry waits longer than this (a longer `Retry-After` is honoured).
    #[serde(with = "super::duration_secs")]
    pub retry_cap: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrency_per_sink: 16,
            max_in_flight: 256,
            max_attempts: 15,
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(30 * 60),
        }
    }
}

/// `[environments.<slug>]`.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentConfig {
    /// Where this environment's actions go.
    pub sink: SinkConfig,
    /// Attempts per second per action type, over the sink's defaults (the
    /// `knock` sink defaults to Knock's rate tiers; the others are unlimited).
    pub rate_limits: BTreeMap<ActionType, NonZeroU32>,
}

/// Where actions are executed (docs/product-decisions.md, "Guarantees").
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkConfig {
    /// Kept in the store, queryable through the admin API.
    Local,
    /// Knock's public API.
    Knock {
        /// Secret API key for this environment.
        secret_key: Secret,
        /// API base, `https://api.knock.app` by default.
        base_url: String,
    },
    /// A signed JSON POST per action to the operator's URL.
    Webhook {
        /// Target URL.
        url: String,
        /// Standard Webhooks signing secret.
        secret: Secret,
    },
}

/// Default Knock API base for the knock sink.
pub const DEFAULT_KNOCK_BASE_URL: &str = "https://api.knock.app";

/// A source's kind: picks the adapter and the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Segment (Webhooks (Actions) destination or SDKs).
    Segment,
    /// RudderStack (Webhook destination or SDKs).
    Rudderstack,
    /// Jitsu (Segment-shaped).
    Jitsu,
    /// Freshpaint (Segment-shaped; may omit Content-Type).
    Freshpaint,
    /// The legacy HTTP source: one track event per request, 204.
    HttpLegacy,
    /// The custom HTTP source: any JSON object.
    Http,
    /// Hightouch (reverse ETL).
    Hightouch,
    /// Census (reverse ETL).
    Census,
    /// Polytomic (reverse ETL).
    Polytomic,
}

impl SourceKind {
    /// Every kind.
    pub const ALL: [SourceKind; 9] = [
        Self::Segment,
        Self::Rudderstack,
        Self::Jitsu,
        Self::Freshpaint,
        Self::HttpLegacy,
        Self::Http,
        Self::Hightouch,
        Self::Census,
        Self::Polytomic,
    ];

    /// The name in the config (`http-legacy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Segment => "segment",
            Self::Rudderstack => "rudderstack",
            Self::Jitsu => "jitsu",
            Self::Freshpaint => "freshpaint",
            Self::HttpLegacy => "http-legacy",
            Self::Http => "http",
            Self::Hightouch => "hightouch",
            Self::Census => "census",
            Self::Polytomic => "polytomic",
        }
    }

    /// Segment-spec CDPs: identify handling is on by default.
    pub fn is_cdp(self) -> bool {
        matches!(
            self,
            Self::Segment | Self::Rudderstack | Self::Jitsu | Self::Freshpaint
        )
    }

    /// How `data.` paths read for this kind: the legacy alias of `properties`
    /// for Segment-shaped events, a plain body path otherwise.
    pub fn data_alias(self) -> DataAlias {
        if self.is_cdp() || self == Self::HttpLegacy {
            DataAlias::EventData
        } else {
            DataAlias::Literal
        }
    }

    /// Whether the kind takes `event_type`, `event_type_path` and
    /// `timestamp_path` settings (its payloads are not Segment-shaped).
    pub fn has_configurable_paths(self) -> bool {
        matches!(
            self,
            Self::Http | Self::Polytomic | Self::Hightouch | Self::Census
        )
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown source kind `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// `[[sources]]`: an account-level integration.
#[derive(Clone, Debug, Serialize)]
pub struct SourceConfig {
    /// Unique key.
    pub key: String,
    /// Kind.
    pub kind: SourceKind,
    /// Display name.
    pub name: String,
    /// What the source is for, shown to operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Settings per environment slug.
    pub environments: BTreeMap<String, SourceEnvironment>,
}

/// A source's settings in one environment (docs/product-decisions.md, "Words").
#[derive(Clone, Debug, Serialize)]
pub struct SourceEnvironment {
    /// The secret part of the receive URL.
    pub token: Secret,
    /// Tokens replaced by a rotation, still accepted until their time is up,
    /// so senders can move to the new URL without losing events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retired_tokens: Vec<RetiredToken>,
    /// Write key for the Segment-compatible API.
    pub write_key: Option<Secret>,
    /// Environment API key for the product's resource API (reverse ETL).
    pub api_key: Option<Secret>,
    /// Request verification.
    pub verification: Option<Verification>,
    /// The preprocess script, run before the adapter parses a delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Preprocess>,
    /// Handle `identify` calls with the built-in trait mapping.
    pub identify: bool,
    /// Dedup settings.
    pub dedup: DedupSettings,
    /// The event type when `event_type_path` is not set or finds nothing
    /// (Hightouch and Census rows: default `row.added`).
    pub event_type: Option<String>,
    /// Where the event type is read (custom HTTP; default `body.type`).
    pub event_type_path: Option<FieldPath>,
    /// Where the event time is read (custom HTTP).
    pub timestamp_path: Option<FieldPath>,
    /// Mappings, in file order.
    pub mappings: Vec<Mapping>,
}

/// A receive token replaced by a rotation and accepted until `until`.
#[derive(Clone, Debug, Serialize)]
pub struct RetiredToken {
    /// The old token.
    pub token: Secret,
    /// When it stops working.
    pub until: chrono::DateTime<chrono::Utc>,
}

/// Dedup (docs/product-decisions.md, "Dedup").
#[derive(Clone, Debug, Serialize)]
pub struct DedupSettings {
    /// On or off.
    pub enabled: bool,
    /// Where the key is read (`messageId` by default).
    pub key_path: FieldPath,
    /// How long a key blocks repeats.
    #[serde(with = "super::duration_secs")]
    pub window: Duration,
}

/// Default dedup window: 24 hours.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Where a parameter's value comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    /// Read from the event.
    Path(FieldPath),
    /// A constant from the config.
    Literal(Value),
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One event-type -> action mapping.
#[derive(Clone, Debug, Serialize)]
pub struct Mapping {
    /// Unique within its source environment; what the admin API toggles.
    pub id: String,
    /// The event type it matches (exact, case-sensitive).
    pub event: String,
    /// The action.
    pub action: ActionType,
    /// Inactive mappings produce a skipped plan.
    pub active: bool,
    /// The action's parameters.
    pub params: MappingParams,
}

/// The Rust type a parameter of each form loads into.
macro_rules! param_type {
    (Path) => { Option<ValueSource> };
    (Key) => { Option<ValueSource> };
    (Bool) => { bool };
    (Fields) => { Vec<(String, ValueSource)> };
}

macro_rules! mapping_params {
    ($( $(#[$doc:meta])* $field:ident $variant:ident $form:ident, )*) => {
        /// Every parameter any action takes; which ones apply is checked at load.
        #[derive(Clone, Debug, Default, Serialize)]
        pub struct MappingParams {
            $( $(#[$doc])* pub $field: param_type!($form), )*
        }

        impl MappingParams {
            /// Where a path or key parameter's value goes; `None` for a flag
            /// or a field table, which the loader reads on their own.
            pub(crate) fn slot(&mut self, param: Param) -> Option<&mut Option<ValueSource>> {
                match param {
                    $(Param::$variant => self.$field.as_slot(),)*
                }
            }
        }
    };
}
with_mapping_parameters!(mapping_params);

/// A [`MappingParams`] field as a path or key parameter's slot.
trait AsSlot {
    fn as_slot(&mut self) -> Option<&mut Option<ValueSource>>;
}

impl AsSlot for Option<ValueSource> {
    fn as_slot(&mut self) -> Option<&mut Option<ValueSource>> {
        Some(self)
    }
}

impl AsSlot for bool {
    fn as_slot(&mut self) -> Option<&mut Option<ValueSource>> {
        None
    }
}

impl AsSlot for Vec<(String, ValueSource)> {
    fn as_slot(&mut self) -> Option<&mut Option<ValueSource>> {
        None
    }
}
