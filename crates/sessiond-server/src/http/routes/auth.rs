//! Logins: registration, password, anonymous sessions.

use axum::extract::State;

use sessiond_core::fields;

use crate::AppState;
use crate::http::dto::{
    AnonymousSessionRequest, PasswordLoginRequest, RegisterRequest, TokenResponse,
};
use crate::http::extract::{
    AnonymousGroup, ApiJson, ClientInfo, Limited, LoginGroup, MaybeBearer, OptionalJson, Transport,
};
use crate::http::problem::ApiError;
use crate::http::web::answer::TokenAnswer;
use crate::service::auth::Registration;

/// Register a user with email and password; logs them in.
///
/// A valid anonymous session's access token in `Authorization` is upgraded in place.
#[utoipa::path(post, path = "/v1/users", tag = "login",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = TokenResponse),
        (status = 409, description = "`CONFLICT`: the email is taken"),
        (status = 429, description = "`RATE_LIMITED`"),
        (status = 422, description = "`VALIDATION_ERROR`"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    transport: Transport,
    MaybeBearer(bearer): MaybeBearer,
    client: ClientInfo,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<TokenAnswer, ApiError> {
    let device = client.device(body.device)?;
    let upgrade = state.service.upgrade_candidate(bearer.as_deref());
    let registration = Registration {
        email: body.email,
        password: body.password,
        name: fields::display_name(body.name)?,
        device,
    };
    let grant = state.service.register(registration, upgrade).await?;
    Ok(TokenAnswer::created(grant, transport))
}

/// Log in with email and password.
///
/// Failures are identical in status, body and timing whether the account exists or not.
/// A valid anonymous session's access token in `Authorization` is upgraded in place.
#[utoipa::path(post, path = "/v1/auth/password", tag = "login",
    request_body = PasswordLoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`INVALID_CREDENTIALS` or `USER_INACTIVE`"),
        (status = 409, description = "`SESSION_LIMIT_EXCEEDED` (with `sessions`)"),
        (status = 429, description = "`RATE_LIMITED`: per client IP, or failed logins per account"),
        (status = 503, description = "`SERVICE_OVERLOADED`: too many logins at once"),
    ))]
pub async fn login_password(
    State(state): State<AppState>,
    _limit: Limited<LoginGroup>,
    transport: Transport,
    MaybeBearer(bearer): MaybeBearer,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasswordLoginRequest>,
) -> Result<TokenAnswer, ApiError> {
    let device = client.device(body.device)?;
    let upgrade = state.service.upgrade_candidate(bearer.as_deref());
    let grant = state
        .service
        .login_password(&body.email, body.password, device, client.ip, upgrade)
        .await?;
    Ok(TokenAnswer::ok(grant, transport))
}

/// Start an anonymous session for a device; a later login on it upgrades it in place.
#[utoipa::path(post, path = "/v1/sessions/anonymous", tag = "login",
    request_body(content = Option<AnonymousSessionRequest>, description = "May be omitted"),
    responses(
        (status = 201, description = "Anonymous session created (`user: null`)", body = TokenResponse),
        (status = 429, description = "`RATE_LIMITED`"),
    ))]
pub async fn create_anonymous(
    State(state): State<AppState>,
    _limit: Limited<AnonymousGroup>,
    transport: Transport,
    client: ClientInfo,
    OptionalJson(body): OptionalJson<AnonymousSessionRequest>,
) -> Result<TokenAnswer, ApiError> {
    let device = client.device(body.device)?;
    let grant = state.service.create_anonymous(device).await?;
    Ok(TokenAnswer::created(grant, transport))
}
