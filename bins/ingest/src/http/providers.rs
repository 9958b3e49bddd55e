//! The source templates under `/api/v1` in the product's shape, its
//! "source providers" (docs/templates.md, "The source providers API").
//! Read-only data from `tributary-templates`; behind the admin token like
//! the rest of the admin API.

use axum::{
    Json, Router,
    extract::{Path, Query, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tributary_templates::{Include, TemplateError};

use super::answer::ApiError;
use crate::AppState;

/// Every route here, relative to `/api/v1`; the OpenAPI document must list each.
pub(crate) const PATHS: [&str; 2] = ["/source_providers", "/source_providers/{key}"];

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(PATHS[0], get(list))
        .route(PATHS[1], get(one))
}

async fn list() -> Response {
    Json(tributary_templates::providers()).into_response()
}

async fn one(
    Path(key): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| {
        ApiError::bad_request("invalid_query", e.body_text()).with_field(Some("include".into()))
    })?;
    // `include=a,b`, `include=a&include=b` and `include[]=a` all read the same.
    let wanted: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "include" || k == "include[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let include = Include::parse(&wanted.join(",")).map_err(|e| match e {
        TemplateError::UnknownInclude(..) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_include",
            e.to_string(),
        )
        .with_field(Some("include".into())),
        other => ApiError::bad_request("invalid_query", other.to_string()),
    })?;
    let template = tributary_templates::get(&key).ok_or_else(|| {
        ApiError::not_found(format!(
            "no source provider `{}`",
            key.chars().take(64).collect::<String>()
        ))
    })?;
    Ok(Json(tributary_templates::provider(template, &include)).into_response())
}
