//! The PostgreSQL write transaction: READ COMMITTED plus row locks. Statements that both
//! the pool (reads) and a transaction need are written once here, generic over the
//! executor.
//!
//! Every `lock_*` method takes `FOR UPDATE` on the row it reads, so a check-and-set that
//! starts with it (session limits after `lock_user`, rotation after `lock_refresh_token`)
//! cannot interleave with another one on the same row. Each later statement of a READ
//! COMMITTED transaction takes a fresh snapshot, so once the lock is granted it sees
//! everything the previous holder committed.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::otp::OtpChallenge;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::revocation::RevocationFact;
use sessiond_core::{
    AuthMethod, Device, Email, RefreshTokenId, RevokeReason, Session, SessionId, TokenHash, User,
    UserId,
};
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use super::lease::Lease;
use super::rows::{self, SESSION_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS, db_error, ts};
use crate::{
    LiveWindow, NewEvent, NewRefreshToken, NewSession, NewUser, StoreError, StoreResult, Tx,
    UserChanges, UserProfile,
};

/// A transaction on a leased connection. BEGIN, COMMIT and ROLLBACK are sent here rather
/// than by sqlx's `Transaction`, so that the connection stays ours to close when a
/// statement does not finish (see [`Lease`]).
pub(super) struct PostgresTx {
    /// `None` once committed or handed to the rollback task.
    lease: Option<Lease>,
}

impl PostgresTx {
    /// Begins a READ COMMITTED transaction on `lease`. Dropped before it is committed
    /// (an error, a cancelled request, a failed BEGIN), the transaction is rolled back.
    pub(super) async fn begin(lease: Lease) -> StoreResult<Self> {
        let mut tx = Self { lease: Some(lease) };
        tx.run(async |conn| execute(conn, "BEGIN ISOLATION LEVEL READ COMMITTED").await)
            .await?;
        Ok(tx)
    }

    /// Runs one statement of the transaction within the deadline.
    async fn run<T>(
        &mut self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        match self.lease.as_mut() {
            Some(lease) => lease.run(statement).await,
            None => Err(StoreError::Unavailable("the transaction has ended".into())),
        }
    }
}

impl Drop for PostgresTx {
    fn drop(&mut self) {
        let Some(mut lease) = self.lease.take() else {
            return;
        };
        // A lease whose statement did not finish closes its connection, which ends the
        // transaction on the server; anything else is rolled back off the request path.
        if lease.is_unfinished() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = lease
                        .run(async |conn| execute(conn, "ROLLBACK").await)
                        .await;
                });
            }
            Err(_) => lease.discard(),
        }
    }
}

async fn execute(conn: &mut PgConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(drop)
        .map_err(db_error)
}

/// Whether a read takes row locks (inside a transaction) or not (a plain read).
#[derive(Clone, Copy)]
pub(super) enum Lock {
    None,
    ForUpdate,
}

impl Lock {
    /// What to append to a SELECT of one table's rows.
    fn clause(self) -> &'static str {
        match self {
            Lock::None => "",
            Lock::ForUpdate => " FOR UPDATE",
        }
    }
}

pub(super) async fn session_with_user<'e, E>(
    exec: E,
    id: SessionId,
    lock: Lock,
) -> StoreResult<Option<(Session, Option<User>)>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    // `OF s`: lock the session only; the user row is locked by `lock_user` when needed
    // (and FOR UPDATE cannot apply to the nullable side of an outer join anyway).
    let suffix = match lock {
        Lock::None => "",
        Lock::ForUpdate => " FOR UPDATE OF s",
    };
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s \
         LEFT JOIN users u ON u.id = s.user_id WHERE s.id = $1{suffix}"
    );
    let row = sqlx::query(&sql)
        .bind(id.as_uuid())
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| Ok((rows::session(&r)?, rows::joined_user(&r)?)))
        .transpose()
}

