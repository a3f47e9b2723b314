//! Login by a partner app's token.

use axum::extract::State;

use crate::AppState;
use crate::http::dto::{ExchangeRequest, TokenResponse};
use crate::http::extract::{ApiJson, ClientInfo, Limited, LoginGroup, MaybeBearer, Transport};
use crate::http::problem::ApiError;
use crate::http::web::answer::TokenAnswer;

/// Exchange a token for a session: a partner app's user token once the named provider's
/// identity API vouched for it, or an ID token of an `oidc` provider (Sign in with
/// Apple/Google) once its signature, issuer, audience, lifetime and nonce checked out.
#[utoipa::path(post, path = "/v1/auth/exchange", tag = "login",
    request_body = ExchangeRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`UPSTREAM_REJECTED`: the provider refused the token, or the ID token failed a check (the detail names it: signature, issuer, audience, expired, nonce, already used); `USER_INACTIVE`"),
        (status = 422, description = "`VALIDATION_ERROR`: unknown provider, empty token, a missing nonce the provider requires"),
        (status = 429, description = "`UPSTREAM_RATE_LIMITED` (with the provider's `Retry-After`) or `RATE_LIMITED`"),
        (status = 503, description = "`UPSTREAM_UNAVAILABLE`: the provider failed, timed out or answered garbage; an `oidc` provider's keys could not be fetched and none cached fits"),
    ))]
pub async fn exchange_token(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    transport: Transport,
    MaybeBearer(bearer): MaybeBearer,
    client: ClientInfo,
    ApiJson(body): ApiJson<ExchangeRequest>,
) -> Result<TokenAnswer, ApiError> {
    let device = client.device(body.device)?;
    let upgrade = state.service.upgrade_candidate(bearer.as_deref());
    let grant = state
        .service
        .exchange(
            &body.provider,
            &body.token,
            body.nonce.as_deref(),
            device,
            upgrade,
        )
        .await?;
    Ok(TokenAnswer::ok(grant, transport))
}
