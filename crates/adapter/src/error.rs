//! Adapter errors: one typed enum with an HTTP-agnostic category, and the
//! JSON error body (docs/product-decisions.md, "Answers").

use serde::{Deserialize, Serialize};

/// What kind of failure a rejected request is. The service maps categories
/// to statuses (docs/product-decisions.md, "Answers"): `MalformedJson` 400,
/// `Schema` 422, `Unauthorized` 401, `TooLarge` 413, `UnsupportedEncoding` 415.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// The body is not JSON.
    MalformedJson,
    /// Valid JSON that breaks the source's schema.
    Schema,
    /// A missing or wrong signature, token or key.
    Unauthorized,
    /// Over a size or count limit (after decompression).
    TooLarge,
    /// A content encoding or charset we do not decode.
    UnsupportedEncoding,
}

/// Why an adapter rejected a whole request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The body is not valid JSON (or not UTF-8).
    #[error("body is not valid JSON: {message}")]
    MalformedJson {
        /// The parser's message with line and column.
        message: String,
    },
    /// Valid JSON that breaks the schema.
    #[error("{message} (at `{field}`)")]
    Schema {
        /// Machine-readable problem.
        code: &'static str,
        /// JSON pointer to the offending value (`""` for the whole body).
        field: String,
        /// Human-readable problem.
        message: String,
    },
    /// Verification or credentials failed.
    #[error("{message}")]
    Unauthorized {
        /// Machine-readable problem.
        code: &'static str,
        /// Human-readable problem (never contains a secret).
        message: String,
    },
    /// Over a limit.
    #[error("{message}")]
    TooLarge {
        /// Machine-readable problem.
        code: &'static str,
        /// Human-readable problem.
        message: String,
    },
    /// An encoding or charset we do not handle.
    #[error("{message}")]
    UnsupportedEncoding {
        /// Machine-readable problem.
        code: &'static str,
        /// Human-readable problem.
        message: String,
    },
}

impl AdapterError {
    /// A schema error at `field`.
    pub fn schema(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Schema {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The category the service maps to a status.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::MalformedJson { .. } => ErrorCategory::MalformedJson,
            Self::Schema { .. } => ErrorCategory::Schema,
            Self::Unauthorized { .. } => ErrorCategory::Unauthorized,
            Self::TooLarge { .. } => ErrorCategory::TooLarge,
            Self::UnsupportedEncoding { .. } => ErrorCategory::UnsupportedEncoding,
        }
    }

    /// Machine-readable code (`malformed_json`, `missing_field`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "malformed_json",
            Self::Schema { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::TooLarge { code, .. }
            | Self::UnsupportedEncoding { code, .. } => code,
        }
    }

    /// The JSON pointer of the offending value, for schema errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Schema { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The human-readable message without the field.
    pub fn message(&self) -> String {
        match self {
            Self::Schema { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The JSON error body for this error.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message(),
                field: self.field().map(str::to_owned),
            },
        }
    }

    /// Maps a serde_json failure on a whole body.
    pub fn from_json(err: &serde_json::Error) -> Self {
        // Nesting deeper than serde_json's recursion limit (128) is valid
        // JSON we refuse, so it is a schema problem, not a syntax one.
        if err.to_string().starts_with("recursion limit exceeded") {
            return Self::schema(
                "nesting_too_deep",
                "",
                "JSON nests deeper than 128 levels".to_owned(),
            );
        }
        Self::MalformedJson {
            message: err.to_string(),
        }
    }
}

/// The error answer `{"error": {"code", "message", "field"?}}`
/// (docs/product-decisions.md, "Answers").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`]; also one entry in a batch summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable problem.
    pub code: String,
    /// Human-readable problem.
    pub message: String,
    /// JSON pointer to the offending value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// One bad item of a batch: the rest of the batch is still accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// Position in the batch (0 for a single event).
    pub index: usize,
    /// Machine-readable problem.
    pub code: String,
    /// JSON pointer from the request body's root (`/batch/3/event`).
    pub field: String,
    /// Human-readable problem.
    pub message: String,
}

impl ItemError {
    /// An item error.
    pub fn new(
        index: usize,
        code: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            index,
            code: code.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// As a batch summary entry.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.clone(),
            message: self.message.clone(),
            field: Some(self.field.clone()),
        }
    }

    /// For a single-event body, the item's problem is the request's problem (422).
    pub fn into_request_error(self) -> AdapterError {
        AdapterError::Schema {
            code: schema_code(&self.code),
            field: self.field,
            message: self.message,
        }
    }
}

// Item codes are plain strings so they serialize; request errors carry
// `&'static str`. Every code an adapter produces is listed here.
fn schema_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "missing_field",
        "invalid_type",
        "invalid_value",
        "unknown_type",
        "invalid_timestamp",
        "empty_value",
        "not_an_object",
        "nesting_too_deep",
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or("invalid_item")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_contract_shape() {
        let e = AdapterError::schema("missing_field", "/event", "`event` is required");
        let body = serde_json::to_value(e.to_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "missing_field", "message": "`event` is required", "field": "/event"}})
        );
        let e = AdapterError::MalformedJson {
            message: "EOF".into(),
        };
        let body = serde_json::to_value(e.to_body()).unwrap();
        assert!(body["error"].get("field").is_none());
        assert_eq!(body["error"]["code"], "malformed_json");
    }

    #[test]
    fn deep_nesting_is_a_schema_error_and_bad_syntax_is_malformed() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        let err = serde_json::from_str::<serde_json::Value>(&deep).unwrap_err();
        assert_eq!(
            AdapterError::from_json(&err).category(),
            ErrorCategory::Schema
        );
        let err = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(
            AdapterError::from_json(&err).category(),
            ErrorCategory::MalformedJson
        );
    }
}
