//! `${NAME}` references in configuration strings, replaced by environment
//! values when a file is loaded. One rule for every binary's configuration:
//! a name is ASCII letters, digits and `_`, not starting with a digit (what
//! a POSIX shell accepts as a variable name), and an unset variable is an
//! error, never an empty string.

use std::fmt;

/// One problem with a reference in a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvReferenceError {
    /// `${` with no closing `}`.
    Unterminated,
    /// A name that is not a variable name (`${bad-name}`, `${1X}`, `${}`).
    InvalidName(String),
    /// A valid name whose variable is not set.
    Unset(String),
}

impl fmt::Display for EnvReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated => f.write_str("unterminated `${` reference; write `${NAME}`"),
            Self::InvalidName(name) => {
                write!(
                    f,
                    "`${{{name}}}` is not a valid environment variable reference"
                )
            }
            Self::Unset(name) => write!(f, "environment variable `{name}` is not set"),
        }
    }
}

impl std::error::Error for EnvReferenceError {}

/// Whether `name` may be referenced as `${name}`.
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` with every `${NAME}` replaced by `lookup(NAME)`, or every problem
/// found (all of them, so a file's errors are reported in one pass; an
/// unterminated reference ends the scan).
pub fn expand_env_refs(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<EnvReferenceError>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            problems.push(EnvReferenceError::Unterminated);
            return Err(problems);
        };
        let name = &after[..end];
        if !is_env_name(name) {
            problems.push(EnvReferenceError::InvalidName(name.to_owned()));
        } else if let Some(v) = lookup(name) {
            out.push_str(&v);
        } else {
            problems.push(EnvReferenceError::Unset(name.to_owned()));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_owned())
    }

    #[test]
    fn references_are_replaced_and_problems_named() {
        assert_eq!(
            expand_env_refs("a${SET}b${SET}", &lookup).unwrap(),
            "avaluebvalue"
        );
        assert_eq!(
            expand_env_refs("plain $SET {x}", &lookup).unwrap(),
            "plain $SET {x}"
        );
        assert_eq!(
            expand_env_refs("${", &lookup),
            Err(vec![EnvReferenceError::Unterminated])
        );
        assert_eq!(
            expand_env_refs("${bad-name}${1X}${}${NOPE}", &lookup),
            Err(vec![
                EnvReferenceError::InvalidName("bad-name".into()),
                EnvReferenceError::InvalidName("1X".into()),
                EnvReferenceError::InvalidName(String::new()),
                EnvReferenceError::Unset("NOPE".into()),
            ])
        );
    }

    proptest! {
        #[test]
        fn any_text_expands_or_names_its_problems(text in ".{0,60}") {
            match expand_env_refs(&text, &lookup) {
                Ok(out) => {
                    let reference = "${SET}";
                    prop_assert!(!out.contains(reference));
                }
                Err(problems) => {
                    prop_assert!(!problems.is_empty());
                    prop_assert!(problems.iter().all(|p| !p.to_string().is_empty()));
                }
            }
        }
    }
}
