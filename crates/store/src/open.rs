//! Opening the configured backend.

use std::sync::Arc;

use tributary_core::config::{StoreBackend, StoreSettings};

use crate::{
    LocalExecution, PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, StoreError,
};

/// Opens the backend `[store]` configures, applying migrations. `local`
/// says which environments' actions the store runs itself (see
/// [`LocalExecution`]).
pub async fn open(
    settings: &StoreSettings,
    local: LocalExecution,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &settings.backend {
        StoreBackend::Sqlite { path } => {
            let options = SqliteOptions {
                local_execution: local,
                ..SqliteOptions::default()
            };
            Arc::new(SqliteStore::open_dir_with(path, options).await?)
        }
        StoreBackend::Postgres { url } => {
            let options = PostgresOptions {
                local_execution: local,
                ..PostgresOptions::default()
            };
            Arc::new(PostgresStore::connect(url.expose(), options).await?)
        }
    })
}
