//! The SQLite write transaction. Statements that both the pool (reads) and a transaction
//! need are written once here, generic over the executor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::otp::OtpChallenge;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::{
    AuthMethod, Device, Email, RefreshTokenId, RevokeReason, Session, SessionId, TokenHash, User,
    UserId,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::rows::{
    self, JOINED_TOKEN_COLUMNS, SESSION_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS, db_error, ms,
};
use crate::{LiveWindow, NewRefreshToken, NewSession, NewUser, StoreResult, Tx, UserProfile};

pub(super) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteTx {
    pub(super) fn new(tx: Transaction<'static, Sqlite>) -> Self {
        Self { tx }
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

pub(super) async fn session_with_user<'e, E>(
    exec: E,
    id: SessionId,
) -> StoreResult<Option<(Session, Option<User>)>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s \
         LEFT JOIN users u ON u.id = s.user_id WHERE s.id = ?"
    );
    let row = sqlx::query(&sql)
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
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s \
         WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND s.last_active_at > ? \
         ORDER BY s.created_at, s.id"
    );
    let found = sqlx::query(&sql)
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
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = ?");
    let row = sqlx::query(&sql)
        .bind(&hash.as_bytes()[..])
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| rows::refresh_token(&r)).transpose()
}

async fn user<'e, E>(exec: E, id: UserId) -> StoreResult<Option<User>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?");
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
    row.map(|r| rows::joined_user(&r))
        .transpose()
        .map(Option::flatten)
}

fn ids(raw: Vec<String>) -> StoreResult<Vec<SessionId>> {
    raw.iter().map(|s| rows::parse("session id", s)).collect()
}

