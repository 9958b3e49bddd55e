//! The answers (docs/product-decisions.md, "Answers"): the success shapes per
//! source kind and the JSON error body
//! `{"error": {"code", "message", "field"?}}` with its status.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tributary_adapter::ErrorCategory;
use tributary_core::config::SourceKind;
use tributary_edge::BodyError;
use tributary_pipeline::{PipelineError, Receipt};
use tributary_store::StoreError;

/// An error answer. Boxed: handlers return it in `Result`s on hot paths.
#[derive(Debug)]
pub(crate) struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: String,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
    extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: None,
            retry_after: None,
            extra: None,
        }))
    }

    pub(crate) fn with_field(mut self, field: Option<String>) -> Self {
        self.0.field = field;
        self
    }

    fn with_retry_after(mut self, secs: u64) -> Self {
        self.0.retry_after = Some(secs);
        self
    }

    pub(crate) fn with_extra(mut self, key: &'static str, value: Value) -> Self {
        self.0.extra = Some((key, value));
        self
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn store(e: &StoreError) -> Self {
        match e {
            StoreError::Overloaded => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over_capacity",
                "the commit queue is full; retry shortly",
            )
            .with_retry_after(1),
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "Store unavailable.");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store is unavailable; nothing was accepted, retry later",
                )
                .with_retry_after(5)
            }
            e => {
                tracing::error!(error = %e, "Store error.");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; nothing was accepted",
                )
            }
        }
    }
}

pub(crate) fn category_status(category: ErrorCategory) -> StatusCode {
    match category {
        ErrorCategory::MalformedJson => StatusCode::BAD_REQUEST,
        ErrorCategory::Schema => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCategory::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCategory::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCategory::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let error = Self::new(e.status(), e.code(), e.to_string());
        match e.retry_after_secs() {
            Some(secs) => error.with_retry_after(secs),
            None => error,
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::UnknownToken => Self::new(
                StatusCode::NOT_FOUND,
                "unknown_token",
                "no source is configured for this URL",
            ),
            PipelineError::UnknownWriteKey { message } => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_write_key", message)
            }
            PipelineError::Adapter(e) => {
                Self::new(category_status(e.category()), e.code(), e.message())
                    .with_field(e.field().map(str::to_owned))
            }
            PipelineError::AllItemsRejected { items } => {
                let (code, message, field) = items.first().map_or_else(
                    || {
                        (
                            "invalid_event".to_owned(),
                            "no event in the request could be accepted".to_owned(),
                            None,
                        )
                    },
                    |i| {
                        (
                            i.error.code.clone(),
                            i.error.message.clone(),
                            i.error.field.clone(),
                        )
                    },
                );
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, &code, message)
                    .with_field(field)
                    .with_extra("rejected", json!(items))
            }
            PipelineError::Script {
                code,
                message,
                enforced,
            } => {
                let category = if enforced {
                    ErrorCategory::Unauthorized
                } else {
                    ErrorCategory::Schema
                };
                Self::new(category_status(category), code, message)
            }
            PipelineError::ScriptBusy(e) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                "every preprocess script thread is busy; nothing was accepted, retry shortly",
            )
            .with_retry_after(1),
            PipelineError::Store(e) => Self::store(&e),
        }
    }
}

impl ApiError {
    /// The status and the JSON body this error answers with.
    pub(crate) fn parts(&self) -> (StatusCode, Value) {
        let inner = &self.0;
        let mut error = json!({"code": inner.code, "message": inner.message});
        if let Some(field) = &inner.field {
            error["field"] = Value::String(field.clone());
        }
        let mut body = json!({"error": error});
        if let Some((k, v)) = &inner.extra {
            body[*k] = v.clone();
        }
        (inner.status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        let inner = *self.0;
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = inner.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The success answer for a receive-URL delivery: 204 for legacy HTTP (the
/// product's rule), else a small JSON summary.
pub(crate) fn receipt(receipt: &Receipt) -> Response {
    if receipt.kind == SourceKind::HttpLegacy {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut body = json!({"accepted": receipt.accepted, "duplicates": receipt.duplicates});
    if !receipt.rejected.is_empty() {
        body["rejected"] = json!(receipt.rejected);
    }
    (StatusCode::OK, Json(body)).into_response()
}

/// The Segment Tracking API's answer.
pub(crate) fn tracking(receipt: &Receipt) -> Response {
    let mut body = json!({"success": true});
    if !receipt.rejected.is_empty() {
        body["rejected"] = json!(receipt.rejected);
    }
    (StatusCode::OK, Json(body)).into_response()
}
