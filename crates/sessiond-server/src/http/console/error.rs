//! Every way a console request fails, each answered as an HTML page (never a bare 500 or
//! a JSON problem): the console is for people.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use sessiond_core::DomainError;

use super::layout;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No (live) console session: to the sign-in page.
    #[error("sign-in required")]
    SignInRequired,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    #[error("request body too large")]
    TooLarge,
    /// Storage or another dependency failed; logged, never shown in detail.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<ServiceError> for ConsoleError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => d.into(),
            ServiceError::Store(s) => ConsoleError::Unavailable(s.to_string()),
        }
    }
}

impl From<DomainError> for ConsoleError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => ConsoleError::NotFound,
            DomainError::Conflict(m) => ConsoleError::Conflict(m),
            DomainError::RateLimited {
                retry_after_secs, ..
            } => ConsoleError::RateLimited { retry_after_secs },
            DomainError::Validation(errors) => ConsoleError::BadInput(
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => ConsoleError::BadInput(other.to_string()),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            ConsoleError::SignInRequired => {
                return Redirect::to("/admin/sign-in").into_response();
            }
            ConsoleError::Forbidden(why) => (StatusCode::FORBIDDEN, "Refused", (*why).to_owned()),
            ConsoleError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here: the address is wrong, or what it named was erased."
                    .to_owned(),
            ),
            ConsoleError::BadInput(why) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "Bad input", why.clone())
            }
            ConsoleError::Conflict(why) => (StatusCode::CONFLICT, "Conflict", why.clone()),
            ConsoleError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!(
                    "Too many failed sign-ins from this address. Try again in {retry_after_secs} s."
                ),
            ),
            ConsoleError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form sent was too large.".to_owned(),
            ),
            ConsoleError::Unavailable(cause) => {
                tracing::error!(error = %cause, "console page failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "Storage did not answer; try again shortly. The server log has the cause."
                        .to_owned(),
                )
            }
        };
        let body = html! {
            h1 { (title) }
            p class="error" role="alert" { (text) }
            p { a href="/admin" { "Back to the console" } }
        };
        let mut response = (status, layout::bare(title, body)).into_response();
        if let ConsoleError::RateLimited { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;
