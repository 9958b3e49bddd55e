//! The forwarder's TOML configuration: one file, secrets as `${ENV_VAR}`
//! references, validated at start with errors that name the key.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, bail};
use serde::Deserialize;
use tributary_core::{
    Secret,
    config::{
        DEFAULT_BODY_BUDGET_BODIES, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
        DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, expand_env_refs, parse_duration,
    },
};
use tributary_outbound::{
    DeliverySettings, Destination, DurableQueue, Forwarding, RedeliveryWindow, RetentionPolicy,
    TransformSettings,
};

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
    #[serde(default)]
    redeliveries: RawRedeliveries,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedeliveries {
    #[serde(default)]
    window: Option<toml::Value>,
    #[serde(default)]
    max_remembered: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    max_body_bytes: usize,
    signature_tolerance_secs: u64,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
    body_read_timeout: Option<String>,
    max_connections: Option<i64>,
    body_budget_bytes: Option<i64>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            signature_tolerance_secs: DEFAULT_SIGNATURE_TOLERANCE_SECS,
            header_read_timeout: None,
            idle_timeout: None,
            body_read_timeout: None,
            max_connections: None,
            body_budget_bytes: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    path: String,
    #[serde(default)]
    dead_letter_retention: Option<toml::Value>,
    #[serde(default)]
    max_dead_letters: Option<toml::Value>,
    #[serde(default)]
    prune_interval: Option<toml::Value>,
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
pub struct ForwarderServerSettings {
    /// Socket address to bind.
    pub listen: String,
    /// Largest accepted body in bytes (413 above).
    pub max_body_bytes: usize,
    /// How far a signature's timestamp may be from now, in seconds.
    pub signature_tolerance_secs: u64,
    /// From a request's first byte to the end of its head.
    pub header_read_timeout: Duration,
    /// How long a connection may go without a request in flight.
    pub idle_timeout: Duration,
    /// How long to wait for a whole webhook body (408 after it).
    pub body_read_timeout: Duration,
    /// Open client connections at most.
    pub max_connections: usize,
    /// Webhook-body bytes read at once across all requests (503 beyond).
    pub body_budget_bytes: usize,
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
    pub server: ForwarderServerSettings,
    /// `[queue] path`.
    pub queue_path: String,
    /// `[queue] dead_letter_retention`, `max_dead_letters`, `prune_interval`.
    pub retention: RetentionPolicy,
    /// `[segment]`.
    pub segment: DeliverySettings,
    /// `[transform]`.
    pub transform: TransformSettings,
    /// `[environments.<name>]`, by name (the `{environment}` URL segment).
    pub environments: BTreeMap<String, EnvironmentSettings>,
    /// `[redeliveries] window`, `max_remembered`: repeats of an accepted
    /// webhook dropped at enqueue.
    pub redeliveries: RedeliveryWindow,
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
        let retention = retention_policy(&raw.queue)?;
        let redeliveries = redelivery_window(&raw.redeliveries)?;
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
        let server = server_settings(raw.server)?;
        Ok(Self {
            server,
            queue_path: raw.queue.path,
            retention,
            segment: raw.segment,
            transform: raw.transform,
            environments,
            redeliveries,
        })
    }

    /// Opens the queue file with this configuration's redelivery window.
    pub fn open_queue(&self) -> anyhow::Result<DurableQueue> {
        Ok(DurableQueue::open_with(
            &self.queue_path,
            self.redeliveries,
        )?)
    }

    /// Which environments this configuration forwards (those with a write
    /// key), for moving entries queued for the others to the dead letters.
    pub fn forwarding(&self) -> Forwarding {
        Forwarding::new(
            self.environments
                .iter()
                .map(|(name, env)| (name.clone(), env.write_key.is_some())),
        )
    }

    /// One route per environment that has a write key.
    pub fn routes(&self) -> Vec<Destination> {
        self.environments
            .iter()
            .filter_map(|(name, env)| {
                env.write_key.as_ref().map(|key| Destination {
                    environment: name.clone(),
                    write_key: key.clone(),
                })
            })
            .collect()
    }
}

