//! A pooled connection under a client-side deadline.
//!
//! The server's `statement_timeout` bounds a statement only once the server has it: a
//! network that keeps the socket open but delivers nothing (a partition, a frozen host)
//! would leave the caller waiting forever. So every wait for the database here is bounded
//! on sessiond's side, and a connection whose statement did not finish (it timed out, or
//! the request was cancelled mid-statement) is closed rather than returned to the pool:
//! its state is unknown, and sqlx's check on return would wait on it just as long.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Row};

use crate::{StoreError, StoreResult};

use super::rows::db_error;

/// The deadline of one statement, and whether a statement is unfinished.
struct Deadline {
    limit: Duration,
    unfinished: bool,
}

impl Deadline {
    async fn run_within<T>(
        &mut self,
        limit: Duration,
        statement: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.unfinished = true;
        let outcome = tokio::time::timeout(limit, statement)
            .await
            .map_err(|_| timed_out(self.limit))?;
        // Not reached when the caller is cancelled mid-statement: then it stays set.
        self.unfinished = false;
        outcome
    }
}

fn timed_out(limit: Duration) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL did not answer within {limit:?}"))
}

/// A connection taken from the pool for one read or one transaction.
pub(super) struct Lease {
    conn: PoolConnection<Postgres>,
    deadline: Deadline,
    /// When the lease began: a lone read gets the deadline once, waiting included.
    started: Instant,
}

impl Lease {
    /// Waits at most `limit` for a connection.
    pub(super) async fn acquire(pool: &PgPool, limit: Duration) -> StoreResult<Self> {
        let started = Instant::now();
        let conn = tokio::time::timeout(limit, pool.acquire())
            .await
            .map_err(|_| timed_out(limit))?
            .map_err(db_error)?;
        Ok(Self {
            conn,
            deadline: Deadline {
                limit,
                unfinished: false,
            },
            started,
        })
    }

    /// Runs one statement within the deadline.
    pub(super) async fn run<T>(
        &mut self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let limit = self.deadline.limit;
        self.deadline
            .run_within(limit, statement(&mut self.conn))
            .await
    }

    /// Runs the lease's one statement within what is left of the deadline since the
    /// lease began (waiting for the connection counts).
    pub(super) async fn read<T>(
        mut self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let left = self.deadline.limit.saturating_sub(self.started.elapsed());
        self.deadline
            .run_within(left, statement(&mut self.conn))
            .await
    }

    /// Whether the server answers `SELECT 1` within the deadline.
    pub(super) async fn ping(self) -> StoreResult<()> {
        self.read(async |conn| {
            sqlx::query("SELECT 1")
                .fetch_one(conn)
                .await
                .and_then(|row| row.try_get::<i32, _>(0))
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    /// Whether a statement was started and not seen to finish.
    pub(super) fn is_unfinished(&self) -> bool {
        self.deadline.unfinished
    }

    /// Closes the connection instead of returning it to the pool.
    pub(super) fn discard(mut self) {
        self.deadline.unfinished = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.deadline.unfinished {
            tracing::warn!("closing a PostgreSQL connection whose statement did not finish");
            self.conn.close_on_drop();
        }
    }
}
