//! The forwarder's TOML configuration: one file, secrets as `${ENV_VAR}`
//! references, validated at start with errors that name the key.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, bail};
use serde::Deserialize;
use tributary_core::Secret;
use tributary_outbound::{DeliverySettings, Route, TransformSettings};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default largest webhook body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The product's recommended signature tolerance.
pub const DEFAULT_SIGNATURE_TOLERANCE_SECS: u64 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    queue: RawQueue,
    #[serde(default)]
    segment: DeliverySettings,
    #[serde(default)]
    transform: TransformSettings,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    max_body_bytes: usize,
    signature_tolerance_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            signature_tolerance_secs: DEFAULT_SIGNATURE_TOLERANCE_SECS,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    signing_secret: String,
    #[serde(default)]
    write_key: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// `[server]`.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Socket address to bind.
    pub listen: String,
    /// Largest accepted body in bytes (413 above).
    pub max_body_bytes: usize,
    /// How far a signature's timestamp may be from now, in seconds.
    pub signature_tolerance_secs: u64,
}

/// One `[environments.<name>]`.
#[derive(Clone, Debug)]
pub struct EnvironmentSettings {
    /// The product's webhook signing secret.
    pub signing_secret: Secret,
    /// The Segment write key; `None` means "not forwarded".
    pub write_key: Option<Secret>,
    /// The value of the `environment` property (defaults to the name).
    pub display_name: String,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct ForwarderConfig {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[queue] path`.
    pub queue_path: String,
    /// `[segment]`.
    pub segment: DeliverySettings,
    /// `[transform]`.
    pub transform: TransformSettings,
    /// `[environments.<name>]`, by name (the `{environment}` URL segment).
    pub environments: BTreeMap<String, EnvironmentSettings>,
}

impl ForwarderConfig {
    /// Reads and validates a file, resolving `${NAME}` from the process
    /// environment.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text, |name| std::env::var(name).ok())
            .with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses and validates TOML text; `lookup` resolves `${NAME}`.
    pub fn parse(text: &str, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        raw.segment
            .validate()
            .map_err(|e| anyhow::anyhow!("[segment] {e}"))?;
        raw.transform
            .validate()
            .map_err(|e| anyhow::anyhow!("[transform] {e}"))?;
        if raw.server.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "server.listen: {:?} is not a socket address like 127.0.0.1:8090",
                raw.server.listen
            );
        }
        if raw.queue.path.trim().is_empty() {
            bail!("queue.path: must not be empty");
        }
        let mut environments = BTreeMap::new();
        for (name, env) in raw.environments {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("environments.{name:?}: names may use only letters, digits, '-' and '_'");
            }
            let key = |field: &str| format!("environments.{name}.{field}");
            let signing_secret =
                interpolate(&env.signing_secret, &lookup).with_context(|| key("signing_secret"))?;
            if signing_secret.is_empty() {
                bail!("{}: must not be empty", key("signing_secret"));
            }
            let write_key = match env.write_key {
                Some(w) => {
                    let w = interpolate(&w, &lookup).with_context(|| key("write_key"))?;
                    (!w.is_empty()).then(|| Secret::new(w))
                }
                None => None,
            };
            environments.insert(
                name.clone(),
                EnvironmentSettings {
                    signing_secret: Secret::new(signing_secret),
                    write_key,
                    display_name: env.display_name.unwrap_or_else(|| name.clone()),
                },
            );
        }
        Ok(Self {
            server: ServerSettings {
                listen: raw.server.listen,
                max_body_bytes: raw.server.max_body_bytes,
                signature_tolerance_secs: raw.server.signature_tolerance_secs,
            },
            queue_path: raw.queue.path,
            segment: raw.segment,
            transform: raw.transform,
            environments,
        })
    }

    /// One route per environment that has a write key.
    pub fn routes(&self) -> Vec<Route> {
        self.environments
            .iter()
            .filter_map(|(name, env)| {
                env.write_key.as_ref().map(|key| Route {
                    environment: name.clone(),
                    write_key: key.clone(),
                })
            })
            .collect()
    }
}

/// Replaces every `${NAME}` with its value; an unset variable is an error.
fn interpolate(value: &str, lookup: &impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            bail!("unterminated `${{` reference; write `${{NAME}}`");
        };
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bail!("`${{{name}}}` is not a valid environment variable reference");
        }
        let Some(resolved) = lookup(name) else {
            bail!("environment variable {name} is not set");
        };
        out.push_str(&resolved);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[queue]
path = "/tmp/q.db"

[segment]
host = "https://events.eu1.segmentapis.com"
gzip = true

[transform]
name_style = "sentence"
object_recipients = "prefixed_user_id"

[environments.production]
signing_secret = "${KNOCK_SECRET}"
write_key = "${SEGMENT_KEY}"
display_name = "Production"

[environments.development]
signing_secret = "whsec_dev"
"#;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "KNOCK_SECRET" => Some("s3cret".into()),
            "SEGMENT_KEY" => Some("wk_1".into()),
            _ => None,
        }
    }

    #[test]
    fn parses_and_resolves_secrets() {
        let c = ForwarderConfig::parse(EXAMPLE, lookup).unwrap();
        let prod = &c.environments["production"];
        assert!(prod.signing_secret.matches(b"s3cret"));
        assert!(prod.write_key.as_ref().unwrap().matches(b"wk_1"));
        assert_eq!(prod.display_name, "Production");
        assert!(c.environments["development"].write_key.is_none());
        assert_eq!(c.routes().len(), 1);
        assert!(c.segment.gzip);
        assert_eq!(c.server.listen, DEFAULT_LISTEN);
        // Secrets never show in debug output.
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn unset_variables_and_unknown_keys_are_named() {
        let err = ForwarderConfig::parse(EXAMPLE, |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("environments.production.signing_secret"));
        assert!(format!("{err:#}").contains("KNOCK_SECRET"));
        let err =
            ForwarderConfig::parse("[queue]\npath='q'\n[segment]\nhots='x'\n", lookup).unwrap_err();
        assert!(format!("{err:#}").contains("hots"), "{err:#}");
        let err = ForwarderConfig::parse(
            "[queue]\npath='q'\n[segment]\nmax_batch_events=5000\n",
            lookup,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("max_batch_events"), "{err:#}");
    }

    #[test]
    fn interpolation_edge_cases() {
        assert_eq!(
            interpolate("a${KNOCK_SECRET}b", &lookup).unwrap(),
            "as3cretb"
        );
        assert_eq!(interpolate("plain", &lookup).unwrap(), "plain");
        assert!(interpolate("${", &lookup).is_err());
        assert!(interpolate("${bad-name}", &lookup).is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn interpolation_never_panics_and_resolves_or_names_the_problem(text in ".{0,60}") {
            let lookup = |name: &str| (name == "SET").then(|| "value".to_owned());
            match interpolate(&text, &lookup) {
                Ok(out) => {
                    let reference = "${SET}";
                    prop_assert!(!out.contains(reference));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn config_parser_never_panics(text in "[\\[\\]a-z_=\"{}$. 0-9\n]{0,120}") {
            let _ = ForwarderConfig::parse(&text, |_| None);
        }
    }
}
