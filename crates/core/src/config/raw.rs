//! The configuration file as written: every field optional and spanned, so
//! validation can report every problem with its line instead of stopping at
//! the first missing key.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize, Default)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) admin: RawAdmin,
    #[serde(default)]
    pub(super) workers: RawWorkers,
    #[serde(default)]
    pub(super) environments: BTreeMap<String, S<RawEnvironment>>,
    #[serde(default)]
    pub(super) sources: Vec<S<RawSource>>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawServer {
    pub(super) listen: Option<S<String>>,
    pub(super) public_url: Option<S<String>>,
    pub(super) max_body_bytes: Option<S<i64>>,
    pub(super) worker_threads: Option<S<i64>>,
    pub(super) header_read_timeout: Option<S<String>>,
    pub(super) idle_timeout: Option<S<String>>,
    pub(super) max_connections: Option<S<i64>>,
    pub(super) body_read_timeout: Option<S<String>>,
    pub(super) body_budget_bytes: Option<S<i64>>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawStore {
    pub(super) backend: Option<S<String>>,
    pub(super) path: Option<S<String>>,
    pub(super) url: Option<S<String>>,
    pub(super) retention_days: Option<S<i64>>,
    pub(super) secrets_key: Option<S<String>>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawAdmin {
    pub(super) token: Option<S<String>>,
    pub(super) console: Option<S<bool>>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawWorkers {
    pub(super) enabled: Option<S<bool>>,
    pub(super) concurrency_per_sink: Option<S<i64>>,
    pub(super) max_in_flight: Option<S<i64>>,
    pub(super) max_attempts: Option<S<i64>>,
    pub(super) retry_base: Option<S<String>>,
    pub(super) retry_cap: Option<S<String>>,
}

#[derive(Deserialize)]
pub(super) struct RawEnvironment {
    pub(super) sink: Option<S<toml::Value>>,
    #[serde(default)]
    pub(super) rate_limits: BTreeMap<String, S<i64>>,
}

#[derive(Deserialize)]
pub(super) struct RawSource {
    pub(super) key: Option<S<String>>,
    pub(super) kind: Option<S<String>>,
    pub(super) name: Option<S<String>>,
    pub(super) description: Option<S<String>>,
    #[serde(default)]
    pub(super) environments: BTreeMap<String, S<RawSourceEnvironment>>,
}

#[derive(Deserialize)]
pub(super) struct RawSourceEnvironment {
    pub(super) token: Option<S<String>>,
    #[serde(default)]
    pub(super) retired_tokens: Vec<S<RawRetiredToken>>,
    pub(super) write_key: Option<S<String>>,
    pub(super) api_key: Option<S<String>>,
    pub(super) identify: Option<S<bool>>,
    pub(super) event_type: Option<S<String>>,
    pub(super) event_type_path: Option<S<String>>,
    pub(super) timestamp_path: Option<S<String>>,
    pub(super) verification: Option<S<RawVerification>>,
    pub(super) preprocess: Option<S<super::preprocess::RawPreprocess>>,
    pub(super) dedup: Option<S<RawDedup>>,
    #[serde(default)]
    pub(super) mappings: Vec<S<RawMapping>>,
}

#[derive(Deserialize)]
pub(super) struct RawRetiredToken {
    pub(super) token: Option<S<String>>,
    /// RFC 3339; a TOML datetime is accepted too.
    pub(super) until: Option<S<toml::Value>>,
}

#[derive(Deserialize)]
pub(super) struct RawVerification {
    pub(super) scheme: Option<S<String>>,
    pub(super) secret: Option<S<String>>,
    pub(super) header: Option<S<String>>,
    pub(super) encoding: Option<S<String>>,
    pub(super) prefix: Option<S<String>>,
    pub(super) tolerance: Option<S<String>>,
    pub(super) signed_part: Option<S<String>>,
    pub(super) enforce: Option<S<bool>>,
}

#[derive(Deserialize)]
pub(super) struct RawDedup {
    pub(super) enabled: Option<S<bool>>,
    pub(super) key_path: Option<S<String>>,
    pub(super) window: Option<S<String>>,
}

/// Mapping parameters stay as TOML values: whether a string is a path or a
/// literal depends on the parameter, decided in `load`.
#[derive(Deserialize)]
pub(super) struct RawMapping {
    pub(super) id: Option<S<String>>,
    pub(super) event: Option<S<String>>,
    pub(super) action: Option<S<String>>,
    pub(super) active: Option<S<bool>>,
    pub(super) workflow: Option<S<toml::Value>>,
    pub(super) recipients: Option<S<toml::Value>>,
    pub(super) actor: Option<S<toml::Value>>,
    pub(super) tenant: Option<S<toml::Value>>,
    pub(super) data: Option<S<toml::Value>>,
    pub(super) data_fields: Option<S<toml::Value>>,
    pub(super) cancellation_key: Option<S<toml::Value>>,
    pub(super) user_id: Option<S<toml::Value>>,
    pub(super) name: Option<S<toml::Value>>,
    pub(super) email: Option<S<toml::Value>>,
    pub(super) phone_number: Option<S<toml::Value>>,
    pub(super) avatar: Option<S<toml::Value>>,
    pub(super) locale: Option<S<toml::Value>>,
    pub(super) timezone: Option<S<toml::Value>>,
    pub(super) properties: Option<S<toml::Value>>,
    pub(super) collection: Option<S<toml::Value>>,
    pub(super) object_id: Option<S<toml::Value>>,
    pub(super) tenant_id: Option<S<toml::Value>>,
    pub(super) settings: Option<S<toml::Value>>,
    pub(super) audience: Option<S<toml::Value>>,
    pub(super) members: Option<S<toml::Value>>,
    pub(super) create_audience: Option<S<toml::Value>>,
}

impl RawMapping {
    /// Every parameter that was written, by name.
    pub(super) fn params(&self) -> [(&'static str, Option<&S<toml::Value>>); 22] {
        [
            ("workflow", self.workflow.as_ref()),
            ("recipients", self.recipients.as_ref()),
            ("actor", self.actor.as_ref()),
            ("tenant", self.tenant.as_ref()),
            ("data", self.data.as_ref()),
            ("data_fields", self.data_fields.as_ref()),
            ("cancellation_key", self.cancellation_key.as_ref()),
            ("user_id", self.user_id.as_ref()),
            ("name", self.name.as_ref()),
            ("email", self.email.as_ref()),
            ("phone_number", self.phone_number.as_ref()),
            ("avatar", self.avatar.as_ref()),
            ("locale", self.locale.as_ref()),
            ("timezone", self.timezone.as_ref()),
            ("properties", self.properties.as_ref()),
            ("collection", self.collection.as_ref()),
            ("object_id", self.object_id.as_ref()),
            ("tenant_id", self.tenant_id.as_ref()),
            ("settings", self.settings.as_ref()),
            ("audience", self.audience.as_ref()),
            ("members", self.members.as_ref()),
            ("create_audience", self.create_audience.as_ref()),
        ]
    }
}
