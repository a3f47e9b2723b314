//! The storage conformance suite against the SQLite backend, each test on a fresh
//! database file in its own temporary directory.

use std::sync::Arc;

use sessiond_store::testing::OwnedStore;
use sessiond_store::{SqliteStore, Store};

async fn fresh_store() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("sessiond.db"))
        .await
        .expect("open SQLite store");
    store.migrate().await.expect("migrate");
    // The directory holding the file goes when the store is dropped, after it closes.
    Arc::new(OwnedStore::new(store, dir))
}

sessiond_store::conformance_tests!(fresh_store());
