//! Trusted backends, with the admin API key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_core::{SessionId, UserId, fields};
use uuid::Uuid;

use crate::AppState;
use crate::http::dto::{
    AdminSessionRequest, CleanupResult, PatchUserRequest, RevokedCount, SessionList, SessionView,
    TokenResponse, UserView,
};
use crate::http::extract::{AdminKey, ApiJson, ApiPath, ClientInfo};
use crate::http::problem::ApiError;

/// Create a session for a user the backend authenticated itself.
#[utoipa::path(post, path = "/v1/admin/sessions", tag = "admin",
    security(("admin_key" = [])),
    request_body = AdminSessionRequest,
    responses(
        (status = 201, body = TokenResponse),
        (status = 401, description = "`USER_INACTIVE`"),
        (status = 403, description = "`FORBIDDEN`"),
    ))]
pub async fn create_session(
    State(state): State<AppState>,
    _admin: AdminKey,
    client: ClientInfo,
    ApiJson(body): ApiJson<AdminSessionRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    if let Some(data) = &body.data {
        fields::session_data(data)?;
    }
    let device = client.device(body.device)?;
    let grant = state
        .service
        .admin_create_session(UserId::from_uuid(body.user_id), device, body.data)
        .await?;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

/// A user's live sessions.
#[utoipa::path(get, path = "/v1/admin/users/{id}/sessions", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = SessionList), (status = 404, description = "`NOT_FOUND`: no such user")))]
pub async fn user_sessions(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.service.user_sessions(UserId::from_uuid(id)).await?;
    Ok(Json(SessionList {
        sessions: sessions
            .iter()
            .map(|s| SessionView::new(s, false))
            .collect(),
    }))
}

/// End every session of a user.
#[utoipa::path(delete, path = "/v1/admin/users/{id}/sessions", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = RevokedCount), (status = 404, description = "`NOT_FOUND`: no such user")))]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<RevokedCount>, ApiError> {
    let revoked = state
        .service
        .admin_revoke_user_sessions(UserId::from_uuid(id))
        .await?;
    Ok(Json(RevokedCount { revoked }))
}

/// End one session.
#[utoipa::path(delete, path = "/v1/admin/sessions/{id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "`NOT_FOUND`: no such session")))]
pub async fn revoke_session(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .admin_revoke_session(SessionId::from_uuid(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Activate or deactivate a user. Deactivation revokes all its sessions.
#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = PatchUserRequest,
    responses((status = 200, body = UserView), (status = 404, description = "`NOT_FOUND`: no such user")))]
pub async fn patch_user(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    let id = UserId::from_uuid(id);
    let user = match body.active {
        Some(active) => state.service.set_user_active(id, active).await?,
        None => state.service.user(id).await?,
    };
    Ok(Json(UserView::from(&user)))
}

/// Purge sessions that ended (revoked, expired, idle) longer ago than the retention.
#[utoipa::path(post, path = "/v1/admin/cleanup", tag = "admin",
    security(("admin_key" = [])),
    responses((status = 200, body = CleanupResult)))]
pub async fn cleanup(
    State(state): State<AppState>,
    _admin: AdminKey,
) -> Result<Json<CleanupResult>, ApiError> {
    let deleted = state.service.purge_ended_sessions().await?;
    Ok(Json(CleanupResult { deleted }))
}
