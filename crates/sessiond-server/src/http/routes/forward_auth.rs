//! Forward-auth for reverse proxies (nginx `auth_request`, Traefik ForwardAuth, Caddy
//! `forward_auth`, Envoy `ext_authz`).

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;
use crate::http::extract::access_credential;
use crate::http::problem::ApiError;
use crate::http::web::IdentityHeaders;
use crate::service::Authenticated;

/// Check a request for a reverse proxy: the bearer token or the access cookie.
///
/// `200` with the identity headers, or `401`; never another status (nginx turns anything
/// but 2xx, 401 and 403 into a 500), never a redirect, never `Set-Cookie`. Every failure,
/// storage unavailable included, is a `401` whose problem `code` names the cause: the
/// proxy refuses the request (fails closed) and the client may retry. The identity
/// headers are on every answer, empty when there is no user, so a proxy that copies them
/// to the upstream request overwrites any copy the client sent. Same checks, revocation
/// and activity as every authenticated request.
#[utoipa::path(get, path = "/v1/auth/check", tag = "forward-auth",
    security(("bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "Allowed; the identity headers name the caller",
            headers(
                ("X-Sessiond-User" = String, description = "The user id; empty for an anonymous session (name: `web.user_header`)"),
                ("X-Sessiond-Session" = String, description = "The session id (name: `web.session_header`)"),
                ("X-Sessiond-Amr" = String, description = "How the session was authenticated: `pwd`, `otp`, `exchange:<provider>`, `anon`, `admin` (name: `web.amr_header`)"),
                ("X-Sessiond-Anonymous" = String, description = "`true` or `false` (name: `web.anonymous_header`)"),
                ("X-Sessiond-Assertion" = String, description = "Only with `web.assertion_header` (its name): a signed identity assertion, an EdDSA JWT of `typ` `sessiond-id+jwt` (keys at `/.well-known/jwks.json`)"),
            )),
        (status = 401, description = "Refused: `TOKEN_*`, `SESSION_*`, `USER_INACTIVE`, or (failing closed) `STORAGE_UNAVAILABLE`; the identity headers are present and empty"),
    ))]
pub async fn check(State(state): State<AppState>, parts: Parts) -> Response {
    let identity = &state.web.identity;
    let outcome = match access_credential(&parts, &state.web) {
        Ok(Some(credential)) => state
            .service
            .authenticate(credential.token(), true)
            .await
            .map_err(ApiError::from_bearer),
        Ok(None) => Err(ApiError::from_bearer(
            sessiond_core::DomainError::TokenNotProvided,
        )),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(auth) => {
            let mut response = StatusCode::OK.into_response();
            allowed(response.headers_mut(), identity, &auth);
            if let Some((name, ttl)) = &identity.assertion {
                let assertion = assertion(&state, &auth, *ttl);
                if let Ok(value) = HeaderValue::from_str(&assertion) {
                    response.headers_mut().insert(name.clone(), value);
                }
            }
            response
        }
        Err(e) => {
            let mut response = e.into_response_as(StatusCode::UNAUTHORIZED);
            refused(response.headers_mut(), identity);
            response
        }
    }
}

fn allowed(headers: &mut HeaderMap, names: &IdentityHeaders, auth: &Authenticated) {
    let session = &auth.session;
    let user = session.user_id.map(|u| u.to_string()).unwrap_or_default();
    let values = [
        (&names.user, user),
        (&names.session, session.id.to_string()),
        (&names.amr, session.auth_method.as_string()),
        (
            &names.anonymous,
            if session.user_id.is_none() {
                "true"
            } else {
                "false"
            }
            .to_owned(),
        ),
    ];
    for (name, value) in values {
        let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""));
        headers.insert(name.clone(), value);
    }
}

fn refused(headers: &mut HeaderMap, names: &IdentityHeaders) {
    let assertion = names.assertion.as_ref().map(|(name, _)| name);
    for name in [&names.user, &names.session, &names.amr, &names.anonymous]
        .into_iter()
        .chain(assertion)
    {
        headers.insert(name.clone(), HeaderValue::from_static(""));
    }
}

/// The claims of a signed identity assertion.
#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    sid: String,
    amr: Vec<String>,
    iat: i64,
    exp: i64,
}

/// The `typ` of identity assertions: never `at+jwt`, so never usable as an access token.
pub const ASSERTION_TYP: &str = "sessiond-id+jwt";

fn assertion(state: &AppState, auth: &Authenticated, ttl: std::time::Duration) -> String {
    let audience = state.service.audience();
    let now = state.service.now().timestamp();
    let session = &auth.session;
    let claims = Assertion {
        iss: &audience.issuer,
        aud: &audience.audience,
        sub: session.user_id.map(|u| u.to_string()),
        sid: session.id.to_string(),
        amr: vec![session.auth_method.as_string()],
        iat: now,
        exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
    };
    state.service.keys().sign_typed(ASSERTION_TYP, &claims)
}
