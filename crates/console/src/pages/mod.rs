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
