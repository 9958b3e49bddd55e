//! The forwarder's integration tests (one binary, so it links once).

mod backfill;
mod crash;
mod not_forwarded;
mod retention;
mod routes;
mod support;
