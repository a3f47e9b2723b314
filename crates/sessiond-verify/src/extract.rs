//! An axum extractor: put a [`Verifier`] in the router's state (or make it reachable
//! with `FromRef`), and take [`VerifiedToken`] in a handler to require a good token.
//! Refusals answer sessiond's problem+json with the same code.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier, VerifyError};

/// The claims of the request's valid bearer token.
pub struct VerifiedToken(pub Claims);

/// A refused request.
pub struct Refused(Option<VerifyError>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self.0 {
            Some(e) => (e.status(), e.code(), e.to_string()),
            None => (401, "TOKEN_NOT_PROVIDED", "no bearer token".to_owned()),
        };
        let body = serde_json::json!({
            "type": format!("urn:sessiond:problem:{}", code.to_ascii_lowercase()),
            "title": detail,
            "status": status,
            "code": code,
            "revoked_reason": match &self.0 {
                Some(VerifyError::SessionRevoked { reason }) => Some(reason.clone()),
                _ => None,
            },
        });
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
        (
            status,
            [
                (header::CONTENT_TYPE, "application/problem+json"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            body.to_string(),
        )
            .into_response()
    }
}

impl<S> FromRequestParts<S> for VerifiedToken
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Refused(None))?;
        let verifier = Verifier::from_ref(state);
        verifier
            .verify(token.trim())
            .await
            .map(VerifiedToken)
            .map_err(|e| Refused(Some(e)))
    }
}
