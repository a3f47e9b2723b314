//! Refresh, validate and introspect.

use crate::http::json::JsonBody;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};

use crate::AppState;
use crate::http::dto::{
    IntrospectRequest, IntrospectResponse, RefreshRequest, TokenResponse, ValidateRequest,
    ValidateResponse,
};
use axum::response::{IntoResponse, Response};

use crate::http::extract::{ApiBytes, ApiJson, Limited, Transport, ValidateGroup, VerifierKey};
use crate::http::problem::{ApiError, Refusal};
use crate::http::web::answer::{TokenAnswer, clear_cookies};
use crate::http::web::cookies::{self, Found};
use crate::http::web::csrf;
use crate::service::{Service, Validation};

/// Exchange a refresh token for a new access token and the rotated refresh token.
///
/// Within the grace window after a rotation, presenting the previous token again answers
/// with the same successor refresh token; after it, the whole session is revoked.
#[utoipa::path(post, path = "/v1/token/refresh", tag = "tokens",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated pair", body = TokenResponse),
        (status = 401, description = "`REFRESH_TOKEN_INVALID`, `REFRESH_TOKEN_EXPIRED`, `REFRESH_TOKEN_REUSED`, `SESSION_*`, `USER_INACTIVE`"),
        (status = 429, description = "`RATE_LIMITED`: refreshes per session"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    transport: Transport,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Response {
    let web = &state.web;
    // The body's token wins; without one, the refresh cookie is read, and a token read
    // from a cookie is only ever answered in cookies.
    let (token, transport) = match body.refresh_token {
        Some(token) => (token, transport),
        None => match cookies::find(&headers, web.cookies.refresh) {
            Found::One(token) => {
                if !transport.is_cookie()
                    && let Err(csrf::Rejected(why)) = csrf::check(&headers, web)
                {
                    return ApiError::from(Refusal::Csrf(why)).into_response();
                }
                (token.to_owned(), Transport::Cookie(web.clone()))
            }
            Found::Absent => {
                let refused = Refusal::RefreshRefused(
                    "no refresh token: neither `refresh_token` in the body nor the refresh cookie",
                );
                return ApiError::from(refused).into_response();
            }
            Found::Several => {
                let refused = Refusal::RefreshRefused(
                    "the request carries the refresh cookie more than once (a stale cookie \
                     of another path or domain?); none of them is used, ours is cleared",
                );
                return clear_cookies(ApiError::from(refused).into_response(), web);
            }
            Found::Unreadable => {
                let refused = Refusal::RefreshRefused("the refresh cookie does not hold a token");
                return clear_cookies(ApiError::from(refused).into_response(), web);
            }
        },
    };
    match state.service.refresh(&token).await {
        Ok(grant) => TokenAnswer::ok(grant, transport).into_response(),
        Err(e) => {
            let response = ApiError::from(e).into_response();
            // A terminal failure (401) ends the cookies too; a 429 or 503 is retried.
            match transport {
                Transport::Cookie(web) if response.status() == StatusCode::UNAUTHORIZED => {
                    clear_cookies(response, &web)
                }
                _ => response,
            }
        }
    }
}

/// Say whether an access or refresh token is usable now. Changes nothing and does not
/// count as activity.
#[utoipa::path(post, path = "/v1/token/validate", tag = "tokens",
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "The verdict", body = ValidateResponse),
        (status = 429, description = "`RATE_LIMITED`"),
    ))]
pub async fn validate(
    State(state): State<AppState>,
    _limit: Limited<ValidateGroup>,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> Result<JsonBody<ValidateResponse>, ApiError> {
    let answer = match state.service.validate(&body.token).await? {
        Validation::Valid {
            token_type,
            session_id,
            user_id,
            expires_at,
        } => ValidateResponse {
            valid: true,
            token_type: Some(token_type),
            session_id: Some(session_id.as_uuid()),
            user_id: Some(user_id.map(|u| u.as_uuid())),
            expires_at: Some(expires_at),
            reason: None,
            revoked_reason: None,
        },
        Validation::Invalid { reason } => ValidateResponse {
            valid: false,
            token_type: None,
            session_id: None,
            user_id: None,
            expires_at: None,
            reason: Some(reason.code().as_str()),
            revoked_reason: Service::revoked_reason(&reason).map(|r| r.as_str()),
        },
    };
    Ok(JsonBody(answer))
}

/// RFC 7662 token introspection for trusted backends (admin API key).
///
/// Accepts a JSON body or, as RFC 7662 specifies, `application/x-www-form-urlencoded`.
#[utoipa::path(post, path = "/v1/introspect", tag = "tokens",
    request_body = IntrospectRequest,
    security(("verifier_key" = [])),
    responses(
        (status = 200, description = "`{active: false}` for any unusable token", body = IntrospectResponse),
    ))]
pub async fn introspect(
    State(state): State<AppState>,
    _verifier: VerifierKey,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<JsonBody<IntrospectResponse>, ApiError> {
    let token = introspected_token(&headers, &body)?;
    let Some(found) = state.service.introspect(&token).await? else {
        return Ok(JsonBody(IntrospectResponse::default()));
    };
    let audience = state.service.audience();
    Ok(JsonBody(IntrospectResponse {
        active: true,
        token_type: Some(found.token_type),
        sub: found.session.user_id.map(|u| u.to_string()),
        sid: Some(found.session.id.to_string()),
        exp: Some(found.expires_at.timestamp()),
        iat: Some(found.issued_at.timestamp()),
        amr: Some(vec![found.session.auth_method.as_string()]),
        iss: Some(audience.issuer.clone()),
        aud: Some(audience.audience.clone()),
        jti: found.jti,
        username: found
            .user
            .and_then(|u| u.email.clone())
            .map(|e| e.as_str().to_owned()),
    }))
}

fn introspected_token(headers: &HeaderMap, body: &Bytes) -> Result<String, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = match content_type.as_str() {
        "application/json" => {
            axum::Json::<IntrospectRequest>::from_bytes(body)
                .map_err(|e| match e.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => Refusal::InvalidBody(e.body_text()),
                    _ => Refusal::MalformedBody(e.body_text()),
                })?
                .0
                .token
        }
        "application/x-www-form-urlencoded" => {
            serde_urlencoded::from_bytes::<IntrospectRequest>(body)
                .map_err(|e| Refusal::MalformedBody(e.to_string()))?
                .token
        }
        _ => {
            return Err(Refusal::UnsupportedMediaType(
                "application/json` or `application/x-www-form-urlencoded",
            )
            .into());
        }
    };
    Ok(token)
}