/// `[server]`, the connection and body limits defaulting as the ingest
/// service's do.
fn server_settings(raw: RawServer) -> anyhow::Result<ForwarderServerSettings> {
    if raw.max_body_bytes == 0 {
        bail!("server.max_body_bytes: must be positive");
    }
    let timeout = |value: &Option<String>, key: &str, default: Duration| match value {
        None => Ok(default),
        Some(text) => match parse_duration(text) {
            Ok(d) if d.is_zero() => Err(anyhow::anyhow!("server.{key}: must be longer than zero")),
            Ok(d) => Ok(d),
            Err(problem) => Err(anyhow::anyhow!("server.{key}: {problem}")),
        },
    };
    let max_connections = match raw.max_connections {
        None => DEFAULT_MAX_CONNECTIONS,
        Some(n) if (1..=1_000_000).contains(&n) => usize::try_from(n)?,
        Some(n) => bail!("server.max_connections: {n} must be from 1 to 1000000"),
    };
    let body_budget_bytes = match raw.body_budget_bytes {
        None => raw
            .max_body_bytes
            .saturating_mul(DEFAULT_BODY_BUDGET_BODIES),
        Some(n) if usize::try_from(n).is_ok_and(|n| n >= raw.max_body_bytes) => usize::try_from(n)?,
        Some(n) => bail!(
            "server.body_budget_bytes: {n} must be at least server.max_body_bytes ({}), so the largest body fits",
            raw.max_body_bytes
        ),
    };
    Ok(ForwarderServerSettings {
        header_read_timeout: timeout(
            &raw.header_read_timeout,
            "header_read_timeout",
            DEFAULT_HEADER_READ_TIMEOUT,
        )?,
        idle_timeout: timeout(&raw.idle_timeout, "idle_timeout", DEFAULT_IDLE_TIMEOUT)?,
        body_read_timeout: timeout(
            &raw.body_read_timeout,
            "body_read_timeout",
            DEFAULT_BODY_READ_TIMEOUT,
        )?,
        listen: raw.listen,
        max_body_bytes: raw.max_body_bytes,
        signature_tolerance_secs: raw.signature_tolerance_secs,
        max_connections,
        body_budget_bytes,
    })
}

/// `[queue]`'s retention keys, each defaulting to [`RetentionPolicy::default`].
fn retention_policy(raw: &RawQueue) -> anyhow::Result<RetentionPolicy> {
    let defaults = RetentionPolicy::default();
    let max_age = match &raw.dead_letter_retention {
        None => defaults.max_age,
        Some(value) => parse_retention(value)
            .map_err(|problem| anyhow::anyhow!("queue.dead_letter_retention: {problem}"))?,
    };
    let max_count = match &raw.max_dead_letters {
        None => defaults.max_count,
        Some(value) => parse_max_dead_letters(value)
            .map_err(|problem| anyhow::anyhow!("queue.max_dead_letters: {problem}"))?,
    };
    let interval = match &raw.prune_interval {
        None => defaults.interval,
        Some(value) => parse_prune_interval(value)
            .map_err(|problem| anyhow::anyhow!("queue.prune_interval: {problem}"))?,
    };
    let policy = RetentionPolicy {
        max_age,
        max_count,
        interval,
        ..defaults
    };
    policy
        .validate()
        .map_err(|e| anyhow::anyhow!("[queue] {e}"))?;
    Ok(policy)
}

/// `[redeliveries]`, each key defaulting to [`RedeliveryWindow::default`].
fn redelivery_window(raw: &RawRedeliveries) -> anyhow::Result<RedeliveryWindow> {
    let defaults = RedeliveryWindow::default();
    let max_age = match &raw.window {
        None => defaults.max_age,
        Some(value) => positive_duration(value, "24h")
            .map_err(|problem| anyhow::anyhow!("redeliveries.window: {problem}"))?,
    };
    let max_count = match &raw.max_remembered {
        None => defaults.max_count,
        Some(value) => parse_max_remembered(value)
            .map_err(|problem| anyhow::anyhow!("redeliveries.max_remembered: {problem}"))?,
    };
    Ok(RedeliveryWindow { max_age, max_count })
}

/// `max_remembered`: a positive whole number of `messageId`s.
pub fn parse_max_remembered(value: &toml::Value) -> Result<u64, String> {
    const HINT: &str = "write a whole number of messageIds to remember, like 1000000";
    match value {
        toml::Value::Integer(n) if *n > 0 => Ok(n.unsigned_abs()),
        toml::Value::Integer(n) => Err(format!("{n} would remember nothing; {HINT}")),
        other => Err(format!("{other} is not a count; {HINT}")),
    }
}

