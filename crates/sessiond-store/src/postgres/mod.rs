//! PostgreSQL, for several sessiond instances sharing one database.
//!
//! Atomicity comes from the database: every [`Tx`] is a READ COMMITTED transaction whose
//! `lock_*` reads take `FOR UPDATE` row locks, so check-and-set sequences on one user,
//! session or refresh token queue behind each other while unrelated ones run in
//! parallel. Reads and single-statement writes lease a pooled connection for one statement.
//!
//! Every pooled connection runs with a `statement_timeout` (5 s by default), which also
//! bounds how long a transaction waits for a row lock, and every wait for the database
//! is also bounded on this side ([`PostgresOptions::deadline`], see `lease.rs`): a
//! partitioned network never answers at all. Migrations run on a connection of
//! their own without it, under sqlx's advisory lock, so several instances may run
//! `sessiond migrate` at once.

pub mod events;
mod lease;
mod outbox;
mod revocations;
mod rows;
mod tx;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::otp::OtpPurpose;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::revocation::{FeedBounds, Revocation};
use sessiond_core::{Email, RefreshTokenId, Session, SessionId, TokenHash, User, UserId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use self::lease::Lease;
use self::rows::{USER_COLUMNS, db_error, ts};
use self::tx::Lock;
use crate::{
    Delivery, DeliveryClaim, DeliveryOutcome, EndingBy, EventQuery, Identity, LiveWindow,
    PoolStats, PurgeBefore, Store, StoreError, StoreResult, StoredEvent, Tx, UserCredentials,
    UserQuery, WebhookBacklog,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/postgres/migrations");

/// Pool and connection settings. The defaults suit one sessiond instance next to a
/// PostgreSQL server that serves a few of them.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections this instance holds open.
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a request waits for a free connection (including opening a new one)
    /// before the store reports itself unavailable.
    pub acquire_timeout: Duration,
    /// How long [`PostgresStore::connect`] and the migration connection may take to
    /// connect. Connections the pool opens later are bounded by `acquire_timeout`.
    pub connect_timeout: Duration,
    /// The server-side `statement_timeout` of every pooled connection (waiting for a row
    /// lock counts); `None` leaves the server's setting.
    pub statement_timeout: Option<Duration>,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Option<Duration>,
    /// sessiond's own bound on every wait for the database: for a connection, and for
    /// each statement's answer (a read's wait for its connection counts towards it). Past
    /// it the call fails as unavailable and the connection, if any, is closed. Unlike
    /// `statement_timeout` it holds when the network, not the server, is stuck.
    pub deadline: Duration,
    /// Connections are replaced after this long, so server-side changes (failover,
    /// settings) reach every connection eventually.
    pub max_lifetime: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Some(Duration::from_secs(5)),
            deadline: Duration::from_secs(3),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
        }
    }
}

pub struct PostgresStore {
    pool: PgPool,
    /// For the migration connection: the URL's options, without a statement timeout.
    migrate_options: PgConnectOptions,
    connect_timeout: Duration,
    /// The client-side bound on every wait for the database.
    deadline: Duration,
    /// `host:port/database`, for error messages (never the password).
    target: String,
}

/// A user and its password hash from a row with [`USER_COLUMNS`] and `password_hash`.
fn credentials(row: Option<sqlx::postgres::PgRow>) -> StoreResult<Option<UserCredentials>> {
    let Some(row) = row else { return Ok(None) };
    let Some(user) = rows::joined_user(&row)? else {
        return Ok(None);
    };
    let password_hash = sqlx::Row::try_get(&row, "password_hash").map_err(db_error)?;
    Ok(Some(UserCredentials {
        user,
        password_hash,
    }))
}

impl PostgresStore {
    async fn lease(&self) -> StoreResult<Lease> {
        Lease::acquire(&self.pool, self.deadline).await
    }

    /// The notification channel on this store's database.
    pub fn events(&self) -> events::PgEvents {
        events::PgEvents::new(self.pool.clone())
    }

