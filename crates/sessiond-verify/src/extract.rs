//! An axum extractor: put a [`Verifier`] in the router's state (or make it reachable
//! with `FromRef`), and take [`VerifiedToken`] in a handler to require a good token.
//! Refusals answer sessiond's problem+json with the same code (see [`Refused`]).

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

pub use crate::Refused;
use crate::{Claims, Verifier, refusal};

/// The claims of the request's valid bearer token.
pub struct VerifiedToken(pub Claims);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.into_http()
    }
}

impl<S> FromRequestParts<S> for VerifiedToken
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = refusal::bearer(&parts.headers).ok_or_else(Refused::not_provided)?;
        let verifier = Verifier::from_ref(state);
        verifier
            .verify(token)
            .await
            .map(VerifiedToken)
            .map_err(Refused::from)
    }
}
