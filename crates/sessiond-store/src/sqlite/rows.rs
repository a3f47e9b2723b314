//! Turning SQLite rows into domain values and back, for rows from either driver: reads
//! come through sqlx's pool, writes' reads through the synchronous writer (rusqlite).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::{Device, Email, Session, User};
use sqlx::Row;
use sqlx::sqlite::{Sqlite, SqliteRow};

use crate::{StoreError, StoreResult};

pub(super) const SESSION_COLUMNS: &str = "s.id, s.user_id, s.auth_method, s.created_at, \
     s.last_active_at, s.expires_at, s.revoked_at, s.revoked_reason, s.device_id, \
     s.user_agent, s.ip, s.label";

pub(super) const USER_COLUMNS: &str = "u.id AS u_id, u.email AS u_email, u.name AS u_name, \
     u.active AS u_active, u.created_at AS u_created_at, u.mobile AS u_mobile, \
     u.profile AS u_profile, u.email_verified AS u_email_verified";

pub(super) const TOKEN_COLUMNS: &str =
    "id, session_id, created_at, expires_at, rotated_at, successor_id, successor_sealed";

/// The token columns of `refresh_tokens t` under `t_` names, to read beside a session's.
pub(super) const JOINED_TOKEN_COLUMNS: &str = "t.id AS t_id, t.session_id AS t_session_id, \
     t.created_at AS t_created_at, t.expires_at AS t_expires_at, t.rotated_at AS t_rotated_at, \
     t.successor_id AS t_successor_id, t.successor_sealed AS t_successor_sealed";

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub(super) fn opt_time(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

pub(super) fn parse<T: FromStr>(what: &str, raw: &str) -> StoreResult<T> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what}: {raw:?}")))
}

/// A value both drivers can read from a column.
pub(super) trait Value:
    for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql
{
}

impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql
{
}

/// A row of either driver, read by column name.
pub(super) trait Columns {
    fn column<T: Value>(&self, name: &str) -> StoreResult<T>;
}

impl Columns for SqliteRow {
    fn column<T: Value>(&self, name: &str) -> StoreResult<T> {
        self.try_get(name)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

impl Columns for rusqlite::Row<'_> {
    fn column<T: Value>(&self, name: &str) -> StoreResult<T> {
        self.get(name)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

fn get<T: Value>(row: &impl Columns, column: &str) -> StoreResult<T> {
    row.column(column)
}

pub(super) fn session(row: &impl Columns) -> StoreResult<Session> {
    let user_id: Option<String> = get(row, "user_id")?;
    let revoked_reason: Option<String> = get(row, "revoked_reason")?;
    Ok(Session {
        id: parse("session id", &get::<String>(row, "id")?)?,
        user_id: user_id.map(|u| parse("user id", &u)).transpose()?,
        auth_method: parse("auth method", &get::<String>(row, "auth_method")?)?,
        created_at: time(get(row, "created_at")?)?,
        last_active_at: time(get(row, "last_active_at")?)?,
        expires_at: time(get(row, "expires_at")?)?,
        revoked_at: opt_time(get(row, "revoked_at")?)?,
        revoked_reason: revoked_reason
            .map(|r| parse("revoke reason", &r))
            .transpose()?,
        device: Device {
            device_id: get(row, "device_id")?,
            user_agent: get(row, "user_agent")?,
            ip: get(row, "ip")?,
            label: get(row, "label")?,
        },
    })
}

/// A user selected with [`USER_COLUMNS`] (prefixed `u_`), absent after a LEFT JOIN miss.
pub(super) fn joined_user(row: &impl Columns) -> StoreResult<Option<User>> {
    let Some(id) = get::<Option<String>>(row, "u_id")? else {
        return Ok(None);
    };
    let email: Option<String> = get(row, "u_email")?;
    let profile: Option<String> = get(row, "u_profile")?;
    let profile = profile
        .map(|p| {
            serde_json::from_str(&p).map_err(|e| StoreError::Corrupt(format!("user profile: {e}")))
        })
        .transpose()?;
    Ok(Some(User {
        mobile: get(row, "u_mobile")?,
        profile,
        id: parse("user id", &id)?,
        email: email.map(Email::from_stored),
        name: get(row, "u_name")?,
        active: get(row, "u_active")?,
        email_verified: get(row, "u_email_verified")?,
        created_at: time(get(row, "u_created_at")?)?,
    }))
}

pub(super) fn refresh_token(row: &impl Columns) -> StoreResult<StoredRefreshToken> {
    token_columns(row, "")
}

/// A token read with [`JOINED_TOKEN_COLUMNS`].
pub(super) fn joined_refresh_token(row: &impl Columns) -> StoreResult<StoredRefreshToken> {
    token_columns(row, "t_")
}

fn token_columns(row: &impl Columns, prefix: &str) -> StoreResult<StoredRefreshToken> {
    let col = |name: &str| format!("{prefix}{name}");
    let successor: Option<String> = get(row, &col("successor_id"))?;
    Ok(StoredRefreshToken {
        id: parse("refresh token id", &get::<String>(row, &col("id"))?)?,
        session_id: parse("session id", &get::<String>(row, &col("session_id"))?)?,
        created_at: time(get(row, &col("created_at"))?)?,
        expires_at: time(get(row, &col("expires_at"))?)?,
        rotated_at: opt_time(get(row, &col("rotated_at"))?)?,
        successor_id: successor
            .map(|s| parse("refresh token id", &s))
            .transpose()?,
        successor_sealed: get(row, &col("successor_sealed"))?,
    })
}

pub(super) fn otp_challenge(
    row: &impl Columns,
) -> StoreResult<(sessiond_core::otp::OtpChallenge, Device)> {
    let hash: Vec<u8> = get(row, "code_hash")?;
    let attempts: i64 = get(row, "attempts")?;
    let device: Option<String> = get(row, "device")?;
    let user_id: Option<String> = get(row, "user_id")?;
    let device = match device {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("challenge device: {e}")))?,
        None => Device::default(),
    };
    Ok((
        sessiond_core::otp::OtpChallenge {
            id: get(row, "id")?,
            purpose: parse("challenge purpose", &get::<String>(row, "purpose")?)?,
            email: get(row, "email")?,
            user_id: user_id.map(|u| parse("user id", &u)).transpose()?,
            code_hash: sessiond_core::TokenHash::from_slice(&hash)
                .ok_or_else(|| StoreError::Corrupt("code hash is not 32 bytes".into()))?,
            created_at: time(get(row, "created_at")?)?,
            expires_at: time(get(row, "expires_at")?)?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            consumed_at: opt_time(get(row, "consumed_at")?)?,
        },
        device,
    ))
}

pub(super) fn signing_key(row: &impl Columns) -> StoreResult<SigningKey> {
    let key = SigningKey::from_pkcs8(
        get(row, "private_pkcs8")?,
        time(get(row, "created_at")?)?,
        opt_time(get(row, "retired_at")?)?,
    )
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kid: String = get(row, "kid")?;
    if kid != key.kid {
        return Err(StoreError::Corrupt(format!(
            "signing key {kid} does not match its kid"
        )));
    }
    Ok(key)
}

/// Maps driver errors to what the layers above can act on.
pub(super) fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict(db.message()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// A uniqueness violation, named from SQLite's message ("UNIQUE constraint failed: users.email").
pub(super) fn conflict(message: &str) -> StoreError {
    if message.contains("users.email") {
        StoreError::Conflict("a user with this email")
    } else {
        StoreError::Conflict("a record with this key")
    }
}