/// Oldest first (ties by id, as SQLite orders its text ids).
pub(super) async fn live_sessions_for_user<'e, E>(
    exec: E,
    user: UserId,
    window: LiveWindow,
) -> StoreResult<Vec<Session>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s \
         WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
         AND s.last_active_at > $3 \
         ORDER BY s.created_at, s.id"
    );
    let found = sqlx::query(&sql)
        .bind(user.as_uuid())
        .bind(ts(window.now))
        .bind(ts(window.idle_cutoff))
        .fetch_all(exec)
        .await
        .map_err(db_error)?;
    found.iter().map(rows::session).collect()
}

/// Whether the refresh token has been rotated (unknown ones have not).
pub(super) async fn refresh_token_is_rotated(
    conn: &mut PgConnection,
    id: RefreshTokenId,
) -> StoreResult<bool> {
    let rotated: Option<bool> =
        sqlx::query_scalar("SELECT rotated_at IS NOT NULL FROM refresh_tokens WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
    Ok(rotated == Some(true))
}

pub(super) async fn refresh_token_by_hash<'e, E>(
    exec: E,
    hash: &TokenHash,
    lock: Lock,
) -> StoreResult<Option<StoredRefreshToken>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let suffix = lock.clause();
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1{suffix}");
    let row = sqlx::query(&sql)
        .bind(&hash.as_bytes()[..])
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| rows::refresh_token(&r)).transpose()
}

pub(super) async fn user<'e, E>(exec: E, id: UserId, lock: Lock) -> StoreResult<Option<User>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let suffix = lock.clause();
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1{suffix}");
    let row = sqlx::query(&sql)
        .bind(id.as_uuid())
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| rows::joined_user(&r))
        .transpose()
        .map(Option::flatten)
}

