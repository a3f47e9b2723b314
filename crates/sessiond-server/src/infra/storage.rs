//! Choosing the storage backend from the configuration.

use std::path::Path;
use std::sync::Arc;

use sessiond_store::postgres::events::PgEvents;
use sessiond_store::{PostgresOptions, PostgresStore, SqliteStore, Store, StoreError};

use crate::Config;
use crate::config::DatabaseUrl;

/// The SQLite file used when no database URL is configured.
pub const SQLITE_FILE: &str = "sessiond.db";

/// Opens the configured store (without migrating it).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(open_store_with_events(config).await?.0)
}

/// The store, and for PostgreSQL its notification channel (for cross-instance fan-out).
pub async fn open_store_with_events(
    config: &Config,
) -> Result<(Arc<dyn Store>, Option<PgEvents>), StoreError> {
    let store: Arc<dyn Store> = match &config.database_url {
        Some(DatabaseUrl::Postgres(url)) => {
            let store = PostgresStore::connect(url, postgres_options(config)).await?;
            let events = store.events();
            return Ok((Arc::new(store), Some(events)));
        }
        Some(DatabaseUrl::Sqlite(url)) => Arc::new(SqliteStore::open_url(url).await?),
        None => {
            ensure_dir(&config.data_dir)?;
            Arc::new(SqliteStore::open(&config.data_dir.join(SQLITE_FILE)).await?)
        }
    };
    Ok((store, None))
}

fn postgres_options(config: &Config) -> PostgresOptions {
    PostgresOptions {
        max_connections: config.database_max_connections,
        acquire_timeout: config.database_timeout,
        connect_timeout: config.database_timeout,
        deadline: config.database_timeout,
        statement_timeout: Some(config.database_statement_timeout),
        ..PostgresOptions::default()
    }
}

pub fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    create_private_dir(dir).map_err(|e| {
        StoreError::Unavailable(format!("cannot create data folder {}: {e}", dir.display()))
    })
}

/// Creates `dir` (and missing parents) readable by the owner only: the data folder holds
/// the database with the private signing keys and the admin key. An existing folder is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