    /// Connects to a `postgres://` or `postgresql://` URL, failing if the server does not
    /// answer within `options.connect_timeout`. Does not migrate.
    pub async fn connect(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let mut base = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
        if base.get_application_name().is_none() {
            base = base.application_name("sessiond");
        }
        let target = format!(
            "{}:{}/{}",
            base.get_host(),
            base.get_port(),
            base.get_database().unwrap_or(base.get_username())
        );
        let pooled = match options.statement_timeout {
            // Sent in the startup packet: no extra round trip per connection.
            Some(limit) => base
                .clone()
                .options([("statement_timeout", format!("{}ms", limit.as_millis()))]),
            None => base.clone(),
        };
        let migrate_options = base.options([("statement_timeout", "0")]);

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .test_before_acquire(false)
            .before_acquire(crate::alive_or_recent)
            .after_release(crate::reusable)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            .max_lifetime(options.max_lifetime)
            .connect_with(pooled);
        let pool = tokio::time::timeout(options.connect_timeout, pool)
            .await
            .map_err(|_| timed_out(&target, options.connect_timeout))?
            .map_err(|e| at(&target, e))?;
        Ok(Self {
            pool,
            migrate_options,
            connect_timeout: options.connect_timeout,
            deadline: options.deadline,
            target,
        })
    }
}

fn timed_out(target: &str, after: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "PostgreSQL at {target} did not answer within {after:?}"
    ))
}

