//! Choosing the storage backend from the configuration.

use std::path::Path;
use std::sync::Arc;

use sessiond_store::{SqliteStore, Store, StoreError};

use crate::Config;

/// The SQLite file used when no database URL is configured.
pub const SQLITE_FILE: &str = "sessiond.db";

/// Opens the configured store (without migrating it).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match config.database_url.as_deref() {
        None => {
            ensure_dir(&config.data_dir)?;
            Ok(Arc::new(SqliteStore::open(&config.data_dir.join(SQLITE_FILE)).await?))
        }
        Some(url) if url.starts_with("sqlite:") => Ok(Arc::new(SqliteStore::open_url(url).await?)),
        Some(_) => Err(StoreError::Unavailable(
            "PostgreSQL storage is not available in this build yet; use SQLite (leave database_url unset)".into(),
        )),
    }
}

pub fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Unavailable(format!("cannot create data folder {}: {e}", dir.display()))
    })
}
