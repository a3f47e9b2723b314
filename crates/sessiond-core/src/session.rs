use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{SessionId, UserId};

/// How a session was authenticated; the `amr` claim and the session's `auth_method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    Otp,
    /// A partner's token vouched for by the named upstream provider.
    Exchange(String),
    Anonymous,
    /// Created by a trusted backend through the admin API.
    Admin,
}

impl AuthMethod {
    pub fn as_string(&self) -> String {
        match self {
            AuthMethod::Password => "pwd".to_owned(),
            AuthMethod::Otp => "otp".to_owned(),
            AuthMethod::Exchange(provider) => format!("exchange:{provider}"),
            AuthMethod::Anonymous => "anon".to_owned(),
            AuthMethod::Admin => "admin".to_owned(),
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pwd" => AuthMethod::Password,
            "otp" => AuthMethod::Otp,
            "anon" => AuthMethod::Anonymous,
            "admin" => AuthMethod::Admin,
            other => match other.strip_prefix("exchange:") {
                Some(provider) if !provider.is_empty() => AuthMethod::Exchange(provider.to_owned()),
                _ => return Err(format!("unknown auth method {other:?}")),
            },
        })
    }
}

/// Why a session ended. Recorded on the session so that "why was I logged out?" always
/// has an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    RevokedByUser,
    RevokedOthers,
    Admin,
    UserDeactivated,
    /// The user was erased (`DELETE /v1/admin/users/{id}`).
    UserDeleted,
    /// The password was changed from another session, which stays.
    PasswordChanged,
    /// The password was reset with an emailed code.
    PasswordReset,
    RefreshTokenReused,
    EvictedByLimit,
    IdleTimeout,
    AbsoluteLifetime,
}

impl RevokeReason {
    pub const ALL: [RevokeReason; 12] = [
        RevokeReason::Logout,
        RevokeReason::RevokedByUser,
        RevokeReason::RevokedOthers,
        RevokeReason::Admin,
        RevokeReason::UserDeactivated,
        RevokeReason::UserDeleted,
        RevokeReason::PasswordChanged,
        RevokeReason::PasswordReset,
        RevokeReason::RefreshTokenReused,
        RevokeReason::EvictedByLimit,
        RevokeReason::IdleTimeout,
        RevokeReason::AbsoluteLifetime,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::RevokedByUser => "revoked_by_user",
            RevokeReason::RevokedOthers => "revoked_others",
            RevokeReason::Admin => "admin",
            RevokeReason::UserDeactivated => "user_deactivated",
            RevokeReason::UserDeleted => "user_deleted",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::PasswordReset => "password_reset",
            RevokeReason::RefreshTokenReused => "refresh_token_reused",
            RevokeReason::EvictedByLimit => "evicted_by_limit",
            RevokeReason::IdleTimeout => "idle_timeout",
            RevokeReason::AbsoluteLifetime => "absolute_lifetime",
        }
    }
}

impl FromStr for RevokeReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RevokeReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown revoke reason {s:?}"))
    }
}

/// The device a session lives on, as the client described it plus the IP the server saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub label: Option<String>,
}

/// One login on one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: Option<UserId>,
    pub auth_method: AuthMethod,
    pub created_at: DateTime<Utc>,
    /// The last activity storage knows of; may lag the truth by the activity resolution.
    pub last_active_at: DateTime<Utc>,
    /// The absolute end of the session.
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<RevokeReason>,
    pub device: Device,
}

impl Session {
    pub fn is_anonymous(&self) -> bool {
        self.user_id.is_none()
    }

    pub fn summary(&self) -> SessionSummary {
        SessionSummary {
            id: self.id,
            device: self.device.clone(),
            last_active_at: self.last_active_at,
        }
    }
}

/// What a person needs to recognise a session: listed when a session limit is reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub id: SessionId,
    pub device: Device,
    pub last_active_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_methods_round_trip() {
        for method in [
            AuthMethod::Password,
            AuthMethod::Otp,
            AuthMethod::Exchange("rapido".into()),
            AuthMethod::Anonymous,
            AuthMethod::Admin,
        ] {
            assert_eq!(method.as_string().parse::<AuthMethod>(), Ok(method));
        }
        assert!("exchange:".parse::<AuthMethod>().is_err());
        assert!("magic".parse::<AuthMethod>().is_err());
    }

    #[test]
    fn revoke_reasons_round_trip_and_match_serde() {
        for reason in RevokeReason::ALL {
            assert_eq!(reason.as_str().parse::<RevokeReason>(), Ok(reason));
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::String(reason.as_str().into())
            );
        }
    }
}
