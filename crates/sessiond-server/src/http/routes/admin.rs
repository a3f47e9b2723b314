//! Trusted backends, with the admin API key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_core::{DomainError, SessionId, UserId, fields};
use uuid::Uuid;

use crate::AppState;
use crate::http::dto::{
    AdminSessionRequest, CleanupResult, IdentityView, PatchUserRequest, RevokedCount, SessionList,
    SessionView, TokenResponse, UserDetailView, UserListQuery, UserPageView, UserView,
};
use crate::http::extract::{AdminKey, ApiJson, ApiPath, ApiQuery, ClientInfo};
use crate::http::problem::ApiError;
use crate::service::users::{MAX_USERS_PAGE, UserEdit, UserSearch};

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

/// Find users: every filter given must hold; ordered by id, in pages.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin",
    security(("admin_key" = [])),
    params(UserListQuery),
    responses(
        (status = 200, body = UserPageView),
        (status = 422, description = "`VALIDATION_ERROR`: a bad filter or cursor"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> Result<Json<UserPageView>, ApiError> {
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 256) {
        return Err(DomainError::invalid_field("q", "must be at most 256 characters").into());
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_USERS_PAGE).contains(&limit) {
        return Err(DomainError::invalid_field("limit", "must be between 1 and 200").into());
    }
    let page = state
        .service
        .list_users(UserSearch {
            email: query.email,
            q: query.q,
            active: query.active,
            email_verified: query.email_verified,
            cursor: query.cursor.map(UserId::from_uuid),
            limit,
        })
        .await?;
    Ok(Json(UserPageView {
        users: page.users.iter().map(UserView::from).collect(),
        next_cursor: page.next_cursor.map(|id| id.as_uuid()),
    }))
}

/// One user: its profile, how it signs in, its live sessions and last activity.
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = UserDetailView), (status = 404, description = "`NOT_FOUND`: no such user")))]
pub async fn get_user(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<UserDetailView>, ApiError> {
    let detail = state.service.user_detail(UserId::from_uuid(id)).await?;
    Ok(Json(UserDetailView {
        user: UserView::from(&detail.user),
        has_password: detail.has_password,
        identities: detail
            .identities
            .into_iter()
            .map(|i| IdentityView {
                provider: i.provider,
                external_id: i.external_id,
                created_at: i.created_at,
            })
            .collect(),
        session_count: detail.live_sessions,
        last_active_at: detail.last_active_at,
    }))
}

/// Change a user: name, email, whether it is active, whether its email is verified.
/// Deactivation ends all its sessions at once (`user_deactivated`).
#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = PatchUserRequest,
    responses(
        (status = 200, body = UserView),
        (status = 404, description = "`NOT_FOUND`: no such user"),
        (status = 409, description = "`CONFLICT`: another user has the email"),
        (status = 422, description = "`VALIDATION_ERROR`"),
    ))]
pub async fn patch_user(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    let name = match body.name {
        Some(name) => Some(fields::display_name(name)?),
        None => None,
    };
    let user = state
        .service
        .edit_user(
            UserId::from_uuid(id),
            UserEdit {
                name,
                email: body.email,
                active: body.active,
                email_verified: body.email_verified,
            },
        )
        .await?;
    Ok(Json(UserView::from(&user)))
}

/// Erase a user (GDPR): its sessions end at once everywhere (`user_deleted`, in the
/// revocation feed too), then the user, its sessions, refresh tokens, identities and
/// codes are deleted.
#[utoipa::path(delete, path = "/v1/admin/users/{id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 204, description = "Erased"), (status = 404, description = "`NOT_FOUND`: no such user")))]
pub async fn delete_user(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_user(UserId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
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
