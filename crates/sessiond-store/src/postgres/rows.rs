//! Turning PostgreSQL rows into domain values and back, and driver errors into
//! [`StoreError`]s.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::{Device, Email, RefreshTokenId, Session, SessionId, User, UserId};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

pub(super) const SESSION_COLUMNS: &str = "s.id, s.user_id, s.auth_method, s.created_at, \
     s.last_active_at, s.expires_at, s.revoked_at, s.revoked_reason, s.device_id, \
     s.user_agent, s.ip, s.label";

pub(super) const USER_COLUMNS: &str = "u.id AS u_id, u.email AS u_email, u.name AS u_name, \
     u.active AS u_active, u.created_at AS u_created_at, u.mobile AS u_mobile, \
     u.profile AS u_profile, u.email_verified AS u_email_verified";

pub(super) const TOKEN_COLUMNS: &str =
    "id, session_id, created_at, expires_at, rotated_at, successor_id, successor_sealed";

/// The constraint behind "a user with this email" (named in the migration).
const USERS_EMAIL_KEY: &str = "users_email_key";

/// An instant as stored: truncated to the millisecond, as the SQLite backend stores it,
/// so both backends compare and return the same values (`timestamptz` would keep
/// microseconds).
pub(super) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn parse<T: FromStr>(what: &str, raw: &str) -> StoreResult<T> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what}: {raw:?}")))
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

pub(super) fn session(row: &PgRow) -> StoreResult<Session> {
    let user_id: Option<Uuid> = get(row, "user_id")?;
    let revoked_reason: Option<String> = get(row, "revoked_reason")?;
    Ok(Session {
        id: SessionId::from_uuid(get(row, "id")?),
        user_id: user_id.map(UserId::from_uuid),
        auth_method: parse("auth method", &get::<String>(row, "auth_method")?)?,
        created_at: get(row, "created_at")?,
        last_active_at: get(row, "last_active_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
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
pub(super) fn joined_user(row: &PgRow) -> StoreResult<Option<User>> {
    let Some(id) = get::<Option<Uuid>>(row, "u_id")? else {
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
        id: UserId::from_uuid(id),
        email: email.map(Email::from_stored),
        name: get(row, "u_name")?,
        active: get(row, "u_active")?,
        email_verified: get(row, "u_email_verified")?,
        created_at: get(row, "u_created_at")?,
    }))
}

pub(super) fn refresh_token(row: &PgRow) -> StoreResult<StoredRefreshToken> {
    let successor: Option<Uuid> = get(row, "successor_id")?;
    Ok(StoredRefreshToken {
        id: RefreshTokenId::from_uuid(get(row, "id")?),
        session_id: SessionId::from_uuid(get(row, "session_id")?),
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        rotated_at: get(row, "rotated_at")?,
        successor_id: successor.map(RefreshTokenId::from_uuid),
        successor_sealed: get(row, "successor_sealed")?,
    })
}

pub(super) fn otp_challenge(
    row: &PgRow,
) -> StoreResult<(sessiond_core::otp::OtpChallenge, Device)> {
    let hash: Vec<u8> = get(row, "code_hash")?;
    let attempts: i32 = get(row, "attempts")?;
    let device: Option<String> = get(row, "device")?;
    let user_id: Option<Uuid> = get(row, "user_id")?;
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
            user_id: user_id.map(UserId::from_uuid),
            code_hash: sessiond_core::TokenHash::from_slice(&hash)
                .ok_or_else(|| StoreError::Corrupt("code hash is not 32 bytes".into()))?,
            created_at: get(row, "created_at")?,
            expires_at: get(row, "expires_at")?,
            // Out of range can only mean corruption: treat the challenge as exhausted.
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            consumed_at: get(row, "consumed_at")?,
        },
        device,
    ))
}

pub(super) fn signing_key(row: &PgRow) -> StoreResult<SigningKey> {
    let key = SigningKey::from_pkcs8(
        get(row, "private_pkcs8")?,
        get(row, "created_at")?,
        get(row, "retired_at")?,
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

/// Maps driver errors to what the layers above can act on: the one place this backend
/// decides what is a conflict, what is corrupt data, and what is an outage.
pub(super) fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            if db.constraint() == Some(USERS_EMAIL_KEY) {
                StoreError::Conflict("a user with this email")
            } else {
                StoreError::Conflict("a record with this key")
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(e.to_string()),
        // Pool timeouts, I/O, a closed pool, statement timeouts, deadlocks, a server
        // shutting down: nothing the caller did wrong, so all of it is an outage.
        other => StoreError::Unavailable(other.to_string()),
    }
}
