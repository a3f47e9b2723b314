//! The SQLite write transaction, run on the synchronous writer ([`super::writer`]), and
//! the reads the pool shares with it: their SQL is written once here, and rows of both
//! drivers decode with the same code ([`rows`]).

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
use std::sync::LazyLock;

use rusqlite::{OptionalExtension, params};
use sqlx::Sqlite;

use super::rows::{
    self, JOINED_TOKEN_COLUMNS, SESSION_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS, db_error, ms,
};
use super::writer::{WriteTx, write_error};
use crate::revocation_rows::FactRow;
use crate::{
    LiveWindow, NewEvent, NewRefreshToken, NewSession, NewUser, StoreResult, Tx, UserChanges,
    UserProfile,
};

static SESSION_WITH_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s \
         LEFT JOIN users u ON u.id = s.user_id WHERE s.id = ?"
    )
});

/// Oldest first.
static LIVE_SESSIONS_FOR_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s \
         WHERE s.user_id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2 AND s.last_active_at > ?3 \
         ORDER BY s.created_at, s.id"
    )
});

static REFRESH_TOKEN_BY_HASH: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = ?"));

static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?"));

static REFRESH_TOKEN_AND_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {JOINED_TOKEN_COLUMNS}, {SESSION_COLUMNS}, {USER_COLUMNS} \
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         LEFT JOIN users u ON u.id = s.user_id WHERE t.token_hash = ?"
    )
});

/// Activity only moves forward: a late write never sets an older time.
pub(super) const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_active_at = ?1 WHERE id = ?2 AND last_active_at < ?1";

const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens \
     (id, session_id, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";

const OTP_CHALLENGE: &str = "SELECT id, purpose, email, user_id, code_hash, created_at, \
     expires_at, attempts, consumed_at, device FROM otp_challenges WHERE id = ?";

pub(super) struct SqliteTx {
    tx: WriteTx,
}

impl SqliteTx {
    pub(super) fn new(tx: WriteTx) -> Self {
        Self { tx }
    }

    /// Runs `f` with a prepared (cached) statement of `sql`.
    fn with<T>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        let mut statement = self.tx.conn().prepare_cached(sql).map_err(write_error)?;
        f(&mut statement).map_err(write_error)
    }

    /// Executes one statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
        self.with(sql, |s| s.execute(params))
    }

    /// The first row of a query, decoded.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.decoded(sql, params, Some(1), decode)?.pop())
    }

    /// Every row of a query, decoded.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.decoded(sql, params, None, decode)
    }

    /// The rows of a query (at most `limit`), decoded.
    fn decoded<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        limit: Option<usize>,
        mut decode: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut statement = self.tx.conn().prepare_cached(sql).map_err(write_error)?;
        let mut found = statement.query(params).map_err(write_error)?;
        let mut out = Vec::new();
        while limit.is_none_or(|limit| out.len() < limit) {
            let Some(row) = found.next().map_err(write_error)? else {
                break;
            };
            out.push(decode(row)?);
        }
        Ok(out)
    }

    fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.row(&USER_BY_ID, [id.to_string()], |r| rows::joined_user(r))
            .map(Option::flatten)
    }

    fn session_with_user(&self, id: SessionId) -> StoreResult<Option<(Session, Option<User>)>> {
        self.row(&SESSION_WITH_USER, [id.to_string()], |r| {
            Ok((rows::session(r)?, rows::joined_user(r)?))
        })
    }
}

pub(super) async fn session_with_user<'e, E>(
    exec: E,
    id: SessionId,
) -> StoreResult<Option<(Session, Option<User>)>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let row = sqlx::query(SESSION_WITH_USER.as_str())
        .bind(id.to_string())
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| Ok((rows::session(&r)?, rows::joined_user(&r)?)))
        .transpose()
}

/// Oldest first.
pub(super) async fn live_sessions_for_user<'e, E>(
    exec: E,
    user: UserId,
    window: LiveWindow,
) -> StoreResult<Vec<Session>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let found = sqlx::query(LIVE_SESSIONS_FOR_USER.as_str())
        .bind(user.to_string())
        .bind(ms(window.now))
        .bind(ms(window.idle_cutoff))
        .fetch_all(exec)
        .await
        .map_err(db_error)?;
    found.iter().map(rows::session).collect()
}

