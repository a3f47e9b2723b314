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
//!
//! When another process holds SQLite's write lock (a second instance on the same folder,
//! `sessiond keys rotate`, an operator's `sqlite3` shell), taking the lock is retried
//! with pauses on the timer instead of SQLite's busy handler, which would sleep on the
//! runtime thread and stall every request it serves.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{StoreError, StoreResult};

/// Statements kept prepared on the writer: every statement the store writes with fits.
const STATEMENT_CACHE: usize = 64;

/// The longest pause between two attempts at SQLite's write lock.
const MAX_PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub(super) struct Writer {
    conn: Arc<Mutex<Connection>>,
    /// How long a write waits for another process's write lock before failing.
    busy_timeout: Duration,
}

impl Writer {
    /// Whether a transaction holds the writer now.
    pub(super) fn is_busy(&self) -> bool {
        self.conn.try_lock().is_err()
    }

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
        // No busy handler: waits for the lock happen in `retry_busy`, off the thread.
        conn.busy_timeout(Duration::ZERO).map_err(write_error)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(write_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            busy_timeout,
        })
    }

    /// Takes the writer and runs `attempt` on it; while SQLite answers that another
    /// process holds the write lock, releases the writer, pauses (1 ms, doubling up to
    /// 20 ms) and tries again, for at most the busy timeout.
    async fn retry_busy<T>(
        &self,
        mut attempt: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<(OwnedMutexGuard<Connection>, T)> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let conn = self.conn.clone().lock_owned().await;
            match attempt(&conn) {
                Ok(done) => return Ok((conn, done)),
                Err(e) if is_busy(&e) && Instant::now() + pause < deadline => {
                    drop(conn);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => return Err(write_error(e)),
            }
        }
    }

    /// Opens a transaction with `BEGIN IMMEDIATE`: it takes SQLite's write lock at once,
    /// so check-and-set sequences cannot interleave even with another process (such as
    /// `sessiond keys rotate`) on the same file.
    pub(super) async fn begin(&self) -> StoreResult<WriteTx> {
        // Only taking the lock can be refused: once held, the transaction's statements
        // and its COMMIT (WAL) wait for no one.
        let (conn, ()) = self
            .retry_busy(|c| c.execute_batch("BEGIN IMMEDIATE"))
            .await?;
        Ok(WriteTx { conn, open: true })
    }

    /// Runs one short statement outside a transaction (SQLite commits it by itself).
    pub(super) async fn run<T>(
        &self,
        write: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        Ok(self.retry_busy(write).await?.1)
    }

    /// Like [`run`](Self::run), for statements that may take milliseconds (batched
    /// deletes): they run on the blocking pool, so they hold no runtime thread, and may
    /// wait there for another process's write lock.
    pub(super) async fn run_blocking<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone().lock_owned().await;
        let busy_timeout = self.busy_timeout;
        tokio::task::spawn_blocking(move || {
            conn.busy_timeout(busy_timeout)?;
            let done = write(&conn);
            conn.busy_timeout(Duration::ZERO)?;
            done
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("write task failed: {e}")))?
        .map_err(write_error)
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

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
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