#[async_trait]
impl Tx for SqliteTx {
    async fn insert_user(&mut self, new: &NewUser) -> StoreResult<User> {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, active, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
        )
        .bind(new.id.to_string())
        .bind(new.email.as_ref().map(|e| e.as_str().to_owned()))
        .bind(new.name.as_deref())
        .bind(new.password_hash.as_deref())
        .bind(ms(new.created_at))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(User {
            id: new.id,
            email: new.email.clone(),
            name: new.name.clone(),
            active: true,
            created_at: new.created_at,
            mobile: None,
            profile: None,
        })
    }

    async fn lock_user(&mut self, id: UserId) -> StoreResult<Option<User>> {
        // The single writer connection already excludes every other writer.
        user(self.conn(), id).await
    }

    async fn set_user_active(
        &mut self,
        id: UserId,
        active: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        sqlx::query("UPDATE users SET active = ?, updated_at = ? WHERE id = ?")
            .bind(active)
            .bind(ms(at))
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        user(self.conn(), id).await
    }

    async fn lock_session(
        &mut self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        session_with_user(self.conn(), id).await
    }

    async fn live_sessions_for_user(
        &mut self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>> {
        live_sessions_for_user(self.conn(), user, window).await
    }

    async fn insert_session(&mut self, s: &NewSession) -> StoreResult<()> {
        let data = s.data.as_ref().map(|d| d.to_string());
        sqlx::query(
            "INSERT INTO sessions (id, user_id, auth_method, created_at, last_active_at, expires_at, \
             device_id, user_agent, ip, label, data) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.map(|u| u.to_string()))
        .bind(s.auth_method.as_string())
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(s.device.device_id.as_deref())
        .bind(s.device.user_agent.as_deref())
        .bind(s.device.ip.as_deref())
        .bind(s.device.label.as_deref())
        .bind(data)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn bind_session(
        &mut self,
        id: SessionId,
        user: UserId,
        method: &AuthMethod,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET user_id = ?, auth_method = ?, last_active_at = MAX(last_active_at, ?) WHERE id = ?")
            .bind(user.to_string())
            .bind(method.as_string())
            .bind(ms(at))
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn set_last_active(&mut self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET last_active_at = ?1 WHERE id = ?2 AND last_active_at < ?1",
        )
        .bind(ms(at))
        .bind(id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn set_session_data(
        &mut self,
        id: SessionId,
        data: &serde_json::Value,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE sessions SET data = ? WHERE id = ?")
            .bind(data.to_string())
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_sessions(
        &mut self,
        targets: &[SessionId],
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>> {
        let mut revoked = Vec::with_capacity(targets.len());
        for id in targets {
            let done = sqlx::query(
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
            )
            .bind(ms(at))
            .bind(reason.as_str())
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
            if done.rows_affected() == 1 {
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
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2 \
             WHERE user_id = ?3 AND revoked_at IS NULL AND id IS NOT ?4 RETURNING id",
        )
        .bind(ms(at))
        .bind(reason.as_str())
        .bind(user.to_string())
        .bind(keep.map(|k| k.to_string()))
        .fetch_all(self.conn())
        .await
        .map_err(db_error)?;
        ids(revoked)
    }

    async fn lock_refresh_token(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        refresh_token_by_hash(self.conn(), hash).await
    }

    async fn lock_refresh_token_and_session(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(StoredRefreshToken, Session, Option<User>)>> {
        // The single writer connection already excludes every other writer.
        let sql = format!(
            "SELECT {JOINED_TOKEN_COLUMNS}, {SESSION_COLUMNS}, {USER_COLUMNS} \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             LEFT JOIN users u ON u.id = s.user_id WHERE t.token_hash = ?"
        );
        let row = sqlx::query(&sql)
            .bind(&hash.as_bytes()[..])
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|r| {
            Ok((
                rows::joined_refresh_token(&r)?,
                rows::session(&r)?,
                rows::joined_user(&r)?,
            ))
        })
        .transpose()
    }

    async fn refresh_token_is_rotated(&mut self, id: RefreshTokenId) -> StoreResult<bool> {
        let rotated: Option<Option<i64>> =
            sqlx::query_scalar("SELECT rotated_at FROM refresh_tokens WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(self.conn())
                .await
                .map_err(db_error)?;
        Ok(matches!(rotated, Some(Some(_))))
    }

    async fn insert_refresh_token(&mut self, t: &NewRefreshToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(t.id.to_string())
        .bind(t.session_id.to_string())
        .bind(&t.hash.as_bytes()[..])
        .bind(ms(t.created_at))
        .bind(ms(t.expires_at))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &mut self,
        presented: RefreshTokenId,
        successor: &NewRefreshToken,
        sealed: &[u8],
    ) -> StoreResult<()> {
        // Two statements, one execution: numbered parameters index the whole argument
        // list, so both statements share it.
        sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5); \
             UPDATE refresh_tokens SET rotated_at = ?4, successor_id = ?1, successor_sealed = ?6 \
             WHERE id = ?7",
        )
        .bind(successor.id.to_string())
        .bind(successor.session_id.to_string())
        .bind(&successor.hash.as_bytes()[..])
        .bind(ms(successor.created_at))
        .bind(ms(successor.expires_at))
        .bind(sealed)
        .bind(presented.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_refresh_tokens(&mut self, session: SessionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM refresh_tokens WHERE session_id = ?")
            .bind(session.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_otp_challenge(&mut self, c: &OtpChallenge, device: &Device) -> StoreResult<()> {
        let device =
            serde_json::to_string(device).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO otp_challenges (id, email, code_hash, created_at, expires_at, attempts, consumed_at, device) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.email)
        .bind(&c.code_hash.as_bytes()[..])
        .bind(ms(c.created_at))
        .bind(ms(c.expires_at))
        .bind(i64::from(c.attempts))
        .bind(c.consumed_at.map(ms))
        .bind(device)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn lock_otp_challenge(
        &mut self,
        id: &str,
    ) -> StoreResult<Option<(OtpChallenge, Device)>> {
        let row = sqlx::query(
            "SELECT id, email, code_hash, created_at, expires_at, attempts, consumed_at, device \
             FROM otp_challenges WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        row.map(|r| rows::otp_challenge(&r)).transpose()
    }

    async fn record_otp_failure(&mut self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE otp_challenges SET attempts = attempts + 1 WHERE id = ?")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn consume_otp_challenge(&mut self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE otp_challenges SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
        )
        .bind(ms(at))
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_otp_challenge(&mut self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM otp_challenges WHERE id = ?")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn identity_user(
        &mut self,
        provider: &str,
        external_id: &str,
    ) -> StoreResult<Option<UserId>> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM identities WHERE provider = ? AND external_id = ?",
        )
        .bind(provider)
        .bind(external_id)
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        found.map(|u| rows::parse("user id", &u)).transpose()
    }

    async fn insert_identity(
        &mut self,
        provider: &str,
        external_id: &str,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO identities (provider, external_id, user_id, created_at) VALUES (?, ?, ?, ?)")
            .bind(provider)
            .bind(external_id)
            .bind(user.to_string())
            .bind(ms(at))
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn user_id_by_email(&mut self, email: &Email) -> StoreResult<Option<UserId>> {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = ?")
            .bind(email.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        found.map(|u| rows::parse("user id", &u)).transpose()
    }

    async fn set_user_email(&mut self, id: UserId, email: &Email) -> StoreResult<()> {
        sqlx::query("UPDATE users SET email = ? WHERE id = ?")
            .bind(email.as_str())
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn update_user_profile(
        &mut self,
        id: UserId,
        profile: &UserProfile,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        sqlx::query(
            "UPDATE users SET name = ?, mobile = ?, profile = ?, updated_at = ? WHERE id = ?",
        )
        .bind(profile.name.as_deref())
        .bind(profile.mobile.as_deref())
        .bind(profile.profile.as_ref().map(|p| p.to_string()))
        .bind(ms(at))
        .bind(id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        user(self.conn(), id).await
    }

    async fn insert_signing_key(&mut self, key: &SigningKey) -> StoreResult<()> {
        sqlx::query("INSERT INTO signing_keys (kid, private_pkcs8, created_at, retired_at) VALUES (?, ?, ?, ?)")
            .bind(&key.kid)
            .bind(&key.pkcs8)
            .bind(ms(key.created_at))
            .bind(key.retired_at.map(ms))
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn retire_signing_keys(&mut self, at: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(ms(at))
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_error)
    }
}
