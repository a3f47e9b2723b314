//! The one place where failures become HTTP: RFC 9457 problem+json with a stable code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessiond_core::{Code, DomainError};
use sessiond_store::StoreError;

use super::request_id;
use crate::service::{Service, ServiceError};

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub code: Code,
    pub detail: String,
    /// The request this answer belongs to (`urn:sessiond:request:<X-Request-Id>`), for
    /// finding its log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A request the HTTP layer refuses before a handler's own rules run: each kind has one
/// status and code, so call sites say what went wrong, not how to answer it.
#[derive(Debug)]
pub enum Refusal {
    /// The body is not JSON, or not of the expected types (400).
    MalformedBody(String),
    /// JSON of the right types breaking a structural rule, e.g. not an object (422).
    InvalidBody(String),
    /// The body's `Content-Type` is not one the operation takes (415).
    UnsupportedMediaType(&'static str),
    /// A path parameter that does not parse, e.g. a malformed UUID (400).
    BadPath(String),
    /// A query string that does not parse or names an unknown value (400).
    BadQuery(String),
    /// No route has this path (404).
    NoRoute,
    /// The route exists but not with this method (405).
    MethodNotAllowed,
    /// The body is larger than `max_body_bytes` (413).
    BodyTooLarge,
    /// A request header with a value the operation does not take (400).
    BadHeader(String),
    /// A cookie-authenticated or cookie-mode request that failed the CSRF check (403).
    Csrf(&'static str),
    /// The token cookie cannot be used: several of them, or not a token's text (401).
    BadAccessCookie(&'static str),
    /// No usable refresh token: none sent, or the refresh cookie cannot be used (401).
    RefreshRefused(&'static str),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::MalformedBody(_)
            | Refusal::BadPath(_)
            | Refusal::BadQuery(_)
            | Refusal::BadHeader(_) => StatusCode::BAD_REQUEST,
            Refusal::Csrf(_) => StatusCode::FORBIDDEN,
            Refusal::BadAccessCookie(_) | Refusal::RefreshRefused(_) => StatusCode::UNAUTHORIZED,
            Refusal::InvalidBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::NoRoute => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn code(&self) -> Code {
        match self {
            Refusal::MalformedBody(_)
            | Refusal::InvalidBody(_)
            | Refusal::UnsupportedMediaType(_)
            | Refusal::BadPath(_)
            | Refusal::BadQuery(_)
            | Refusal::BadHeader(_) => Code::ValidationError,
            Refusal::Csrf(_) => Code::CsrfRejected,
            Refusal::BadAccessCookie(_) => Code::TokenInvalid,
            Refusal::RefreshRefused(_) => Code::RefreshTokenInvalid,
            Refusal::NoRoute => Code::NotFound,
            Refusal::MethodNotAllowed => Code::MethodNotAllowed,
            Refusal::BodyTooLarge => Code::PayloadTooLarge,
        }
    }

    fn detail(self) -> String {
        match self {
            Refusal::MalformedBody(text)
            | Refusal::InvalidBody(text)
            | Refusal::BadPath(text)
            | Refusal::BadQuery(text)
            | Refusal::BadHeader(text) => text,
            Refusal::Csrf(why) | Refusal::BadAccessCookie(why) | Refusal::RefreshRefused(why) => {
                why.to_owned()
            }
            Refusal::UnsupportedMediaType(expected) => {
                format!("expected a body with `Content-Type: {expected}`")
            }
            Refusal::NoRoute => "no such endpoint".to_owned(),
            Refusal::MethodNotAllowed => "this method is not allowed here".to_owned(),
            Refusal::BodyTooLarge => "the request body is too large".to_owned(),
        }
    }
}

#[derive(Debug)]
enum Failure {
    Domain(DomainError),
    Store(StoreError),
    Refused(Refusal),
    /// A failure of our own, its cause logged where it happened.
    Internal,
}

/// Every handler's error. `bearer` marks failures caused by the presented bearer token,
/// which add `WWW-Authenticate` (RFC 6750).
#[derive(Debug)]
pub struct ApiError {
    failure: Failure,
    bearer: bool,
}

impl ApiError {
    fn new(failure: Failure) -> Self {
        Self {
            failure,
            bearer: false,
        }
    }

    /// A failure of our own (a panic, an answer that would not serialise): 500 with a
    /// fixed text, the cause logged where it happened and never echoed.
    pub fn internal() -> Self {
        Self::new(Failure::Internal)
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

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::new(Failure::Refused(refusal))
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::new(Failure::Domain(e))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::new(match e {
            ServiceError::Domain(d) => Failure::Domain(d),
            ServiceError::Store(s) => Failure::Store(s),
        })
    }
}

impl ApiError {
    fn into_problem(self) -> (StatusCode, Problem, Option<u64>, Option<(String, String)>) {
        let mut extra = serde_json::Map::new();
        let mut retry_after = None;
        let mut rate_headers = None;
        let (status, code, detail) = match self.failure {
            Failure::Domain(e) => {
                let code = e.code();
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
                (code.status(), code, e.to_string())
            }
            Failure::Store(StoreError::Conflict(what)) => {
                let code = Code::Conflict;
                (code.status(), code, format!("{what} already exists"))
            }
            Failure::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(error = %cause, "storage unavailable");
                retry_after = Some(1);
                let code = Code::StorageUnavailable;
                (
                    code.status(),
                    code,
                    "storage is unavailable; retry shortly".to_owned(),
                )
            }
            Failure::Store(other) => {
                tracing::error!(error = %other, "storage failure");
                internal_error()
            }
            Failure::Internal => internal_error(),
            Failure::Refused(refusal) => {
                let status = refusal.status().as_u16();
                (status, refusal.code(), refusal.detail())
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let problem = Problem {
            kind: format!(
                "urn:sessiond:problem:{}",
                code.as_str().to_ascii_lowercase()
            ),
            title: code.title(),
            status: status.as_u16(),
            code,
            detail,
            instance: request_id::current().map(|id| format!("urn:sessiond:request:{id}")),
            extra,
        };
        (status, problem, retry_after, rate_headers)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(None)
    }
}

impl ApiError {
    /// The problem answered with `status` (in the status line and the body) whatever its
    /// code's own: for the forward-auth check, which answers only 200 or 401.
    pub fn into_response_as(self, status: StatusCode) -> Response {
        self.respond(Some(status))
    }

    fn respond(self, status_override: Option<StatusCode>) -> Response {
        let bearer = self.bearer;
        let (mut status, mut problem, retry_after, rate_headers) = self.into_problem();
        // Every refusal by its code: token checks, logins and refreshes answer their
        // failures here (successes are `sessiond_http_requests_total` by route).
        metrics::counter!("sessiond_problems_total", "code" => problem.code.as_str()).increment(1);
        if let Some(forced) = status_override {
            status = forced;
            problem.status = forced.as_u16();
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if bearer && status == StatusCode::UNAUTHORIZED {
            let challenge = if problem.code == Code::TokenNotProvided {
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

fn internal_error() -> (u16, Code, String) {
    let code = Code::InternalError;
    (code.status(), code, "an internal error occurred".to_owned())
}

/// Fallback for unknown paths.
pub async fn route_not_found() -> ApiError {
    Refusal::NoRoute.into()
}

/// Fallback for a known path with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    Refusal::MethodNotAllowed.into()
}