#[async_trait]
impl Tx for PostgresTx {
    async fn insert_user(&mut self, new: &NewUser) -> StoreResult<User> {
        self.run(async |conn| {
            sqlx::query(
                "INSERT INTO users (id, email, name, password_hash, active, email_verified, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, true, $5, $6, $6)",
            )
            .bind(new.id.as_uuid())
            .bind(new.email.as_ref().map(|e| e.as_str()))
            .bind(new.name.as_deref())
            .bind(new.password_hash.as_deref())
            .bind(new.email_verified)
            .bind(ts(new.created_at))
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(User {
            id: new.id,
            email: new.email.clone(),
            name: new.name.clone(),
            active: true,
            email_verified: new.email_verified,
            created_at: new.created_at,
            mobile: None,
            profile: None,
        })
    }

    async fn set_password_hash(
        &mut self,
        id: UserId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = self
            .run(async |conn| {
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(ts(at))
                    .bind(id.as_uuid())
                    .execute(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_user(
        &mut self,
        id: UserId,
        changes: &UserChanges,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        // A NULL parameter keeps its column; the name's own NULL (clear it) is told
        // apart by $2.
        self.run(async |conn| {
            sqlx::query(
                "UPDATE users SET \
                   name = CASE WHEN $2 THEN $1 ELSE name END, \
                   email = COALESCE($3, email), \
                   email_verified = COALESCE($4, email_verified), \
                   updated_at = $5 \
                 WHERE id = $6",
            )
            .bind(changes.name.clone().flatten())
            .bind(changes.name.is_some())
            .bind(changes.email.as_ref().map(|e| e.as_str()))
            .bind(changes.email_verified)
            .bind(ts(at))
            .bind(id.as_uuid())
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        self.run(async |conn| user(conn, id, Lock::None).await)
            .await
    }

    async fn delete_user(&mut self, id: UserId) -> StoreResult<bool> {
        let deleted = self
            .run(async |conn| {
                // One statement, so it is one round trip; refresh tokens go with their
                // sessions (ON DELETE CASCADE).
                sqlx::query(
                    // Live and ended sessions apart, each through its partial index.
                    "WITH gone_live AS (DELETE FROM sessions \
                        WHERE user_id = $1 AND revoked_at IS NULL), \
                     gone_ended AS (DELETE FROM sessions \
                        WHERE user_id = $1 AND revoked_at IS NOT NULL), \
                     gone_identities AS (DELETE FROM identities WHERE user_id = $1), \
                     gone_devices AS (UPDATE events SET data = data - 'device' \
                        WHERE user_id = $1 AND data ? 'device'), \
                     gone_codes AS (DELETE FROM otp_challenges WHERE user_id = $1 \
                        OR email = (SELECT email FROM users WHERE id = $1)) \
                     SELECT 1",
                )
                .bind(id.as_uuid())
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn lock_user(&mut self, id: UserId) -> StoreResult<Option<User>> {
        // Concurrent logins of one user queue here until this transaction ends.
        self.run(async |conn| user(conn, id, Lock::ForUpdate).await)
            .await
    }

    async fn set_user_active(
        &mut self,
        id: UserId,
        active: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let sql = format!(
            "UPDATE users u SET active = $1, updated_at = $2 WHERE u.id = $3 RETURNING {USER_COLUMNS}"
        );
        let row = self
            .run(async |conn| {
                sqlx::query(&sql)
                    .bind(active)
                    .bind(ts(at))
                    .bind(id.as_uuid())
                    .fetch_optional(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        row.map(|r| rows::joined_user(&r))
            .transpose()
            .map(Option::flatten)
    }

    async fn lock_session(
        &mut self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        self.run(async |conn| session_with_user(conn, id, Lock::ForUpdate).await)
            .await
    }

    async fn live_sessions_for_user(
        &mut self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>> {
        self.run(async |conn| live_sessions_for_user(conn, user, window).await)
            .await
    }

    async fn insert_session(&mut self, s: &NewSession) -> StoreResult<()> {
        let data = s.data.as_ref().map(|d| d.to_string());
        self.run(async |conn| {
            sqlx::query(
                "INSERT INTO sessions (id, user_id, auth_method, created_at, last_active_at, \
             expires_at, device_id, user_agent, ip, label, data) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10::json)",
            )
            .bind(s.id.as_uuid())
            .bind(s.user_id.map(|u| u.as_uuid()))
            .bind(s.auth_method.as_string())
            .bind(ts(s.created_at))
            .bind(ts(s.expires_at))
            .bind(s.device.device_id.as_deref())
            .bind(s.device.user_agent.as_deref())
            .bind(s.device.ip.as_deref())
            .bind(s.device.label.as_deref())
            .bind(data)
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn bind_session(
        &mut self,
        id: SessionId,
        user: UserId,
        method: &AuthMethod,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query(
                "UPDATE sessions SET user_id = $1, auth_method = $2, \
             last_active_at = GREATEST(last_active_at, $3) WHERE id = $4",
            )
            .bind(user.as_uuid())
            .bind(method.as_string())
            .bind(ts(at))
            .bind(id.as_uuid())
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn set_last_active(&mut self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()> {
        self.run(async |conn| {
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

    async fn set_session_data(
        &mut self,
        id: SessionId,
        data: &serde_json::Value,
    ) -> StoreResult<bool> {
        let done = self
            .run(async |conn| {
                sqlx::query("UPDATE sessions SET data = $1::json WHERE id = $2")
                    .bind(data.to_string())
                    .bind(id.as_uuid())
                    .execute(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_sessions(
        &mut self,
        targets: &[SessionId],
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Uuid> = targets.iter().map(SessionId::as_uuid).collect();
        let done: Vec<Uuid> = self
            .run(async |conn| {
                sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = ANY($3) AND revoked_at IS NULL RETURNING id",
                )
                .bind(ts(at))
                .bind(reason.as_str())
                .bind(&wanted)
                .fetch_all(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        // Report them in the order asked, each once, as the SQLite backend does.
        let mut done: HashSet<Uuid> = done.into_iter().collect();
        Ok(targets
            .iter()
            .filter(|id| done.remove(&id.as_uuid()))
            .copied()
            .collect())
    }

    async fn revoke_user_sessions(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>> {
        let revoked: Vec<Uuid> = self
            .run(async |conn| {
                sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL AND id IS DISTINCT FROM $4 RETURNING id",
                )
                .bind(ts(at))
                .bind(reason.as_str())
                .bind(user.as_uuid())
                .bind(keep.map(|k| k.as_uuid()))
                .fetch_all(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(revoked.into_iter().map(SessionId::from_uuid).collect())
    }

    async fn lock_refresh_token(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        self.run(async |conn| refresh_token_by_hash(conn, hash, Lock::ForUpdate).await)
            .await
    }

    async fn lock_refresh_token_and_session(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(StoredRefreshToken, Session, Option<User>)>> {
        // The session row is the one lock that covers its token family, and every path
        // takes it before any token row. Taking the token first (one joined `FOR UPDATE
        // OF t, s`) deadlocked the two-tabs race: the parent's replay held the parent and
        // the session and went on to lock the child, which the child's rotation held
        // while waiting for the session. A token never changes session, so finding its
        // session id needs no lock.
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s \
             LEFT JOIN users u ON u.id = s.user_id \
             WHERE s.id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
             FOR UPDATE OF s"
        );
        let Some(row) = self
            .run(async |conn| {
                sqlx::query(&sql)
                    .bind(&hash.as_bytes()[..])
                    .fetch_optional(conn)
                    .await
                    .map_err(db_error)
            })
            .await?
        else {
            return Ok(None);
        };
        let (session, user) = (rows::session(&row)?, rows::joined_user(&row)?);
        // A fresh snapshot, taken with the session locked: it sees every rotation that
        // the previous holder of the lock committed.
        let token = self
            .run(async |conn| refresh_token_by_hash(conn, hash, Lock::ForUpdate).await)
            .await?;
        Ok(token.map(|token| (token, session, user)))
    }

    async fn record_revocations(
        &mut self,
        facts: &[RevocationFact],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.run(async |conn| super::revocations::record(conn, facts, at).await)
            .await
    }

    async fn refresh_token_is_rotated(&mut self, id: RefreshTokenId) -> StoreResult<bool> {
        self.run(async |conn| refresh_token_is_rotated(conn, id).await)
            .await
    }

    async fn insert_refresh_token(&mut self, t: &NewRefreshToken) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(t.id.as_uuid())
            .bind(t.session_id.as_uuid())
            .bind(&t.hash.as_bytes()[..])
            .bind(ts(t.created_at))
            .bind(ts(t.expires_at))
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &mut self,
        presented: RefreshTokenId,
        successor: &NewRefreshToken,
        sealed: &[u8],
    ) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query(
                "WITH successor AS ( \
                 INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)) \
             UPDATE refresh_tokens SET rotated_at = $4, successor_id = $1, successor_sealed = $6 \
             WHERE id = $7",
            )
            .bind(successor.id.as_uuid())
            .bind(successor.session_id.as_uuid())
            .bind(&successor.hash.as_bytes()[..])
            .bind(ts(successor.created_at))
            .bind(ts(successor.expires_at))
            .bind(sealed)
            .bind(presented.as_uuid())
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn delete_refresh_tokens(&mut self, session: SessionId) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                .bind(session.as_uuid())
                .execute(conn)
                .await
                .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn insert_otp_challenge(&mut self, c: &OtpChallenge, device: &Device) -> StoreResult<()> {
        let device =
            serde_json::to_string(device).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        self.run(async |conn| sqlx::query(
            "INSERT INTO otp_challenges (id, email, code_hash, created_at, expires_at, attempts, \
             consumed_at, device, purpose, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&c.id)
        .bind(&c.email)
        .bind(&c.code_hash.as_bytes()[..])
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .bind(i32::try_from(c.attempts).unwrap_or(i32::MAX))
        .bind(c.consumed_at.map(ts))
        .bind(device)
        .bind(c.purpose.as_str())
        .bind(c.user_id.map(|u| u.as_uuid()))
        .execute(conn)
        .await
        .map_err(db_error))
        .await?;
        Ok(())
    }

    async fn lock_otp_challenge(
        &mut self,
        id: &str,
    ) -> StoreResult<Option<(OtpChallenge, Device)>> {
        let row = self
            .run(async |conn| {
                sqlx::query(
            "SELECT id, purpose, email, user_id, code_hash, created_at, expires_at, attempts, \
             consumed_at, device FROM otp_challenges WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)
            })
            .await?;
        row.map(|r| rows::otp_challenge(&r)).transpose()
    }

    async fn record_otp_failure(&mut self, id: &str) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query("UPDATE otp_challenges SET attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(conn)
                .await
                .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn consume_otp_challenge(&mut self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query(
                "UPDATE otp_challenges SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL",
            )
            .bind(ts(at))
            .bind(id)
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn delete_otp_challenge(&mut self, id: &str) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query("DELETE FROM otp_challenges WHERE id = $1")
                .bind(id)
                .execute(conn)
                .await
                .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn record_events(&mut self, events: &[NewEvent]) -> StoreResult<()> {
        self.run(async |conn| super::outbox::record(conn, events).await)
            .await
    }

    async fn spend_token(
        &mut self,
        fingerprint: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One statement: two instances racing on one token cannot both win.
        let done = self
            .run(async |conn| {
                sqlx::query(
                    "INSERT INTO spent_tokens (fingerprint, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (fingerprint) DO NOTHING",
                )
                .bind(fingerprint)
                .bind(ts(expires_at))
                .execute(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn identity_user(
        &mut self,
        provider: &str,
        external_id: &str,
    ) -> StoreResult<Option<UserId>> {
        let found: Option<Uuid> = self
            .run(async |conn| {
                sqlx::query_scalar(
            "SELECT user_id FROM identities WHERE provider = $1 AND external_id = $2 FOR UPDATE",
        )
        .bind(provider)
        .bind(external_id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)
            })
            .await?;
        Ok(found.map(UserId::from_uuid))
    }

    async fn insert_identity(
        &mut self,
        provider: &str,
        external_id: &str,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.run(async |conn| sqlx::query("INSERT INTO identities (provider, external_id, user_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(provider)
            .bind(external_id)
            .bind(user.as_uuid())
            .bind(ts(at))
            .execute(conn)
            .await
            .map_err(db_error))
            .await?;
        Ok(())
    }

    async fn user_id_by_email(&mut self, email: &Email) -> StoreResult<Option<UserId>> {
        let found: Option<Uuid> = self
            .run(async |conn| {
                sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(found.map(UserId::from_uuid))
    }

    async fn set_user_email(&mut self, id: UserId, email: &Email) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                .bind(email.as_str())
                .bind(id.as_uuid())
                .execute(conn)
                .await
                .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn update_user_profile(
        &mut self,
        id: UserId,
        profile: &UserProfile,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        self.run(async |conn| {
            sqlx::query(
            "UPDATE users SET name = $1, mobile = $2, profile = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(profile.name.as_deref())
        .bind(profile.mobile.as_deref())
        .bind(profile.profile.as_ref().map(|p| p.to_string()))
        .bind(ts(at))
        .bind(id.as_uuid())
        .execute(conn)
        .await
        .map_err(db_error)
        })
        .await?;
        self.run(async |conn| user(conn, id, Lock::None).await)
            .await
    }

    async fn insert_signing_key(&mut self, key: &SigningKey) -> StoreResult<()> {
        self.run(async |conn| {
            sqlx::query(
                "INSERT INTO signing_keys (kid, private_pkcs8, created_at, retired_at) \
             VALUES ($1, $2, $3, $4)",
            )
            .bind(&key.kid)
            .bind(&key.pkcs8)
            .bind(ts(key.created_at))
            .bind(key.retired_at.map(ts))
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn retire_signing_keys(&mut self, at: DateTime<Utc>) -> StoreResult<u64> {
        let done = self
            .run(async |conn| {
                sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1")
                    .bind(ts(at))
                    .execute(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.run(async |conn| execute(conn, "COMMIT").await).await?;
        // Committed: nothing is left to roll back, and the connection goes back to the
        // pool as it is.
        self.lease = None;
        Ok(())
    }
}
