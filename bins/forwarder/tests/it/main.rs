//! The forwarder's integration tests (one binary, so it links once).

mod backfill;
mod crash;
mod retention;
mod routes;
mod support;
