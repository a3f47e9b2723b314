//! SQLite's single writer, run synchronously on the calling task.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is two
//! thread hand-offs (to the connection's thread and back). Writes are serialised on one
//! connection, so those hand-offs add up on the path every write waits for: a refresh
//! took four of them while holding the writer, and context switches were most of its
//! time. Here the writer connection sits behind an async mutex instead: taking it costs
//! no thread switch, and a transaction's statements run on the task that holds it, each
//! a few microseconds of SQLite work. Reads stay on sqlx's pool, which never waits for
//! the writer (WAL).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{StoreError, StoreResult};

/// Statements kept prepared on the writer: every statement the store writes with fits.
const STATEMENT_CACHE: usize = 64;

#[derive(Clone)]
pub(super) struct Writer {
    conn: Arc<Mutex<Connection>>,
}

impl Writer {
    /// Opens the writer connection on an existing database file (sqlx created it and set
    /// WAL, which is a property of the file).
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> StoreResult<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(write_error)?;
        // Per-connection settings, the same as the readers'. With WAL, NORMAL loses at
        // most the last transactions on power loss, never integrity; FULL would cost an
        // fsync per refresh.
        conn.busy_timeout(busy_timeout).map_err(write_error)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(write_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Opens a transaction with `BEGIN IMMEDIATE`: it takes SQLite's write lock at once,
    /// so check-and-set sequences cannot interleave even with another process (such as
    /// `sessiond keys rotate`) on the same file.
    pub(super) async fn begin(&self) -> StoreResult<WriteTx> {
        let conn = self.conn.clone().lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(write_error)?;
        Ok(WriteTx { conn, open: true })
    }

    /// Runs one short statement outside a transaction (SQLite commits it by itself).
    pub(super) async fn run<T>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        let conn = self.conn.lock().await;
        write(&conn).map_err(write_error)
    }

    /// Like [`run`](Self::run), for statements that may take milliseconds (batched
    /// deletes): they run on the blocking pool, so they hold no runtime thread.
    pub(super) async fn run_blocking<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || write(&conn).map_err(write_error))
            .await
            .map_err(|e| StoreError::Unavailable(format!("write task failed: {e}")))?
    }
}

/// An open write transaction, holding the writer. Dropped without [`commit`](Self::commit)
/// (an error, or a cancelled request), it rolls back before releasing the writer.
pub(super) struct WriteTx {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl WriteTx {
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn commit(mut self) -> StoreResult<()> {
        self.open = false;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            // A failed COMMIT may leave the transaction open; never hand it on.
            rollback(&self.conn);
            return Err(write_error(e));
        }
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            rollback(&self.conn);
        }
    }
}

fn rollback(conn: &Connection) {
    if conn.is_autocommit() {
        return;
    }
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::error!(error = %e, "could not roll back a SQLite write transaction");
    }
}

/// Maps writer errors as [`super::rows::db_error`] maps the readers'.
pub(super) fn write_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, message)
            if failure.code == ErrorCode::ConstraintViolation
                && matches!(
                    failure.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
        {
            super::rows::conflict(message.as_deref().unwrap_or_default())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::InvalidColumnName(_)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}
