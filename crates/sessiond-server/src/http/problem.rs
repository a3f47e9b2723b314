//! The one place where failures become HTTP: RFC 9457 problem+json with a stable code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessiond_core::DomainError;
use sessiond_store::StoreError;
use utoipa::ToSchema;

use crate::service::{Service, ServiceError};

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// Stable machine-readable code, e.g. `TOKEN_EXPIRED`.
    pub code: &'static str,
    pub detail: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug)]
enum Failure {
    Domain(DomainError),
    Store(StoreError),
    /// A request the HTTP layer itself refused (bad JSON, bad path, unknown route…).
    Http {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
}

/// Every handler's error. `bearer` marks failures caused by the presented bearer token,
/// which add `WWW-Authenticate` (RFC 6750).
#[derive(Debug)]
pub struct ApiError {
    failure: Failure,
    bearer: bool,
    detail_override: Option<String>,
}

impl ApiError {
    pub fn http(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            failure: Failure::Http {
                status,
                code,
                detail: detail.into(),
            },
            bearer: false,
            detail_override: None,
        }
    }

    pub fn validation(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::http(status, "VALIDATION_ERROR", detail)
    }

    /// Replaces the human-readable detail, keeping status and code.
    pub fn with_detail(mut self, text: &str) -> Self {
        self.detail_override = Some(text.to_owned());
        self
    }

    /// A failure of our own (a panic, an answer that would not serialise): 500 with a
    /// fixed text, the cause logged where it happened and never echoed.
    pub fn internal() -> Self {
        Self::http(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an internal error occurred",
        )
    }

    pub fn not_found() -> Self {
        Self::from(DomainError::NotFound)
    }