/// `dead_letter_retention`: a duration with its unit (`"30d"`, `"12h"`), or
/// `"off"` to keep dead letters until they are re-driven.
pub fn parse_retention(value: &toml::Value) -> Result<Option<Duration>, String> {
    const HINT: &str = "write a duration with its unit (s, m, h, d) such as \"30d\", or \"off\" to keep dead letters until they are re-driven";
    let Some(text) = value.as_str() else {
        return Err(format!("{value} is not a string; {HINT}"));
    };
    if text.trim() == "off" {
        return Ok(None);
    }
    let age = duration_with_unit(text).map_err(|problem| {
        format!("{problem}; or write \"off\" to keep dead letters until they are re-driven")
    })?;
    if age.is_zero() {
        return Err(format!(
            "{text:?} would remove dead letters as soon as they are written; {HINT}"
        ));
    }
    Ok(Some(age))
}

/// `max_dead_letters` (per environment): a positive whole number, or `"off"` for no cap.
pub fn parse_max_dead_letters(value: &toml::Value) -> Result<Option<u64>, String> {
    const HINT: &str =
        "write a whole number of dead letters to keep, like 100000, or \"off\" for no cap";
    match value {
        toml::Value::String(text) if text.trim() == "off" => Ok(None),
        toml::Value::Integer(n) if *n > 0 => Ok(Some(n.unsigned_abs())),
        toml::Value::Integer(n) => Err(format!(
            "{n} would remove dead letters as soon as they are written; {HINT}"
        )),
        other => Err(format!("{other} is not a count; {HINT}")),
    }
}

/// `prune_interval`: a positive duration with its unit (`"10m"`).
pub fn parse_prune_interval(value: &toml::Value) -> Result<Duration, String> {
    positive_duration(value, "10m")
}

/// A positive duration with its unit; `example` goes into the hint.
fn positive_duration(value: &toml::Value, example: &str) -> Result<Duration, String> {
    let hint = format!("write a duration with its unit (s, m, h, d) such as {example:?}");
    let Some(text) = value.as_str() else {
        return Err(format!("{value} is not a string; {hint}"));
    };
    let duration = duration_with_unit(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?} must be longer than zero; {hint}"));
    }
    Ok(duration)
}

/// The shared duration parser, except that a bare number is refused: in a
/// retention setting `"30"` more likely means days than seconds.
fn duration_with_unit(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} has no unit; write one of s, m, h, d, such as \"30d\""
        ));
    }
    parse_duration(text)
}

