//! Why a resource-API call was refused, with the product API's status semantics.

/// A refused resource-API call. The service maps each variant to the status
/// the product's API gives ([`ResourceError::status`]); every variant but
/// `UnknownRoute` names the offending field as a JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// No such endpoint (404).
    #[error("no such endpoint: {method} {path}")]
    UnknownRoute {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// The body is not JSON (400).
    #[error("body is not valid JSON: {message}")]
    MalformedJson {
        /// The parser's message.
        message: String,
    },
    /// Valid JSON that the endpoint does not accept (422).
    #[error("{message} (at `{field}`)")]
    Invalid {
        /// Machine-readable problem (`missing_field`, `invalid_type`, `too_many`...).
        code: &'static str,
        /// JSON pointer to the offending value (`/users/3/id`; `""` for the body).
        field: String,
        /// Human-readable problem naming the field.
        message: String,
    },
    /// A value over a size limit: trigger `data` over 10 MB (413).
    #[error("{message} (at `{field}`)")]
    TooLarge {
        /// JSON pointer to the value.
        field: String,
        /// Human-readable problem.
        message: String,
    },
}

impl ResourceError {
    pub(crate) fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("`{}` is required", display_name(&field));
        Self::invalid("missing_field", field, message)
    }

    pub(crate) fn wrong_type(field: impl Into<String>, expected: &str, found: &str) -> Self {
        let field = field.into();
        let message = format!("`{}` must be {expected}, not {found}", display_name(&field));
        Self::invalid("invalid_type", field, message)
    }

    pub(crate) fn too_many(field: impl Into<String>, count: usize, limit: usize) -> Self {
        let field = field.into();
        let message = format!(
            "`{}` has {count} entries; at most {limit} are allowed",
            display_name(&field)
        );
        Self::invalid("too_many", field, message)
    }

    /// The HTTP status the product's API answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownRoute { .. } => 404,
            Self::MalformedJson { .. } => 400,
            Self::Invalid { .. } => 422,
            Self::TooLarge { .. } => 413,
        }
    }

    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRoute { .. } => "not_found",
            Self::MalformedJson { .. } => "malformed_json",
            Self::Invalid { code, .. } => code,
            Self::TooLarge { .. } => "too_large",
        }
    }

    /// The JSON pointer of the offending value.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::TooLarge { field, .. } => Some(field),
            Self::UnknownRoute { .. } | Self::MalformedJson { .. } => None,
        }
    }

    /// The message without the field suffix.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid { message, .. } | Self::TooLarge { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// `/users/3/id` reads as `users[3].id` in messages.
fn display_name(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        if token.chars().all(|c| c.is_ascii_digit()) && !token.is_empty() {
            out.push('[');
            out.push_str(token);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token.replace("~1", "/").replace("~0", "~"));
        }
    }
    if out.is_empty() {
        "body".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field() {
        let e = ResourceError::missing("/users/3/id");
        assert_eq!(e.message(), "`users[3].id` is required");
        assert_eq!(e.field(), Some("/users/3/id"));
        assert_eq!(e.status(), 422);
        assert_eq!(
            ResourceError::too_many("/recipients", 101, 100).status(),
            422
        );
    }
}