    /// The same error, marked as caused by the bearer token.
    pub fn from_bearer(error: impl Into<ApiError>) -> Self {
        Self {
            bearer: true,
            ..error.into()
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self {
            failure: Failure::Domain(e),
            bearer: false,
            detail_override: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let failure = match e {
            ServiceError::Domain(d) => Failure::Domain(d),
            ServiceError::Store(s) => Failure::Store(s),
        };
        Self {
            failure,
            bearer: false,
            detail_override: None,
        }
    }
}

fn status_of(e: &DomainError) -> StatusCode {
    match e {
        DomainError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::TokenNotProvided
        | DomainError::TokenInvalid
        | DomainError::TokenExpired { .. }
        | DomainError::SessionRevoked { .. }
        | DomainError::SessionExpired
        | DomainError::SessionInactive
        | DomainError::UserInactive
        | DomainError::RefreshTokenInvalid
        | DomainError::RefreshTokenExpired
        | DomainError::RefreshTokenReused
        | DomainError::InvalidCredentials
        | DomainError::OtpInvalid
        | DomainError::OtpExpired
        | DomainError::UpstreamRejected => StatusCode::UNAUTHORIZED,
        DomainError::OtpAttemptsExceeded
        | DomainError::UpstreamRateLimited { .. }
        | DomainError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        DomainError::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::NotFound => StatusCode::NOT_FOUND,
        DomainError::Conflict(_) | DomainError::SessionLimitExceeded { .. } => StatusCode::CONFLICT,
        DomainError::Forbidden => StatusCode::FORBIDDEN,
        DomainError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
    }
}

fn title_of(code: &str) -> &'static str {
    match code {
        "VALIDATION_ERROR" => "The request is invalid",
        "TOKEN_NOT_PROVIDED" => "No token was provided",
        "TOKEN_INVALID" => "The token is invalid",
        "TOKEN_EXPIRED" => "The token has expired",
        "SESSION_REVOKED" => "The session was revoked",
        "SESSION_EXPIRED" => "The session has expired",
        "SESSION_INACTIVE" => "The session timed out from inactivity",
        "USER_INACTIVE" => "The user is deactivated",
        "REFRESH_TOKEN_INVALID" => "The refresh token is invalid",
        "REFRESH_TOKEN_EXPIRED" => "The refresh token has expired",
        "REFRESH_TOKEN_REUSED" => "The refresh token was already used",
        "INVALID_CREDENTIALS" => "Invalid credentials",
        "OTP_INVALID" => "The code is invalid",
        "OTP_EXPIRED" => "The code has expired",
        "OTP_ATTEMPTS_EXCEEDED" => "Too many wrong codes",
        "UPSTREAM_REJECTED" => "The identity provider rejected the token",
        "UPSTREAM_RATE_LIMITED" => "The identity provider is rate limiting",
        "UPSTREAM_UNAVAILABLE" => "An upstream service is unavailable",
        "RATE_LIMITED" => "Too many requests",
        "NOT_FOUND" => "Not found",
        "CONFLICT" => "Conflict",
        "SESSION_LIMIT_EXCEEDED" => "Too many sessions",
        "FORBIDDEN" => "Forbidden",
        "PAYLOAD_TOO_LARGE" => "Payload too large",
        "METHOD_NOT_ALLOWED" => "Method not allowed",
        "STORAGE_UNAVAILABLE" => "Storage is unavailable",
        "SERVICE_OVERLOADED" => "The server is overloaded",
        _ => "Internal error",
    }
}

impl ApiError {
    fn into_problem(self) -> (StatusCode, Problem, Option<u64>, Option<(String, String)>) {
        let detail_override = self.detail_override;
        let mut extra = serde_json::Map::new();
        let mut retry_after = None;
        let mut rate_headers = None;
        let (status, code, detail) = match self.failure {
            Failure::Domain(e) => {
                let status = status_of(&e);
                match &e {
                    DomainError::Validation(errors) => {
                        extra.insert(
                            "errors".into(),
                            serde_json::to_value(errors).unwrap_or_default(),
                        );
                    }
                    DomainError::TokenExpired { expired_at } => {
                        extra.insert(
                            "expired_at".into(),
                            serde_json::to_value(expired_at).unwrap_or_default(),
                        );
                    }
                    DomainError::SessionLimitExceeded { sessions } => {
                        extra.insert(
                            "sessions".into(),
                            serde_json::to_value(sessions).unwrap_or_default(),
                        );
                    }
                    DomainError::Overloaded => retry_after = Some(1),
                    DomainError::RateLimited {
                        policy,
                        limit,
                        window_secs,
                        retry_after_secs,
                    } => {
                        retry_after = Some(*retry_after_secs);
                        extra.insert("retry_after".into(), (*retry_after_secs).into());
                        // draft-ietf-httpapi-ratelimit-headers: the policy, and what is left.
                        rate_headers = Some((
                            format!(r#""{policy}";q={limit};w={window_secs}"#),
                            format!(r#""{policy}";r=0;t={retry_after_secs}"#),
                        ));
                    }
                    DomainError::UpstreamRateLimited {
                        retry_after_secs: Some(secs),
                    } => {
                        retry_after = Some(*secs);
                        extra.insert("retry_after".into(), (*secs).into());
                    }
                    _ => {}
                }
                if let Some(reason) = Service::revoked_reason(&e) {
                    extra.insert("revoked_reason".into(), reason.as_str().into());
                }
                (status, e.code(), e.to_string())
            }
            Failure::Store(StoreError::Conflict(what)) => (
                StatusCode::CONFLICT,
                "CONFLICT",
                format!("{what} already exists"),
            ),
            Failure::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(error = %cause, "storage unavailable");
                retry_after = Some(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "STORAGE_UNAVAILABLE",
                    "storage is unavailable; retry shortly".to_owned(),
                )
            }
            Failure::Store(other) => {
                tracing::error!(error = %other, "storage failure");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "an internal error occurred".to_owned(),
                )
            }
            Failure::Http {
                status,
                code,
                detail,
            } => (status, code, detail),
        };
        let problem = Problem {
            kind: format!("urn:sessiond:problem:{}", code.to_ascii_lowercase()),
            title: title_of(code),
            status: status.as_u16(),
            code,
            detail: detail_override.unwrap_or(detail),
            extra,
        };
        (status, problem, retry_after, rate_headers)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bearer = self.bearer;
        let (status, problem, retry_after, rate_headers) = self.into_problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if bearer && status == StatusCode::UNAUTHORIZED {
            let challenge = if problem.code == "TOKEN_NOT_PROVIDED" {
                r#"Bearer realm="sessiond""#.to_owned()
            } else {
                format!(
                    r#"Bearer realm="sessiond", error="invalid_token", error_description="{}""#,
                    problem.code
                )
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some((policy, state)) = rate_headers
            && let (Ok(policy), Ok(state)) = (
                HeaderValue::from_str(&policy),
                HeaderValue::from_str(&state),
            )
        {
            headers.insert("ratelimit-policy", policy);
            headers.insert("ratelimit", state);
        }
        response
    }
}

/// Fallback for unknown paths.
pub async fn route_not_found() -> ApiError {
    ApiError::http(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}
