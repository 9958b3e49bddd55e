//! The forwarder's integration tests (one binary, so it links once).

mod backfill;
mod crash;
mod dead_letter_reasons;
mod not_forwarded;
mod redeliveries;
mod retention;
mod routes;
mod security;
mod support;
