//! HTTP handlers. Only this module and `app` know about status codes.

pub(crate) mod admin;
pub(crate) mod answer;
pub(crate) mod health;
pub(crate) mod ingest;
pub(crate) mod manage;
pub(crate) mod mapi;
pub(crate) mod providers;
pub(crate) mod reverse_etl;
