//! The person's own account, with the current session's access token: password change,
//! email verification and change. And the password reset, which has no session.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::http::dto::{
    ChangePasswordRequest, CodeConfirmRequest, EmailChangeRequest, OtpChallengeResponse,
    PasswordResetConfirmRequest, PasswordResetRequest, TokenResponse, UserView,
};
use crate::http::extract::{ApiJson, ClientInfo, CurrentSession, Limited, LoginGroup, Transport};
use crate::http::problem::ApiError;
use crate::http::web::answer::TokenAnswer;
use crate::service::accounts::ResetConfirmation;
use crate::service::otp::IssuedChallenge;

fn accepted(issued: IssuedChallenge) -> (StatusCode, Json<OtpChallengeResponse>) {
    (
        StatusCode::ACCEPTED,
        Json(OtpChallengeResponse {
            challenge_id: issued.challenge_id,
            expires_in: issued.expires_in,
        }),
    )
}

/// Change the password. Every other session of the user ends (`password_changed`);
/// this one stays.
#[utoipa::path(post, path = "/v1/session/password", tag = "account",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "`INVALID_CREDENTIALS`: the current password is wrong; `TOKEN_*`, `SESSION_*`"),
        (status = 422, description = "`VALIDATION_ERROR`: the new password breaks a rule (`errors[].reason`)"),
        (status = 429, description = "`RATE_LIMITED`: too many wrong current passwords"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    client: ClientInfo,
    CurrentSession(auth): CurrentSession,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .change_password(&auth, body.current_password, body.new_password, client.ip)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a password reset code.
///
/// The same answer, after the same time, whether or not the address has an account
/// (unknown and deactivated addresses get no mail).
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "account",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "A code was mailed if the address has an account", body = OtpChallengeResponse),
        (status = 422, description = "`VALIDATION_ERROR`"),
        (status = 429, description = "`RATE_LIMITED`: per IP, per address, or the resend cooldown"),
        (status = 503, description = "`UPSTREAM_UNAVAILABLE`: the mail could not be sent"),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<(StatusCode, Json<OtpChallengeResponse>), ApiError> {
    let device = client.device(body.device)?;
    let issued = state
        .service
        .request_password_reset(&body.email, device)
        .await?;
    Ok(accepted(issued))
}

/// Set a new password with a mailed reset code, and log in.
///
/// Every earlier session of the user ends (`password_reset`). A new password that breaks
/// a rule leaves the code good for another try.
#[utoipa::path(post, path = "/v1/auth/password/reset/confirm", tag = "account",
    request_body = PasswordResetConfirmRequest,
    responses(
        (status = 200, description = "Password set, logged in", body = TokenResponse),
        (status = 401, description = "`OTP_INVALID`, `OTP_EXPIRED`, `USER_INACTIVE`"),
        (status = 422, description = "`VALIDATION_ERROR`: the new password breaks a rule (`errors[].reason`)"),
        (status = 429, description = "`OTP_ATTEMPTS_EXCEEDED` or `RATE_LIMITED`"),
    ))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    transport: Transport,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasswordResetConfirmRequest>,
) -> Result<TokenAnswer, ApiError> {
    let device = body.device.map(|d| client.device(Some(d))).transpose()?;
    let grant = state
        .service
        .confirm_password_reset(
            ResetConfirmation {
                challenge_id: body.challenge_id,
                code: body.code,
                new_password: body.new_password,
            },
            device,
            client.ip,
        )
        .await?;
    Ok(TokenAnswer::ok(grant, transport))
}

/// Mail a code to the account's address, to prove it.
#[utoipa::path(post, path = "/v1/session/email/verify", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A code was mailed", body = OtpChallengeResponse),
        (status = 403, description = "`FORBIDDEN`: an anonymous session has no account"),
        (status = 409, description = "`CONFLICT`: the account has no email address"),
        (status = 429, description = "`RATE_LIMITED`: per address, or the resend cooldown"),
        (status = 503, description = "`UPSTREAM_UNAVAILABLE`: the mail could not be sent"),
    ))]
pub async fn request_email_verification(
    State(state): State<AppState>,
    CurrentSession(auth): CurrentSession,
) -> Result<(StatusCode, Json<OtpChallengeResponse>), ApiError> {
    let issued = state.service.request_email_verification(&auth).await?;
    Ok(accepted(issued))
}

/// Redeem an email verification code: the address is proven.
#[utoipa::path(post, path = "/v1/session/email/verify/confirm", tag = "account",
    security(("bearer" = [])),
    request_body = CodeConfirmRequest,
    responses(
        (status = 200, description = "The user, `email_verified: true`", body = UserView),
        (status = 401, description = "`OTP_INVALID`, `OTP_EXPIRED`; `TOKEN_*`, `SESSION_*`"),
        (status = 403, description = "`FORBIDDEN`: an anonymous session has no account"),
        (status = 429, description = "`OTP_ATTEMPTS_EXCEEDED`"),
    ))]
pub async fn confirm_email_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    CurrentSession(auth): CurrentSession,
    ApiJson(body): ApiJson<CodeConfirmRequest>,
) -> Result<Json<UserView>, ApiError> {
    let user = state
        .service
        .confirm_email_verification(&auth, &body.challenge_id, &body.code, client.ip)
        .await?;
    Ok(Json(UserView::from(&user)))
}

/// Start moving the account to another address: a code is mailed there.
#[utoipa::path(post, path = "/v1/session/email", tag = "account",
    security(("bearer" = [])),
    request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "A code was mailed to the new address", body = OtpChallengeResponse),
        (status = 403, description = "`FORBIDDEN`: an anonymous session has no account"),
        (status = 409, description = "`CONFLICT`: another user has the address"),
        (status = 422, description = "`VALIDATION_ERROR`"),
        (status = 429, description = "`RATE_LIMITED`: per address, or the resend cooldown"),
        (status = 503, description = "`UPSTREAM_UNAVAILABLE`: the mail could not be sent"),
    ))]
pub async fn request_email_change(
    State(state): State<AppState>,
    CurrentSession(auth): CurrentSession,
    ApiJson(body): ApiJson<EmailChangeRequest>,
) -> Result<(StatusCode, Json<OtpChallengeResponse>), ApiError> {
    let issued = state
        .service
        .request_email_change(&auth, &body.email)
        .await?;
    Ok(accepted(issued))
}

/// Redeem an email change code: the account takes the new address (verified), and the
/// old address is told of the change.
#[utoipa::path(post, path = "/v1/session/email/confirm", tag = "account",
    security(("bearer" = [])),
    request_body = CodeConfirmRequest,
    responses(
        (status = 200, description = "The user with its new address", body = UserView),
        (status = 401, description = "`OTP_INVALID`, `OTP_EXPIRED`; `TOKEN_*`, `SESSION_*`"),
        (status = 403, description = "`FORBIDDEN`: an anonymous session has no account"),
        (status = 409, description = "`CONFLICT`: another user took the address meanwhile"),
        (status = 429, description = "`OTP_ATTEMPTS_EXCEEDED`"),
    ))]
pub async fn confirm_email_change(
    State(state): State<AppState>,
    client: ClientInfo,
    CurrentSession(auth): CurrentSession,
    ApiJson(body): ApiJson<CodeConfirmRequest>,
) -> Result<Json<UserView>, ApiError> {
    let user = state
        .service
        .confirm_email_change(&auth, &body.challenge_id, &body.code, client.ip)
        .await?;
    Ok(Json(UserView::from(&user)))
}