/// Replaces every `${NAME}` with its value, by the ingest configuration's
/// rule (`tributary_core::config::expand_env_refs`); every problem is named.
fn interpolate(value: &str, lookup: &impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    expand_env_refs(value, lookup).map_err(|problems| {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(problems.join("; "))
    })
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

    fn queue_keys(keys: &str) -> anyhow::Result<ForwarderConfig> {
        ForwarderConfig::parse(&format!("[queue]\npath = 'q'\n{keys}\n"), lookup)
    }

    #[test]
    fn retention_defaults_to_thirty_days_and_a_hundred_thousand() {
        let c = queue_keys("").unwrap();
        assert_eq!(c.retention, RetentionPolicy::default());
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(c.retention.max_count, Some(100_000));
        assert_eq!(c.retention.interval, Duration::from_secs(600));
    }

    #[test]
    fn retention_keys_are_read_and_can_be_turned_off() {
        let c = queue_keys(
            "dead_letter_retention = '7d'\nmax_dead_letters = 5000\nprune_interval = '90s'",
        )
        .unwrap();
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.retention.max_count, Some(5_000));
        assert_eq!(c.retention.interval, Duration::from_secs(90));
        let c = queue_keys("dead_letter_retention = 'off'\nmax_dead_letters = 'off'").unwrap();
        assert_eq!(c.retention.max_age, None);
        assert_eq!(c.retention.max_count, None);
        let c = queue_keys("dead_letter_retention = '12h'\nmax_dead_letters = 'off'").unwrap();
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(c.retention.max_count, None);
    }

    #[test]
    fn bad_retention_values_are_refused_naming_the_key_and_the_fix() {
        for (keys, key, says) in [
            (
                "dead_letter_retention = '30'",
                "queue.dead_letter_retention",
                "has no unit",
            ),
            (
                "dead_letter_retention = 30",
                "queue.dead_letter_retention",
                "not a string",
            ),
            (
                "dead_letter_retention = '30 days'",
                "queue.dead_letter_retention",
                "unknown duration unit",
            ),
            (
                "dead_letter_retention = '0d'",
                "queue.dead_letter_retention",
                "as soon as they are written",
            ),
            (
                "dead_letter_retention = 'never'",
                "queue.dead_letter_retention",
                "\"off\"",
            ),
            (
                "dead_letter_retention = '99999999999999999d'",
                "queue.dead_letter_retention",
                "too large",
            ),
            (
                "max_dead_letters = 0",
                "queue.max_dead_letters",
                "as soon as they are written",
            ),
            (
                "max_dead_letters = -5",
                "queue.max_dead_letters",
                "as soon as they are written",
            ),
            (
                "max_dead_letters = '100000'",
                "queue.max_dead_letters",
                "not a count",
            ),
            (
                "max_dead_letters = 1.5",
                "queue.max_dead_letters",
                "not a count",
            ),
            (
                "prune_interval = '0s'",
                "queue.prune_interval",
                "longer than zero",
            ),
            (
                "prune_interval = 'off'",
                "queue.prune_interval",
                "not a duration",
            ),
            (
                "prune_interval = 600",
                "queue.prune_interval",
                "not a string",
            ),
            (
                "dead_letter_retension = '30d'",
                "dead_letter_retension",
                "unknown field",
            ),
        ] {
            let err = format!("{:#}", queue_keys(keys).unwrap_err());
            assert!(err.contains(key), "{keys}: {err}");
            assert!(err.contains(says), "{keys}: {err}");
        }
    }

    fn server_keys(keys: &str) -> anyhow::Result<ForwarderConfig> {
        ForwarderConfig::parse(&format!("[server]\n{keys}\n[queue]\npath = 'q'\n"), lookup)
    }

    #[test]
    fn edge_limits_default_like_the_ingest_service_and_are_read() {
        let s = server_keys("").unwrap().server;
        assert_eq!(s.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.body_read_timeout, Duration::from_secs(30));
        assert_eq!(s.max_connections, 4_096);
        assert_eq!(s.body_budget_bytes, 16 * DEFAULT_MAX_BODY_BYTES);
        let s = server_keys(
            "header_read_timeout = '2s'\nidle_timeout = '1m'\nbody_read_timeout = '5s'\nmax_connections = 10\nmax_body_bytes = 100\nbody_budget_bytes = 1000",
        )
        .unwrap()
        .server;
        assert_eq!(s.header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.body_read_timeout, Duration::from_secs(5));
        assert_eq!(s.max_connections, 10);
        assert_eq!(s.body_budget_bytes, 1_000);
    }

    #[test]
    fn bad_edge_limits_are_refused_naming_the_key() {
        for (keys, key, says) in [
            (
                "header_read_timeout = '0s'",
                "server.header_read_timeout",
                "longer than zero",
            ),
            (
                "idle_timeout = 'soon'",
                "server.idle_timeout",
                "not a duration",
            ),
            (
                "body_read_timeout = '0'",
                "server.body_read_timeout",
                "longer than zero",
            ),
            (
                "max_connections = 0",
                "server.max_connections",
                "from 1 to 1000000",
            ),
            (
                "body_budget_bytes = 5",
                "server.body_budget_bytes",
                "at least server.max_body_bytes",
            ),
            ("max_body_bytes = 0", "server.max_body_bytes", "positive"),
        ] {
            let err = format!("{:#}", server_keys(keys).unwrap_err());
            assert!(err.contains(key), "{keys}: {err}");
            assert!(err.contains(says), "{keys}: {err}");
        }
    }

    #[test]
    fn redeliveries_default_to_a_day_and_a_million_and_are_read() {
        let c = queue_keys("").unwrap();
        assert_eq!(c.redeliveries, RedeliveryWindow::default());
        assert_eq!(c.redeliveries.max_age, Duration::from_secs(86_400));
        assert_eq!(c.redeliveries.max_count, 1_000_000);
        let c = queue_keys("[redeliveries]\nwindow = '6h'\nmax_remembered = 5000").unwrap();
        assert_eq!(c.redeliveries.max_age, Duration::from_secs(6 * 3_600));
        assert_eq!(c.redeliveries.max_count, 5_000);
    }

    #[test]
    fn bad_redelivery_values_are_refused_naming_the_key() {
        for (keys, key, says) in [
            ("window = '0s'", "redeliveries.window", "longer than zero"),
            ("window = '24'", "redeliveries.window", "has no unit"),
            ("window = 'off'", "redeliveries.window", "not a duration"),
            ("window = 86400", "redeliveries.window", "not a string"),
            (
                "max_remembered = 0",
                "redeliveries.max_remembered",
                "remember nothing",
            ),
            (
                "max_remembered = '1000'",
                "redeliveries.max_remembered",
                "not a count",
            ),
            ("windows = '1h'", "windows", "unknown field"),
        ] {
            let err = format!(
                "{:#}",
                queue_keys(&format!("[redeliveries]\n{keys}")).unwrap_err()
            );
            assert!(err.contains(key), "{keys}: {err}");
            assert!(err.contains(says), "{keys}: {err}");
        }
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
        // One rule with the ingest configuration: no leading digit.
        assert!(interpolate("${1SECRET}", &|_| Some("x".to_owned())).is_err());
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
        fn retention_parser_never_panics_and_never_yields_zero(text in ".{0,24}") {
            match parse_retention(&toml::Value::String(text.clone())) {
                Ok(Some(age)) => prop_assert!(!age.is_zero()),
                Ok(None) => prop_assert_eq!(text.trim(), "off"),
                Err(problem) => prop_assert!(problem.contains("\"off\""), "{}", problem),
            }
        }

        #[test]
        fn retention_reads_every_whole_duration_with_its_unit(
            n in 1u64..1_000_000,
            (unit, secs) in prop_oneof![
                Just(("s", 1u64)), Just(("m", 60)), Just(("h", 3_600)), Just(("d", 86_400))
            ],
        ) {
            let parsed = parse_retention(&toml::Value::String(format!("{n}{unit}"))).unwrap();
            prop_assert_eq!(parsed, Some(Duration::from_secs(n * secs)));
            // Without its unit the same number is refused, not read as seconds.
            prop_assert!(parse_retention(&toml::Value::String(n.to_string())).is_err());
        }

        #[test]
        fn max_dead_letters_accepts_exactly_the_positive_integers(n in any::<i64>()) {
            let parsed = parse_max_dead_letters(&toml::Value::Integer(n));
            if n > 0 {
                prop_assert_eq!(parsed, Ok(Some(n.unsigned_abs())));
            } else {
                prop_assert!(parsed.is_err());
            }
        }

        #[test]
        fn queue_section_never_panics(
            retention in "[0-9a-z' ]{0,12}",
            cap in "[0-9a-z'.-]{0,12}",
            interval in "[0-9a-z' ]{0,12}",
        ) {
            let text = format!(
                "[queue]\npath = 'q'\ndead_letter_retention = {retention}\nmax_dead_letters = {cap}\nprune_interval = {interval}\n"
            );
            if let Err(e) = ForwarderConfig::parse(&text, |_| None) {
                let message = format!("{e:#}");
                prop_assert!(!message.is_empty());
            }
        }

        #[test]
        fn redelivery_window_is_positive_or_refused(text in ".{0,16}") {
            match positive_duration(&toml::Value::String(text), "24h") {
                Ok(window) => prop_assert!(!window.is_zero()),
                Err(problem) => prop_assert!(!problem.is_empty()),
            }
        }

        #[test]
        fn max_remembered_accepts_exactly_the_positive_integers(n in any::<i64>()) {
            let parsed = parse_max_remembered(&toml::Value::Integer(n));
            if n > 0 {
                prop_assert_eq!(parsed, Ok(n.unsigned_abs()));
            } else {
                prop_assert!(parsed.is_err());
            }
        }

        #[test]
        fn config_parser_never_panics(text in "[\\[\\]a-z_=\"{}$. 0-9\n]{0,120}") {
            let _ = ForwarderConfig::parse(&text, |_| None);
        }
    }
}