/// [`db_error`], naming the server for connection failures.
fn at(target: &str, e: sqlx::Error) -> StoreError {
    match db_error(e) {
        StoreError::Unavailable(why) => {
            StoreError::Unavailable(format!("PostgreSQL at {target}: {why}"))
        }
        other => other,
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.lease().await?.ping().await
    }

    async fn migrate(&self) -> StoreResult<()> {
        // A connection of its own (a pool of one, closed afterwards): waiting for another
        // instance's migration lock, or a long migration, must not hit the pool's
        // statement timeout.
        let conn = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.connect_timeout)
            .connect_with(self.migrate_options.clone());
        let conn = tokio::time::timeout(self.connect_timeout, conn)
            .await
            .map_err(|_| timed_out(&self.target, self.connect_timeout))?
            .map_err(|e| at(&self.target, e))?;
        // `run` holds a PostgreSQL advisory lock while it migrates.
        let result = MIGRATOR
            .run(&conn)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()));
        conn.close().await;
        result
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        Ok(Box::new(tx::PostgresTx::begin(self.lease().await?).await?))
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.lease()
            .await?
            .read(async |conn| tx::user(conn, id, Lock::None).await)
            .await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1");
        let row = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(&sql)
                    .bind(email.as_str())
                    .fetch_optional(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        credentials(row)
    }

    async fn user_credentials(&self, id: UserId) -> StoreResult<Option<UserCredentials>> {
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.id = $1");
        let row = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(&sql)
                    .bind(id.as_uuid())
                    .fetch_optional(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        credentials(row)
    }

    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
        // Only the filters given are in the statement, so each gets its own plan (a
        // catch-all `($1 IS NULL OR …)` form gets one generic plan that scans). The
        // prefix is two LIKE 'q%' scans of the text_pattern_ops indexes, as a set of ids.
        let mut conditions = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        if let Some(email) = &q.email {
            texts.push(email.as_str().to_owned());
            conditions.push(format!("u.email = ${}", texts.len()));
        }
        if let Some(prefix) = &q.prefix {
            // The range the text_pattern_ops indexes serve (byte order; no character's
            // bytes sort above U+10FFFF's). Planned with its values (an unnamed statement,
            // below), the planner knows how many users match from the indexes'
            // statistics: a few are collected from the two indexes, many are found soonest
            // by walking the users by id.
            texts.push(prefix.clone());
            texts.push(format!("{prefix}\u{10FFFF}"));
            let (low, high) = (texts.len() - 1, texts.len());
            conditions.push(format!(
                "((u.email ~>=~ ${low} AND u.email ~<~ ${high}) \
                 OR (lower(u.name) ~>=~ ${low} AND lower(u.name) ~<~ ${high}))"
            ));
        }
        let after_param = texts.len() + 1;
        if q.after.is_some() {
            conditions.push(format!("u.id > ${after_param}::uuid"));
        }
        if let Some(active) = q.active {
            conditions.push(format!("u.active = {active}"));
        }
        if let Some(verified) = q.email_verified {
            conditions.push(format!("u.email_verified = {verified}"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u {filter} ORDER BY u.id LIMIT {}",
            q.limit
        );
        let found = self
            .lease()
            .await?
            .read(async |conn| {
                // Unnamed: planned with these values each time, never with a generic
                // plan that cannot tell a rare prefix from a common one.
                let mut query = sqlx::query(&sql).persistent(false);
                for text in &texts {
                    query = query.bind(text.as_str());
                }
                if let Some(after) = q.after {
                    query = query.bind(after.as_uuid());
                }
                query.fetch_all(conn).await.map_err(db_error)
            })
            .await?;
        found
            .iter()
            .filter_map(|r| rows::joined_user(r).transpose())
            .collect()
    }

    async fn identities_of_user(&self, id: UserId) -> StoreResult<Vec<Identity>> {
        let found = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(
                    "SELECT provider, external_id, created_at FROM identities \
                     WHERE user_id = $1 ORDER BY created_at, provider",
                )
                .bind(id.as_uuid())
                .fetch_all(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        found
            .iter()
            .map(|r| {
                Ok(Identity {
                    provider: sqlx::Row::try_get(r, "provider").map_err(db_error)?,
                    external_id: sqlx::Row::try_get(r, "external_id").map_err(db_error)?,
                    created_at: sqlx::Row::try_get(r, "created_at").map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        self.lease()
            .await?
            .read(async |conn| tx::session_with_user(conn, id, Lock::None).await)
            .await
    }

    async fn ended_sessions_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {} FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NOT NULL \
             ORDER BY s.revoked_at DESC LIMIT $2",
            rows::SESSION_COLUMNS
        );
        let found = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(&sql)
                    .bind(user.as_uuid())
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        found.iter().map(rows::session).collect()
    }

    async fn live_sessions_for_user(
        &self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>> {
        let mut sessions = self
            .lease()
            .await?
            .read(async |conn| tx::live_sessions_for_user(conn, user, window).await)
            .await?;
        sessions.reverse();
        Ok(sessions)
    }

    async fn session_data(&self, id: SessionId) -> StoreResult<Option<serde_json::Value>> {
        let data: Option<Option<String>> = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query_scalar("SELECT data::text FROM sessions WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        match data {
            None => Ok(None),
            Some(None) => Ok(Some(serde_json::json!({}))),
            Some(Some(text)) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("session data: {e}"))),
        }
    }

    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()> {
        self.lease()
            .await?
            .read(async |conn| {
                sqlx::query(
                    "UPDATE sessions SET last_active_at = $1 WHERE id = $2 AND last_active_at < $1",
                )
                .bind(ts(at))
                .bind(id.as_uuid())
                .execute(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(())
    }

    async fn refresh_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        self.lease()
            .await?
            .read(async |conn| tx::refresh_token_by_hash(conn, hash, Lock::None).await)
            .await
    }

    async fn refresh_token_is_rotated(&self, id: RefreshTokenId) -> StoreResult<bool> {
        self.lease()
            .await?
            .read(async |conn| tx::refresh_token_is_rotated(conn, id).await)
            .await
    }

    async fn revocations_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Revocation>> {
        self.lease()
            .await?
            .read(async |conn| revocations::after(conn, after, limit).await)
            .await
    }

    async fn revocation_bounds(&self) -> StoreResult<FeedBounds> {
        self.lease()
            .await?
            .read(async |conn| revocations::bounds(conn).await)
            .await
    }

    async fn live_revocations(&self, page: &crate::LivePage) -> StoreResult<Vec<Revocation>> {
        self.lease()
            .await?
            .read(async |conn| revocations::live(conn, page).await)
            .await
    }

    async fn purge_revocations(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.lease()
            .await?
            .read(async |conn| revocations::purge(conn, before).await)
            .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(
                    "SELECT kid, private_pkcs8, created_at, retired_at FROM signing_keys \
             ORDER BY created_at, kid",
                )
                .fetch_all(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        rows.iter().map(rows::signing_key).collect()
    }

    async fn latest_otp_challenge_at(
        &self,
        email: &str,
        purpose: OtpPurpose,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        self.lease()
            .await?
            .read(async |conn| {
                sqlx::query_scalar(
                    "SELECT MAX(created_at) FROM otp_challenges WHERE email = $1 AND purpose = $2",
                )
                .bind(email)
                .bind(purpose.as_str())
                .fetch_one(conn)
                .await
                .map_err(db_error)
            })
            .await
    }

    async fn purge_otp_challenges(
        &self,
        before: DateTime<Utc>,
        batch_size: u32,
    ) -> StoreResult<u64> {
        let done = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(
                    "DELETE FROM otp_challenges WHERE id IN \
             (SELECT id FROM otp_challenges WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(ts(before))
                .bind(i64::from(batch_size))
                .execute(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn purge_spent_tokens(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64> {
        let done = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(
                    "DELETE FROM spent_tokens WHERE fingerprint IN \
                     (SELECT fingerprint FROM spent_tokens WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(ts(before))
                .bind(i64::from(batch_size))
                .execute(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<StoredEvent>> {
        self.lease()
            .await?
            .read(async |conn| outbox::list(conn, query).await)
            .await
    }

    async fn purge_events(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64> {
        self.lease()
            .await?
            .read(async |conn| outbox::purge(conn, before, batch_size).await)
            .await
    }

    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> StoreResult<Vec<Delivery>> {
        self.lease()
            .await?
            .read(async |conn| outbox::claim(conn, claim).await)
            .await
    }

    async fn finish_delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()> {
        self.lease()
            .await?
            .read(async |conn| outbox::finish(conn, endpoint, event_seq, outcome).await)
            .await
    }

    async fn disable_endpoint(
        &self,
        endpoint: &str,
        url: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        // One transaction: the endpoint is disabled exactly when its deliveries end.
        self.lease()
            .await?
            .read(async |conn| {
                let mut tx = sqlx::Connection::begin(conn)
                    .await
                    .map_err(rows::db_error)?;
                let ended = outbox::disable(&mut tx, endpoint, url, at).await?;
                tx.commit().await.map_err(rows::db_error)?;
                Ok(ended)
            })
            .await
    }

    async fn disabled_endpoints(&self) -> StoreResult<Vec<(String, String)>> {
        self.lease()
            .await?
            .read(async |conn| outbox::disabled(conn).await)
            .await
    }

    async fn webhook_backlog(&self) -> StoreResult<Vec<WebhookBacklog>> {
        self.lease()
            .await?
            .read(async |conn| outbox::backlog(conn).await)
            .await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query_scalar("SELECT count(*) FROM users")
                    .fetch_one(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn count_live_sessions(&self, window: LiveWindow) -> StoreResult<u64> {
        let live: i64 = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query_scalar(
                    "SELECT count(*) FROM sessions \
                     WHERE revoked_at IS NULL AND expires_at > $1 AND last_active_at > $2",
                )
                .bind(ts(window.now))
                .bind(ts(window.idle_cutoff))
                .fetch_one(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(live.try_into().unwrap_or(0))
    }

    async fn unrevoked_sessions_ending(
        &self,
        by: EndingBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Session>> {
        let sql = by.statement(rows::SESSION_COLUMNS, |n| format!("${n}"));
        let found = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(&sql)
                    .bind(ts(from))
                    .bind(ts(to))
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        found.iter().map(rows::session).collect()
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(open);
        vec![PoolStats {
            pool: "main",
            open,
            in_use: open.saturating_sub(idle),
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn purge_ended_sessions(&self, before: PurgeBefore) -> StoreResult<u64> {
        // Each arm walks its own index and stops after one batch, so a large backlog
        // costs at most three batches of index entries per call; UNION counts a session
        // that ended several ways once. Refresh tokens go by ON DELETE CASCADE.
        let done = self
            .lease()
            .await?
            .read(async |conn| {
                sqlx::query(
                    "DELETE FROM sessions WHERE id IN (
                 (SELECT id FROM sessions WHERE revoked_at < $1 LIMIT $3)
                 UNION (SELECT id FROM sessions WHERE expires_at < $1 LIMIT $3)
                 UNION (SELECT id FROM sessions WHERE last_active_at < $2 LIMIT $3)
                 LIMIT $3)",
                )
                .bind(ts(before.ended_before))
                .bind(ts(before.idle_before))
                .bind(i64::from(before.batch_size))
                .execute(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected())
    }
}
