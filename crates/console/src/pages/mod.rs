//! One module per area of the console.

pub(crate) mod actions;
pub(crate) mod environment;
pub(crate) mod events;
pub(crate) mod mapping;
pub(crate) mod rehearse;
pub(crate) mod revisions;
pub(crate) mod sign_in;
pub(crate) mod sources;

use axum::response::Html;
use maud::Markup;

/// A rendered page as a response body.
pub(crate) fn html(markup: Markup) -> Html<String> {
    Html(markup.into_string())
}

/// A list page's filters as a query string, the non-empty ones joined
/// with `&` (no cursor): what its pager and live tail links carry.
pub(crate) fn filter_query(filters: &[(&str, &String)]) -> String {
    filters
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", sources::encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
}
