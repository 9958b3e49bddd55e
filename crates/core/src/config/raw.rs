//! The configuration file as written: every field optional and spanned, so
//! validation can report every problem with its line instead of stopping at
//! the first missing key.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::params::{Param, with_mapping_parameters};

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
    pub(super) pool_size: Option<S<i64>>,
    pub(super) committers: Option<S<i64>>,
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

macro_rules! raw_mapping {
    ($( $(#[$doc:meta])* $field:ident $variant:ident $form:ident, )*) => {
        /// Mapping parameters stay as TOML values: whether a string is a path
        /// or a literal depends on the parameter, decided in `load`.
        #[derive(Deserialize)]
        pub(super) struct RawMapping {
            pub(super) id: Option<S<String>>,
            pub(super) event: Option<S<String>>,
            pub(super) action: Option<S<String>>,
            pub(super) active: Option<S<bool>>,
            $( pub(super) $field: Option<S<toml::Value>>, )*
        }

        impl RawMapping {
            /// A parameter as written, if it was.
            pub(super) fn param(&self, param: Param) -> Option<&S<toml::Value>> {
                match param {
                    $(Param::$variant => self.$field.as_ref(),)*
                }
            }
        }
    };
}
with_mapping_parameters!(raw_mapping);
