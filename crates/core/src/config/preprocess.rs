//! `[sources.environments.<slug>.preprocess]`: a source environment's
//! preprocess script (docs/preprocess-scripts.md). Core only holds and
//! checks the settings; `tributary-script` compiles and runs the script.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{env_ref::is_env_name, load::Cx, raw::S};
use crate::Secret;

/// A source environment's preprocess script and what it is given.
#[derive(Clone, Debug, Serialize)]
pub struct Preprocess {
    /// The module text; it exports `main(ctx)`.
    pub script: String,
    /// `ctx.vars`: named values, each a secret (masked, sealed, never logged).
    pub vars: BTreeMap<String, Secret>,
    /// Answer 401 when the script does not return `verified: true` or fails;
    /// when off, the outcome is only recorded on the event.
    pub enforce: bool,
    /// The line of the configuration text where the script's first line
    /// is, so an error the engine reports at a script line can name the
    /// file's line too.
    #[serde(skip)]
    pub first_line: usize,
}

/// Largest script text accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;

/// The table as written.
#[derive(Deserialize)]
pub(super) struct RawPreprocess {
    script: Option<S<String>>,
    #[serde(default)]
    vars: BTreeMap<String, S<String>>,
    enforce: Option<S<bool>>,
}

impl Cx<'_> {
    pub(super) fn preprocess(&mut self, raw: &S<RawPreprocess>, field: &str) -> Option<Preprocess> {
        let span = raw.span();
        let raw = raw.get_ref();
        let script = match &raw.script {
            None => {
                self.error(
                    span,
                    format!("{field}.script"),
                    "is required: a JavaScript module exporting `main(ctx)`",
                );
                None
            }
            Some(s) if s.get_ref().trim().is_empty() => {
                self.error(s.span(), format!("{field}.script"), "is empty");
                None
            }
            Some(s) if s.get_ref().len() > MAX_SCRIPT_BYTES => {
                self.error(
                    s.span(),
                    format!("{field}.script"),
                    format!(
                        "is {} bytes; a script is at most {MAX_SCRIPT_BYTES}",
                        s.get_ref().len()
                    ),
                );
                None
            }
            Some(s) => Some((s.get_ref().clone(), self.string_first_line(&s.span()))),
        };
        let mut vars = BTreeMap::new();
        for (name, value) in &raw.vars {
            let at = format!("{field}.vars.{name}");
            if !is_env_name(name) {
                self.error(
                    value.span(),
                    at,
                    "a var's name is letters, digits and `_`, not starting with a digit",
                );
                continue;
            }
            if let Some(secret) = self.secret(value, &at) {
                vars.insert(name.clone(), secret);
            }
        }
        let (script, first_line) = script?;
        Some(Preprocess {
            script,
            first_line,
            vars,
            enforce: raw.enforce.as_ref().is_none_or(|e| *e.get_ref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load;

    const HEAD: &str = "[environments.production]\n[[sources]]\nkey = \"hooks\"\nkind = \"http\"\n\
        [sources.environments.production]\ntoken = \"tok_hooks_0123456789abcdefghij\"\n";

    fn env(name: &str) -> Option<String> {
        (name == "HOOK_SECRET").then(|| "s3cret".to_owned())
    }

    #[test]
    fn a_script_with_vars_loads_with_enforce_on_by_default() {
        let text = format!(
            "{HEAD}[sources.environments.production.preprocess]\n\
             script = \"export function main(ctx) {{ return {{ verified: true }}; }}\"\n\
             vars = {{ SECRET = \"${{HOOK_SECRET}}\", PLAIN = \"x\" }}\n"
        );
        let config = load("t.toml", &text, &env).unwrap();
        let p = config.sources[0].environments["production"]
            .preprocess
            .as_ref()
            .unwrap();
        assert!(p.enforce);
        assert_eq!(p.vars["SECRET"].expose(), "s3cret");
        assert_eq!(p.vars["PLAIN"].expose(), "x");
        assert!(p.script.contains("export function main"));
    }

    #[test]
    fn the_scripts_first_line_in_the_file_is_kept() {
        let script = |value: &str| {
            let text =
                format!("{HEAD}[sources.environments.production.preprocess]\nscript = {value}\n");
            let config = load("t.toml", &text, &env).unwrap();
            let p = config.sources[0].environments["production"]
                .preprocess
                .clone();
            p.unwrap().first_line
        };
        // HEAD is six lines; the table header is line 7, `script =` line 8.
        assert_eq!(script("\"export function main() {}\""), 8);
        assert_eq!(script("'''export function main() {}'''"), 8);
        assert_eq!(script("'''\nexport function main() {}\n'''"), 9);
        assert_eq!(script("\"\"\"\r\nexport function main() {}\n\"\"\""), 9);
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let text = format!(
            "{HEAD}[sources.environments.production.preprocess]\n\
             script = \" \"\nvars = {{ \"1bad\" = \"x\", UNSET = \"${{NOPE}}\" }}\nenforce = false\nextra = 1\n"
        );
        let errors = load("t.toml", &text, &env).unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        let field = "sources[hooks].environments.production.preprocess";
        for expected in ["script", "vars.1bad", "vars.UNSET"] {
            assert!(
                fields.contains(&format!("{field}.{expected}").as_str()),
                "{expected}: {errors}"
            );
        }
        assert!(
            fields.contains(&"sources[0].environments.production.preprocess.extra"),
            "{errors}"
        );
        let missing =
            format!("{HEAD}[sources.environments.production.preprocess]\nenforce = true\n");
        let errors = load("t.toml", &missing, &env).unwrap_err();
        assert_eq!(errors.0[0].field, format!("{field}.script"), "{errors}");
    }
}
