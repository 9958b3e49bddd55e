//! Opening the configured backend.

use std::sync::Arc;

use tributary_core::config::{StoreBackend, StoreSettings};

use crate::{PostgresOptions, PostgresStore, SqliteStore, Store, StoreError};

/// Opens the backend `[store]` configures, applying migrations.
pub async fn open(settings: &StoreSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &settings.backend {
        StoreBackend::Sqlite { path } => Arc::new(SqliteStore::open_dir(path).await?),
        StoreBackend::Postgres { url } => {
            Arc::new(PostgresStore::connect(url.expose(), PostgresOptions::default()).await?)
        }
    })
}
