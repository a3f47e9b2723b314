//! The embedded default: SQLite in WAL mode, in the data folder.
//!
//! Writers are serialised through exactly one connection ([`writer`]) that opens every
//! transaction with `BEGIN IMMEDIATE`, so check-and-set sequences (refresh rotation,
//! session limits) cannot interleave, even with another process such as
//! `sessiond keys rotate` on the same file. Readers use their own pool (sqlx) and never
//! wait for writers.

mod outbox;
mod revocations;
mod rows;
mod tx;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::otp::OtpPurpose;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::revocation::{FeedBounds, Revocation};
use sessiond_core::{Email, RefreshTokenId, Session, SessionId, TokenHash, User, UserId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use self::rows::{USER_COLUMNS, db_error, ms};
use self::writer::Writer;
use crate::{
    Delivery, DeliveryClaim, DeliveryOutcome, EndingBy, EventQuery, Identity, LiveWindow,
    PoolStats, PurgeBefore, Store, StoreError, StoreResult, StoredEvent, Tx, UserCredentials,
    UserQuery, WebhookBacklog,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/sqlite/migrations");

pub struct SqliteStore {
    reader: SqlitePool,
    writer: Writer,
    /// For migrations, which sqlx runs on a connection of its own.
    options: SqliteConnectOptions,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::with_options(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens from a `sqlite:` URL such as `sqlite:///var/lib/sessiond/db.sqlite`.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad SQLite URL: {e}")))?;
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> StoreResult<Self> {
        let busy_timeout = Duration::from_secs(5);
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last transactions on power loss, never
            // integrity; FULL would cost an fsync per refresh.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let path = options.get_filename().to_owned();
        if path.as_os_str() == ":memory:" {
            // The writer and the readers are separate connections: they must share a file.
            return Err(StoreError::Unavailable(
                "an in-memory SQLite database is not supported; give a file".into(),
            ));
        }
        // Connecting the readers creates the file and puts it in WAL mode.
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            // A ping would be a round trip to the connection's thread on every read, for
            // a file that cannot hang up.
            .test_before_acquire(false)
            .after_release(crate::reusable)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        let writer = Writer::open(&path, busy_timeout)?;
        Ok(Self {
            reader,
            writer,
            options,
        })
    }
}

/// A prefix with at most this many matching emails and names is searched through its
/// indexes; one with more, by walking the users in id order (see `list_users`).
const SPARSE_PREFIX: i64 = 2000;

impl SqliteStore {
    /// Whether at most [`SPARSE_PREFIX`] emails and names start with `prefix` (counted in
    /// the indexes, and no further than that).
    async fn prefix_is_sparse(&self, prefix: &str, upper: &str) -> StoreResult<bool> {
        let found: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM users \
                     WHERE email >= ?1 AND email < ?2 LIMIT ?3)) \
                  + (SELECT count(*) FROM (SELECT 1 FROM users WHERE name IS NOT NULL \
                     AND lower(name) >= ?1 AND lower(name) < ?2 LIMIT ?3))",
        )
        .bind(prefix)
        .bind(upper)
        .bind(SPARSE_PREFIX + 1)
        .fetch_one(&self.reader)
        .await
        .map_err(db_error)?;
        Ok(found <= SPARSE_PREFIX)
    }

    /// The one user `sql` selects (its columns and `password_hash`) by `key`.
    async fn credentials(&self, sql: &str, key: String) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
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
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        let conn = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone())
            .await
            .map_err(db_error)?;
        let migrated = MIGRATOR
            .run(&conn)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()));
        conn.close().await;
        migrated
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        Ok(Box::new(tx::SqliteTx::new(self.writer.begin().await?)))
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.map(|r| rows::joined_user(&r))
            .transpose()
            .map(Option::flatten)
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = ?");
        self.credentials(&sql, email.as_str().to_owned()).await
    }

    async fn user_credentials(&self, id: UserId) -> StoreResult<Option<UserCredentials>> {
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.id = ?");
        self.credentials(&sql, id.to_string()).await
    }

    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
        // Only the filters given are in the statement: a catch-all `(? IS NULL OR …)`
        // form would make SQLite scan every user by id for an exact address. The prefix
        // is two range scans, of the lower-cased email (its UNIQUE index) and of the
        // lower-cased name (its expression index), whose ids come out sorted: BINARY
        // collation compares UTF-8 bytes, and no character sorts above U+10FFFF.
        let mut conditions = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        if let Some(email) = &q.email {
            texts.push(email.as_str().to_owned());
            conditions.push(format!("u.email = ?{}", texts.len()));
        }
        let mut dense = false;
        if let Some(prefix) = &q.prefix {
            let upper = format!("{prefix}\u{10FFFF}");
            dense = !self.prefix_is_sparse(prefix, &upper).await?;
            texts.push(prefix.clone());
            texts.push(upper);
            let (low, high) = (texts.len() - 1, texts.len());
            conditions.push(if dense {
                // Many matches: walking the users by id finds a page of them soonest.
                // The unary `+` keeps SQLite (which has no statistics) off the prefix
                // indexes.
                format!(
                    "((+u.email >= ?{low} AND +u.email < ?{high}) OR (u.name IS NOT NULL \
                     AND +lower(u.name) >= ?{low} AND +lower(u.name) < ?{high}))"
                )
            } else {
                // Few: collect them from the two indexes.
                format!(
                    "u.id IN (SELECT id FROM users WHERE email >= ?{low} AND email < ?{high} \
                     UNION SELECT id FROM users WHERE name IS NOT NULL \
                     AND lower(name) >= ?{low} AND lower(name) < ?{high})"
                )
            });
        }
        match q.after {
            Some(after) => {
                texts.push(after.to_string());
                conditions.push(format!("u.id > ?{}", texts.len()));
            }
            // A range on the id (every id is above '') steers SQLite, which keeps no
            // statistics, to walk the id index in order and stop at a page.
            None if dense => conditions.push("u.id > ''".to_owned()),
            None => {}
        }
        if let Some(active) = q.active {
            conditions.push(format!("u.active = {}", i32::from(active)));
        }
        if let Some(verified) = q.email_verified {
            conditions.push(format!("u.email_verified = {}", i32::from(verified)));
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
        let mut query = sqlx::query(&sql);
        for text in &texts {
            query = query.bind(text.as_str());
        }
        let found = query.fetch_all(&self.reader).await.map_err(db_error)?;
        found
            .iter()
            .filter_map(|r| rows::joined_user(r).transpose())
            .collect()
    }

    async fn identities_of_user(&self, id: UserId) -> StoreResult<Vec<Identity>> {
        let found = sqlx::query(
            "SELECT provider, external_id, created_at FROM identities \
             WHERE user_id = ? ORDER BY created_at, provider",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(db_error)?;
        found
            .iter()
            .map(|r| {
                Ok(Identity {
                    provider: sqlx::Row::try_get(r, "provider").map_err(db_error)?,
                    external_id: sqlx::Row::try_get(r, "external_id").map_err(db_error)?,
                    created_at: rows::time(sqlx::Row::try_get(r, "created_at").map_err(db_error)?)?,
                })
            })
            .collect()
    }

    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        tx::session_with_user(&self.reader, id).await
    }

    async fn ended_sessions_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {} FROM sessions s WHERE s.user_id = ?1 AND s.revoked_at IS NOT NULL \
             ORDER BY s.revoked_at DESC LIMIT ?2",
            rows::SESSION_COLUMNS
        );
        let found = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        found.iter().map(rows::session).collect()
    }

    async fn live_sessions_for_user(
        &self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>> {
        let mut sessions = tx::live_sessions_for_user(&self.reader, user, window).await?;
        sessions.reverse();
        Ok(sessions)
    }

    async fn session_data(&self, id: SessionId) -> StoreResult<Option<serde_json::Value>> {
        let data: Option<Option<String>> =
            sqlx::query_scalar("SELECT data FROM sessions WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
        match data {
            None => Ok(None),
            Some(None) => Ok(Some(serde_json::json!({}))),
            Some(Some(text)) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("session data: {e}"))),
        }
    }

    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()> {
        self.writer
            .run(|c| {
                c.prepare_cached(tx::TOUCH_SESSION)?
                    .execute(rusqlite::params![ms(at), id.to_string()])
            })
            .await?;
        Ok(())
    }

    async fn refresh_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        tx::refresh_token_by_hash(&self.reader, hash).await
    }

    async fn refresh_token_is_rotated(&self, id: RefreshTokenId) -> StoreResult<bool> {
        let rotated: Option<bool> =
            sqlx::query_scalar("SELECT rotated_at IS NOT NULL FROM refresh_tokens WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
        Ok(rotated == Some(true))
    }

    async fn revocations_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Revocation>> {
        revocations::after(&self.reader, after, limit).await
    }

    async fn revocation_bounds(&self) -> StoreResult<FeedBounds> {
        revocations::bounds(&self.reader).await
    }

    async fn live_revocations(&self, page: &crate::LivePage) -> StoreResult<Vec<Revocation>> {
        revocations::live(&self.reader, page).await
    }

    async fn purge_revocations(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        revocations::purge(&self.writer, before).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows = sqlx::query("SELECT kid, private_pkcs8, created_at, retired_at FROM signing_keys ORDER BY created_at")
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        rows.iter().map(rows::signing_key).collect()
    }

    async fn latest_otp_challenge_at(
        &self,
        email: &str,
        purpose: OtpPurpose,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(created_at) FROM otp_challenges WHERE email = ? AND purpose = ?",
        )
        .bind(email)
        .bind(purpose.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(db_error)?;
        latest.map(rows::time).transpose()
    }

    async fn purge_otp_challenges(
        &self,
        before: DateTime<Utc>,
        batch_size: u32,
    ) -> StoreResult<u64> {
        let deleted = self
            .writer
            .run_blocking(move |c| {
                c.prepare_cached(
                    "DELETE FROM otp_challenges WHERE id IN \
                     (SELECT id FROM otp_challenges WHERE expires_at < ?1 LIMIT ?2)",
                )?
                .execute(rusqlite::params![ms(before), i64::from(batch_size)])
            })
            .await?;
        Ok(deleted as u64)
    }

    async fn purge_spent_tokens(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64> {
        let deleted = self
            .writer
            .run_blocking(move |c| {
                c.prepare_cached(
                    "DELETE FROM spent_tokens WHERE fingerprint IN \
                     (SELECT fingerprint FROM spent_tokens WHERE expires_at < ?1 LIMIT ?2)",
                )?
                .execute(rusqlite::params![ms(before), i64::from(batch_size)])
            })
            .await?;
        Ok(deleted as u64)
    }

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<StoredEvent>> {
        outbox::list(&self.reader, query).await
    }

    async fn purge_events(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64> {
        outbox::purge(&self.writer, before, batch_size).await
    }

    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> StoreResult<Vec<Delivery>> {
        outbox::claim(&self.writer, claim).await
    }

    async fn finish_delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()> {
        outbox::finish(&self.writer, endpoint, event_seq, outcome).await
    }

    async fn disable_endpoint(
        &self,
        endpoint: &str,
        url: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        outbox::disable(&self.writer, endpoint, url, at).await
    }

    async fn disabled_endpoints(&self) -> StoreResult<Vec<(String, String)>> {
        outbox::disabled(&self.reader).await
    }

    async fn webhook_backlog(&self) -> StoreResult<Vec<WebhookBacklog>> {
        outbox::backlog(&self.reader).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.reader)
            .await
            .map_err(db_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn count_live_sessions(&self, window: LiveWindow) -> StoreResult<u64> {
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sessions \
             WHERE revoked_at IS NULL AND expires_at > ?1 AND last_active_at > ?2",
        )
        .bind(ms(window.now))
        .bind(ms(window.idle_cutoff))
        .fetch_one(&self.reader)
        .await
        .map_err(db_error)?;
        Ok(live.try_into().unwrap_or(0))
    }

    async fn unrevoked_sessions_ending(
        &self,
        by: EndingBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Session>> {
        let sql = by.statement(rows::SESSION_COLUMNS, |n| format!("?{n}"));
        let found = sqlx::query(&sql)
            .bind(ms(from))
            .bind(ms(to))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        found.iter().map(rows::session).collect()
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let open = self.reader.size();
        let idle = u32::try_from(self.reader.num_idle()).unwrap_or(open);
        vec![
            PoolStats {
                pool: "reader",
                open,
                in_use: open.saturating_sub(idle),
                max: self.reader.options().get_max_connections(),
            },
            PoolStats {
                pool: "writer",
                open: 1,
                in_use: u32::from(self.writer.is_busy()),
                max: 1,
            },
        ]
    }

    async fn purge_ended_sessions(&self, before: PurgeBefore) -> StoreResult<u64> {
        // One way of ending per batch, each a range scan of its own index with its own
        // LIMIT: a UNION of the three would collect and sort every ended id before
        // limiting, which made each batch cost as much as the whole backlog.
        let arms = [
            ("revoked_at", before.ended_before),
            ("expires_at", before.ended_before),
            ("last_active_at", before.idle_before),
        ];
        let deleted = self
            .writer
            .run_blocking(move |c| {
                for (column, cutoff) in arms {
                    let sql = format!(
                        "DELETE FROM sessions WHERE id IN \
                         (SELECT id FROM sessions WHERE {column} < ?1 LIMIT ?2)"
                    );
                    let deleted = c
                        .prepare_cached(&sql)?
                        .execute(rusqlite::params![ms(cutoff), i64::from(before.batch_size)])?;
                    if deleted > 0 {
                        return Ok(deleted);
                    }
                }
                Ok(0)
            })
            .await?;
        Ok(deleted as u64)
    }
}
