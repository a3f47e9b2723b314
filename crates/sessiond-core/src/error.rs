use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::code::Code;
use crate::session::{RevokeReason, SessionSummary};

/// One invalid input field, reported back to the client in the problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// A stable name of the rule the value broke, where clients may want to branch on it
    /// (the password policy's `too_short`, `too_long`, `common`, `matches_email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every way a request can fail for a reason the domain understands. The HTTP layer maps
/// each variant to a status and a stable code in exactly one place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("no bearer token was provided")]
    TokenNotProvided,
    #[error("the token is malformed, has a bad signature or is of the wrong type")]
    TokenInvalid,
    #[error("the token expired")]
    TokenExpired { expired_at: DateTime<Utc> },
    #[error("the session was revoked")]
    SessionRevoked { reason: RevokeReason },
    #[error("the session reached its absolute lifetime")]
    SessionExpired,
    #[error("the session was idle for too long")]
    SessionInactive,
    #[error("the user is deactivated")]
    UserInactive,
    #[error("the refresh token is not known")]
    RefreshTokenInvalid,
    #[error("the refresh token expired")]
    RefreshTokenExpired,
    #[error("a rotated refresh token was presented again; the session is revoked")]
    RefreshTokenReused,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("the code is wrong or was already used")]
    OtpInvalid,
    #[error("the code has expired; ask for a new one")]
    OtpExpired,
    #[error("too many wrong codes; ask for a new one later")]
    OtpAttemptsExceeded,
    #[error("the identity provider rejected the token")]
    UpstreamRejected,
    /// An ID token failed a check made here; the reason names which.
    #[error("the ID token was refused: {0}")]
    IdTokenRejected(&'static str),
    #[error("the identity provider is rate limiting us")]
    UpstreamRateLimited { retry_after_secs: Option<u64> },
    #[error("the upstream service is unavailable")]
    UpstreamUnavailable,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Name of the exceeded policy, e.g. `login`.
        policy: &'static str,
        limit: u32,
        window_secs: u64,
        retry_after_secs: u64,
    },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the user has reached the maximum number of sessions")]
    SessionLimitExceeded { sessions: Vec<SessionSummary> },
    #[error(
        "these credentials may not do this (an admin or verifier key where one is required; an account, not an anonymous session)"
    )]
    Forbidden,
    #[error(
        "the account's email address must be verified first: log in with a one-time code, or confirm it with /v1/session/email/verify"
    )]
    EmailNotVerified,
    #[error("the server is too busy to take this request now")]
    Overloaded,
    #[error("the payload is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error(
        "the feed cannot continue from this cursor (its facts were purged, or it was never \
         handed out here): take a snapshot at /v1/revocations/snapshot and follow from its cursor"
    )]
    RevocationCursorExpired,
}

impl DomainError {
    pub fn invalid_field(field: &str, message: &str) -> Self {
        DomainError::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
            reason: None,
        }])
    }

    /// The stable machine-readable code clients branch on.
    pub fn code(&self) -> Code {
        match self {
            DomainError::Validation(_) => Code::ValidationError,
            DomainError::TokenNotProvided => Code::TokenNotProvided,
            DomainError::TokenInvalid => Code::TokenInvalid,
            DomainError::TokenExpired { .. } => Code::TokenExpired,
            DomainError::SessionRevoked { .. } => Code::SessionRevoked,
            DomainError::SessionExpired => Code::SessionExpired,
            DomainError::SessionInactive => Code::SessionInactive,
            DomainError::UserInactive => Code::UserInactive,
            DomainError::RefreshTokenInvalid => Code::RefreshTokenInvalid,
            DomainError::RefreshTokenExpired => Code::RefreshTokenExpired,
            DomainError::RefreshTokenReused => Code::RefreshTokenReused,
            DomainError::InvalidCredentials => Code::InvalidCredentials,
            DomainError::OtpInvalid => Code::OtpInvalid,
            DomainError::OtpExpired => Code::OtpExpired,
            DomainError::OtpAttemptsExceeded => Code::OtpAttemptsExceeded,
            DomainError::UpstreamRejected | DomainError::IdTokenRejected(_) => {
                Code::UpstreamRejected
            }
            DomainError::UpstreamRateLimited { .. } => Code::UpstreamRateLimited,
            DomainError::UpstreamUnavailable => Code::UpstreamUnavailable,
            DomainError::RateLimited { .. } => Code::RateLimited,
            DomainError::NotFound => Code::NotFound,
            DomainError::Conflict(_) => Code::Conflict,
            DomainError::SessionLimitExceeded { .. } => Code::SessionLimitExceeded,
            DomainError::Forbidden => Code::Forbidden,
            DomainError::EmailNotVerified => Code::EmailNotVerified,
            DomainError::Overloaded => Code::ServiceOverloaded,
            DomainError::PayloadTooLarge { .. } => Code::PayloadTooLarge,
            DomainError::RevocationCursorExpired => Code::RevocationCursorExpired,
        }
    }
}
