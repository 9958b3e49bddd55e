//! The configuration model (docs/product-decisions.md, "Words" and "Mappings"),
//! loaded from one TOML file.
//!
//! [`load`] parses, interpolates `${ENV_VAR}` secrets, compiles every path
//! and validates the whole file, collecting every problem with its line.

mod document;
mod env_ref;
mod load;
mod model;
pub(crate) mod params;
mod preprocess;
mod raw;
mod sealed;
mod template;
mod verification;

pub use document::{
    DocumentError, SourceDocument, source_documents, source_from_document, sources_toml,
};
pub use env_ref::{EnvReferenceError, expand_env_refs, is_env_name};
pub use load::{
    ConfigError, ConfigErrors, MIN_TOKEN_CHARS, load, load_with_templates, to_json as toml_to_json,
};
pub use model::*;
pub use params::{ActionParameter, action_parameters};
pub use preprocess::{MAX_SCRIPT_BYTES, Preprocess};
pub use sealed::{SECRET_KEYS, SECRET_TABLES, SealingKey, is_sealed};
pub use template::{
    ENVIRONMENT_DEFAULTS_KEY, TEMPLATE_KEY, TemplateLookup, fill_document, no_templates,
};
pub use verification::*;

/// Serde helper: a `Duration` as whole seconds.
pub(crate) mod duration_secs {
    use std::time::Duration;

    use serde::Serializer;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// Parses `90s`, `30m`, `24h`, `7d` (or a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `90s`, `30m`, `24h` or `7d`"))?;
    let secs = match unit.trim() {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`; use s, m, h or d"
            ));
        }
    };
    secs.map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}
