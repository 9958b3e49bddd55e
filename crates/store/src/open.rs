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
        StoreBackend::Postgres {
            url,
            pool_size,
            committers,
        } => {
            let options = postgres_options(*pool_size, *committers, local);
            Arc::new(PostgresStore::connect(url.expose(), options).await?)
        }
    })
}

/// `[store]`'s PostgreSQL settings over the store's defaults.
fn postgres_options(
    pool_size: Option<usize>,
    committers: Option<usize>,
    local: LocalExecution,
) -> PostgresOptions {
    let defaults = PostgresOptions::default();
    PostgresOptions {
        local_execution: local,
        pool_size: pool_size.unwrap_or(defaults.pool_size),
        committers: committers.unwrap_or(defaults.committers),
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_settings_left_out_take_the_store_defaults() {
        let defaults = PostgresOptions::default();
        let unset = postgres_options(None, None, LocalExecution::ThroughSink);
        assert_eq!(
            (unset.pool_size, unset.committers),
            (defaults.pool_size, defaults.committers)
        );
        let set = postgres_options(Some(5), Some(3), LocalExecution::ThroughSink);
        assert_eq!((set.pool_size, set.committers), (5, 3));
        assert_eq!(set.max_batch, defaults.max_batch);
    }
}
