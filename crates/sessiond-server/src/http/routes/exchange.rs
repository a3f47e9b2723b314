//! Login by a partner app's token.

use axum::extract::State;

use crate::AppState;
use crate::http::dto::{ExchangeRequest, TokenResponse};
use crate::http::extract::{ApiJson, ClientInfo, Limited, LoginGroup, MaybeBearer, Transport};
use crate::http::problem::ApiError;
use crate::http::web::answer::TokenAnswer;

/// Exchange a partner app's user token for a session, after the named provider's
/// identity API vouched for it.
#[utoipa::path(post, path = "/v1/auth/exchange", tag = "login",
    request_body = ExchangeRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`UPSTREAM_REJECTED`: the provider refused the token; `USER_INACTIVE`"),
        (status = 422, description = "`VALIDATION_ERROR`: unknown provider, empty token"),
        (status = 429, description = "`UPSTREAM_RATE_LIMITED` (with the provider's `Retry-After`) or `RATE_LIMITED`"),
        (status = 503, description = "`UPSTREAM_UNAVAILABLE`: the provider failed, timed out or answered garbage"),
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
        .exchange(&body.provider, &body.token, device, upgrade)
        .await?;
    Ok(TokenAnswer::ok(grant, transport))
}