pub(super) async fn refresh_token_by_hash<'e, E>(
    exec: E,
    hash: &TokenHash,
) -> StoreResult<Option<StoredRefreshToken>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let row = sqlx::query(REFRESH_TOKEN_BY_HASH.as_str())
        .bind(&hash.as_bytes()[..])
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| rows::refresh_token(&r)).transpose()
}

fn ids(raw: Vec<String>) -> StoreResult<Vec<SessionId>> {
    raw.iter().map(|s| rows::parse("session id", s)).collect()
}

#[async_trait]
impl Tx for SqliteTx {
    async fn insert_user(&mut self, new: &NewUser) -> StoreResult<User> {
        self.execute(
            "INSERT INTO users (id, email, name, password_hash, active, email_verified, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6)",
            params![
                new.id.to_string(),
                new.email.as_ref().map(Email::as_str),
                new.name.as_deref(),
                new.password_hash.as_deref(),
                new.email_verified,
                ms(new.created_at),
            ],
        )?;
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

    async fn lock_user(&mut self, id: UserId) -> StoreResult<Option<User>> {
        // The single writer already excludes every other writer.
        self.user(id)
    }

    async fn set_user_active(
        &mut self,
        id: UserId,
        active: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        self.execute(
            "UPDATE users SET active = ?1, updated_at = ?2 WHERE id = ?3",
            params![active, ms(at), id.to_string()],
        )?;
        self.user(id)
    }

    async fn set_password_hash(
        &mut self,
        id: UserId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let changed = self.execute(
            "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
            params![hash, ms(at), id.to_string()],
        )?;
        Ok(changed == 1)
    }

    async fn update_user(
        &mut self,
        id: UserId,
        changes: &UserChanges,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        // Each column keeps its value where its parameter is NULL; the name's own NULL
        // (clear it) is told apart by ?2.
        self.execute(
            "UPDATE users SET \
               name = CASE WHEN ?2 THEN ?1 ELSE name END, \
               email = COALESCE(?3, email), \
               email_verified = COALESCE(?4, email_verified), \
               updated_at = ?5 \
             WHERE id = ?6",
            params![
                changes.name.clone().flatten(),
                changes.name.is_some(),
                changes.email.as_ref().map(Email::as_str),
                changes.email_verified,
                ms(at),
                id.to_string(),
            ],
        )?;
        self.user(id)
    }

    async fn delete_user(&mut self, id: UserId) -> StoreResult<bool> {
        let id = id.to_string();
        // Refresh tokens go with their sessions (ON DELETE CASCADE).
        // Live and ended sessions apart, each through its partial index: one statement
        // over `user_id` alone would scan every session.
        self.execute(
            "DELETE FROM sessions WHERE user_id = ? AND revoked_at IS NULL",
            [&id],
        )?;
        self.execute(
            "DELETE FROM sessions WHERE user_id = ? AND revoked_at IS NOT NULL",
            [&id],
        )?;
        self.execute("DELETE FROM identities WHERE user_id = ?", [&id])?;
        self.execute(
            "UPDATE events SET data = json_remove(data, '$.device') \
             WHERE user_id = ? AND json_type(data, '$.device') IS NOT NULL",
            [&id],
        )?;
        self.execute(
            "DELETE FROM otp_challenges WHERE user_id = ?1 \
             OR email = (SELECT email FROM users WHERE id = ?1)",
            [&id],
        )?;
        Ok(self.execute("DELETE FROM users WHERE id = ?", [&id])? == 1)
    }

    async fn lock_session(
        &mut self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        self.session_with_user(id)
    }

    async fn live_sessions_for_user(
        &mut self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>> {
        self.rows(
            &LIVE_SESSIONS_FOR_USER,
            params![user.to_string(), ms(window.now), ms(window.idle_cutoff)],
            |r| rows::session(r),
        )
    }

    async fn insert_session(&mut self, s: &NewSession) -> StoreResult<()> {
        self.execute(
            "INSERT INTO sessions (id, user_id, auth_method, created_at, last_active_at, expires_at, \
             device_id, user_agent, ip, label, data) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                s.id.to_string(),
                s.user_id.map(|u| u.to_string()),
                s.auth_method.as_string(),
                ms(s.created_at),
                ms(s.expires_at),
                s.device.device_id.as_deref(),
                s.device.user_agent.as_deref(),
                s.device.ip.as_deref(),
                s.device.label.as_deref(),
                s.data.as_ref().map(|d| d.to_string()),
            ],
        )?;
        Ok(())
    }

    async fn bind_session(
        &mut self,
        id: SessionId,
        user: UserId,
        method: &AuthMethod,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.execute(
            "UPDATE sessions SET user_id = ?1, auth_method = ?2, \
             last_active_at = MAX(last_active_at, ?3) WHERE id = ?4",
            params![user.to_string(), method.as_string(), ms(at), id.to_string()],
        )?;
        Ok(())
    }

    async fn set_last_active(&mut self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()> {
        self.execute(TOUCH_SESSION, params![ms(at), id.to_string()])?;
        Ok(())
    }

    async fn set_session_data(
        &mut self,
        id: SessionId,
        data: &serde_json::Value,
    ) -> StoreResult<bool> {
        let changed = self.execute(
            "UPDATE sessions SET data = ?1 WHERE id = ?2",
            params![data.to_string(), id.to_string()],
        )?;
        Ok(changed == 1)
    }

    async fn revoke_sessions(
        &mut self,
        targets: &[SessionId],
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>> {
        let mut revoked = Vec::with_capacity(targets.len());
        for id in targets {
            let changed = self.execute(
                "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2 \
                 WHERE id = ?3 AND revoked_at IS NULL",
                params![ms(at), reason.as_str(), id.to_string()],
            )?;
            if changed == 1 {
                revoked.push(*id);
            }
        }
        Ok(revoked)
    }

    async fn revoke_user_sessions(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>> {
        let revoked = self.rows(
            "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2 \
             WHERE user_id = ?3 AND revoked_at IS NULL AND id IS NOT ?4 RETURNING id",
            params![
                ms(at),
                reason.as_str(),
                user.to_string(),
                keep.map(|k| k.to_string())
            ],
            |r| r.get::<_, String>(0).map_err(write_error),
        )?;
        ids(revoked)
    }

    async fn lock_refresh_token(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        self.row(&REFRESH_TOKEN_BY_HASH, [&hash.as_bytes()[..]], |r| {
            rows::refresh_token(r)
        })
    }

    async fn lock_refresh_token_and_session(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(StoredRefreshToken, Session, Option<User>)>> {
        // The single writer already excludes every other writer.
        self.row(&REFRESH_TOKEN_AND_SESSION, [&hash.as_bytes()[..]], |r| {
            Ok((
                rows::joined_refresh_token(r)?,
                rows::session(r)?,
                rows::joined_user(r)?,
            ))
        })
    }

    async fn record_revocations(
        &mut self,
        facts: &[RevocationFact],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        for fact in facts {
            let row = FactRow::from(fact);
            self.execute(
                super::revocations::INSERT,
                super::revocations::insert_params(&row, at),
            )?;
        }
        Ok(())
    }

    async fn refresh_token_is_rotated(&mut self, id: RefreshTokenId) -> StoreResult<bool> {
        let rotated = self.with("SELECT rotated_at FROM refresh_tokens WHERE id = ?", |s| {
            s.query_row([id.to_string()], |r| r.get::<_, Option<i64>>(0))
                .optional()
        })?;
        Ok(matches!(rotated, Some(Some(_))))
    }

    async fn insert_refresh_token(&mut self, t: &NewRefreshToken) -> StoreResult<()> {
        self.execute(
            INSERT_REFRESH_TOKEN,
            params![
                t.id.to_string(),
                t.session_id.to_string(),
                &t.hash.as_bytes()[..],
                ms(t.created_at),
                ms(t.expires_at),
            ],
        )?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &mut self,
        presented: RefreshTokenId,
        successor: &NewRefreshToken,
        sealed: &[u8],
    ) -> StoreResult<()> {
        self.insert_refresh_token(successor).await?;
        self.execute(
            "UPDATE refresh_tokens SET rotated_at = ?1, successor_id = ?2, successor_sealed = ?3 \
             WHERE id = ?4",
            params![
                ms(successor.created_at),
                successor.id.to_string(),
                sealed,
                presented.to_string(),
            ],
        )?;
        Ok(())
    }

    async fn delete_refresh_tokens(&mut self, session: SessionId) -> StoreResult<()> {
        self.execute(
            "DELETE FROM refresh_tokens WHERE session_id = ?",
            [session.to_string()],
        )?;
        Ok(())
    }

    async fn insert_otp_challenge(&mut self, c: &OtpChallenge, device: &Device) -> StoreResult<()> {
        let device =
            serde_json::to_string(device).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        self.execute(
            "INSERT INTO otp_challenges (id, email, code_hash, created_at, expires_at, attempts, \
             consumed_at, device, purpose, user_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                c.id,
                c.email,
                &c.code_hash.as_bytes()[..],
                ms(c.created_at),
                ms(c.expires_at),
                i64::from(c.attempts),
                c.consumed_at.map(ms),
                device,
                c.purpose.as_str(),
                c.user_id.map(|u| u.to_string()),
            ],
        )?;
        Ok(())
    }

    async fn lock_otp_challenge(
        &mut self,
        id: &str,
    ) -> StoreResult<Option<(OtpChallenge, Device)>> {
        self.row(OTP_CHALLENGE, [id], |r| rows::otp_challenge(r))
    }

    async fn record_otp_failure(&mut self, id: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE otp_challenges SET attempts = attempts + 1 WHERE id = ?",
            [id],
        )?;
        Ok(())
    }

    async fn consume_otp_challenge(&mut self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.execute(
            "UPDATE otp_challenges SET consumed_at = ?1 WHERE id = ?2 AND consumed_at IS NULL",
            params![ms(at), id],
        )?;
        Ok(())
    }

    async fn delete_otp_challenge(&mut self, id: &str) -> StoreResult<()> {
        self.execute("DELETE FROM otp_challenges WHERE id = ?", [id])?;
        Ok(())
    }

    async fn record_events(&mut self, events: &[NewEvent]) -> StoreResult<()> {
        super::outbox::record(self.tx.conn(), events).map_err(write_error)
    }

    async fn spend_token(
        &mut self,
        fingerprint: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let inserted = self.execute(
            "INSERT INTO spent_tokens (fingerprint, expires_at) VALUES (?1, ?2) \
             ON CONFLICT (fingerprint) DO NOTHING",
            params![fingerprint, ms(expires_at)],
        )?;
        Ok(inserted == 1)
    }

    async fn identity_user(
        &mut self,
        provider: &str,
        external_id: &str,
    ) -> StoreResult<Option<UserId>> {
        let found = self.row(
            "SELECT user_id FROM identities WHERE provider = ?1 AND external_id = ?2",
            [provider, external_id],
            |r| r.get::<_, String>(0).map_err(write_error),
        )?;
        found.map(|u| rows::parse("user id", &u)).transpose()
    }

    async fn insert_identity(
        &mut self,
        provider: &str,
        external_id: &str,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO identities (provider, external_id, user_id, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![provider, external_id, user.to_string(), ms(at)],
        )?;
        Ok(())
    }

    async fn user_id_by_email(&mut self, email: &Email) -> StoreResult<Option<UserId>> {
        let found = self.row(
            "SELECT id FROM users WHERE email = ?",
            [email.as_str()],
            |r| r.get::<_, String>(0).map_err(write_error),
        )?;
        found.map(|u| rows::parse("user id", &u)).transpose()
    }

    async fn set_user_email(&mut self, id: UserId, email: &Email) -> StoreResult<()> {
        self.execute(
            "UPDATE users SET email = ?1 WHERE id = ?2",
            params![email.as_str(), id.to_string()],
        )?;
        Ok(())
    }

    async fn update_user_profile(
        &mut self,
        id: UserId,
        profile: &UserProfile,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        self.execute(
            "UPDATE users SET name = ?1, mobile = ?2, profile = ?3, updated_at = ?4 WHERE id = ?5",
            params![
                profile.name.as_deref(),
                profile.mobile.as_deref(),
                profile.profile.as_ref().map(|p| p.to_string()),
                ms(at),
                id.to_string(),
            ],
        )?;
        self.user(id)
    }

    async fn insert_signing_key(&mut self, key: &SigningKey) -> StoreResult<()> {
        self.execute(
            "INSERT INTO signing_keys (kid, private_pkcs8, created_at, retired_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![
                key.kid,
                key.pkcs8,
                ms(key.created_at),
                key.retired_at.map(ms)
            ],
        )?;
        Ok(())
    }

    async fn retire_signing_keys(&mut self, at: DateTime<Utc>) -> StoreResult<u64> {
        let changed = self.execute(
            "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL OR retired_at > ?1",
            [ms(at)],
        )?;
        Ok(changed as u64)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit()
    }
}
