//! Login by emailed one-time code.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::http::dto::{OtpChallengeResponse, OtpRequest, OtpVerifyRequest, TokenResponse};
use crate::http::extract::{ApiJson, ClientInfo, Limited, LoginGroup, MaybeBearer, Transport};
use crate::http::problem::ApiError;
use crate::http::web::answer::TokenAnswer;

/// Mail a one-time code to an address.
///
/// Answers 202 whether or not the address has an account (with `otp.create_users =
/// false`, unknown addresses get no mail, after the same delay).
#[utoipa::path(post, path = "/v1/auth/otp", tag = "login",
    request_body = OtpRequest,
    responses(
        (status = 202, description = "A code was mailed", body = OtpChallengeResponse),
        (status = 422, description = "`VALIDATION_ERROR`"),
        (status = 429, description = "`RATE_LIMITED`: per IP, per address, or the resend cooldown"),
        (status = 503, description = "`UPSTREAM_UNAVAILABLE`: the mail could not be sent"),
    ))]
pub async fn request_code(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    client: ClientInfo,
    ApiJson(body): ApiJson<OtpRequest>,
) -> Result<(StatusCode, Json<OtpChallengeResponse>), ApiError> {
    let device = client.device(body.device)?;
    let issued = state.service.request_otp(&body.email, device).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(OtpChallengeResponse {
            challenge_id: issued.challenge_id,
            expires_in: issued.expires_in,
        }),
    ))
}

/// Redeem a one-time code for a session.
///
/// A valid anonymous session's access token in `Authorization` is upgraded in place.
#[utoipa::path(post, path = "/v1/auth/otp/verify", tag = "login",
    request_body = OtpVerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`OTP_INVALID`, `OTP_EXPIRED`, `USER_INACTIVE`"),
        (status = 429, description = "`OTP_ATTEMPTS_EXCEEDED` or `RATE_LIMITED`"),
    ))]
pub async fn verify_code(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    transport: Transport,
    MaybeBearer(bearer): MaybeBearer,
    client: ClientInfo,
    ApiJson(body): ApiJson<OtpVerifyRequest>,
) -> Result<TokenAnswer, ApiError> {
    let device = body.device.map(|d| client.device(Some(d))).transpose()?;
    let upgrade = state.service.upgrade_candidate(bearer.as_deref());
    let grant = state
        .service
        .verify_otp(&body.challenge_id, &body.code, device, client.ip, upgrade)
        .await?;
    Ok(TokenAnswer::ok(grant, transport))
}
