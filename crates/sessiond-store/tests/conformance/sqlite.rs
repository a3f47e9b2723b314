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

/// The writer and the readers are separate connections, so they must share a file: an
/// in-memory database would give each its own, empty one.
#[tokio::test]
async fn an_in_memory_database_is_refused_with_a_reason() {
    let Err(e) = SqliteStore::open_url("sqlite::memory:").await else {
        panic!("an in-memory database was accepted");
    };
    assert!(e.to_string().contains("in-memory"), "{e}");
}

/// Two stores on one file (two instances sharing a data folder) write at the same time:
/// SQLite's lock makes them take turns, each one's writes are visible to the other, and
/// neither fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_both_write() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("sessiond.db");
    let a = Arc::new(SqliteStore::open(&path).await.expect("open a"));
    a.migrate().await.expect("migrate");
    let b = Arc::new(SqliteStore::open(&path).await.expect("open b"));
    let now = chrono::Utc::now();
    let mut writes = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let user = sessiond_store::NewUser {
            id: sessiond_core::UserId::new(),
            email: Some(sessiond_core::Email::parse(&format!("user{i}@example.com")).unwrap()),
            name: None,
            password_hash: None,
            email_verified: false,
            created_at: now,
        };
        writes.push(tokio::spawn(async move {
            let mut tx = store.begin().await?;
            let made = tx.insert_user(&user).await?;
            tx.commit().await?;
            Ok::<_, sessiond_store::StoreError>(made.id)
        }));
    }
    for write in writes {
        let id = write.await.expect("task").expect("write");
        assert!(a.user_by_id(id).await.unwrap().is_some());
        assert!(b.user_by_id(id).await.unwrap().is_some());
    }
}

/// While another process holds SQLite's write lock, a write waits for it without holding
/// the runtime thread (on a one-thread runtime, other tasks keep running), then succeeds
/// once the lock is released.
#[tokio::test(flavor = "current_thread")]
async fn a_write_waiting_for_another_process_does_not_block_the_runtime() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("sessiond.db");
    let store = Arc::new(SqliteStore::open(&path).await.expect("open"));
    store.migrate().await.expect("migrate");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let writer = store.clone();
    let write = tokio::spawn(async move {
        let mut tx = writer.begin().await?;
        tx.insert_user(&sessiond_store::NewUser {
            id: sessiond_core::UserId::new(),
            email: None,
            name: None,
            password_hash: None,
            email_verified: false,
            created_at: chrono::Utc::now(),
        })
        .await?;
        tx.commit().await
    });
    // The waiting write must leave this thread free: ticks of 10 ms keep coming.
    let started = std::time::Instant::now();
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the runtime thread was held for {:?}",
        started.elapsed()
    );
    assert!(!write.is_finished(), "the write did not wait for the lock");
    other
        .execute_batch("COMMIT")
        .expect("release the write lock");
    write
        .await
        .expect("task")
        .expect("the write succeeds once the lock is free");
}
