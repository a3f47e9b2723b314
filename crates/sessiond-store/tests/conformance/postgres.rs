//! The storage conformance suite against the PostgreSQL backend, each test on a fresh
//! database of its own (created on the server named by `TEST_POSTGRES_URL`, dropped
//! afterwards). Without a reachable server the tests skip, saying so on stderr, unless
//! `CI` is set; see [`sessiond_store::testing::postgres`].

use std::sync::Arc;

use sessiond_store::testing::postgres;
use sessiond_store::{PostgresOptions, Store};

/// A fresh, migrated store with the production defaults, or `None` to skip.
///
/// Except that the pool opens all its connections up front: with a cold pool the first
/// contender of a concurrency test can finish before the others have connected, and the
/// race under test would not happen.
async fn fresh_store() -> Option<Arc<dyn Store>> {
    let defaults = PostgresOptions::default();
    let options = PostgresOptions {
        min_connections: defaults.max_connections,
        ..defaults
    };
    let store = postgres::fresh_store(options).await?;
    Some(Arc::new(store))
}

// The factory expression is evaluated inside each generated test, so `return` ends that
// test early (skipped) when PostgreSQL is not available.
sessiond_store::conformance_tests!(match fresh_store().await {
    Some(store) => std::future::ready(store),
    None => return,
});
