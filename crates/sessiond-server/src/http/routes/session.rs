//! The calling session (access token): whoami, app data, logout, the person's sessions.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sessiond_core::SessionId;
use uuid::Uuid;

use crate::AppState;
use crate::http::dto::{
    Except, RevokeSessionsQuery, RevokedCount, SessionList, SessionView, UserView, WhoAmI,
};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentSession};
use crate::http::json::WrittenJson;
use crate::http::problem::ApiError;
use crate::http::web::answer::{clear_cookies, wants_clearing};

/// Who am I: the calling session and its user. Counts as activity.
#[utoipa::path(get, path = "/v1/session", tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, body = WhoAmI),
        (status = 401, description = "`TOKEN_*`, `SESSION_*` (with `revoked_reason`), `USER_INACTIVE`"),
    ))]
pub async fn whoami(
    State(state): State<AppState>,
    CurrentSession(auth): CurrentSession,
) -> WrittenJson<WhoAmI> {
    let (last_active_at, idle_expires_at) = state.service.activity_of(&auth.session);
    WrittenJson(WhoAmI {
        session: SessionView::of(&auth.session, last_active_at, idle_expires_at, None),
        user: auth.user.as_deref().map(UserView::from),
    })
}

/// The session's app data (a JSON object; `{}` when none was set).
#[utoipa::path(get, path = "/v1/session/data", tag = "session",
    security(("bearer" = [])),
    responses((status = 200, description = "The stored object", body = Object)))]
pub async fn get_data(
    State(state): State<AppState>,
    CurrentSession(auth): CurrentSession,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.service.session_data(&auth).await?))
}

/// Replace the session's app data with the body (a JSON object of at most 16 KiB).
#[utoipa::path(put, path = "/v1/session/data", tag = "session",
    security(("bearer" = [])),
    request_body(content = Object, description = "The new app data"),
    responses(
        (status = 200, description = "The stored object", body = Object),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`"),
        (status = 422, description = "`VALIDATION_ERROR`: not an object"),
    ))]
pub async fn put_data(
    State(state): State<AppState>,
    CurrentSession(auth): CurrentSession,
    ApiJson(data): ApiJson<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.service.set_session_data(&auth, data).await?))
}

/// End the calling session; its tokens stop working at once.
#[utoipa::path(post, path = "/v1/logout", tag = "session",
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentSession(auth): CurrentSession,
) -> Result<Response, ApiError> {
    state.service.logout(&auth).await?;
    Ok(ended(
        &state,
        &headers,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

/// The answer to a request that ended its own session: the token cookies cleared when
/// the request used them.
fn ended(state: &AppState, headers: &HeaderMap, response: Response) -> Response {
    if wants_clearing(headers, &state.web) {
        clear_cookies(response, &state.web)
    } else {
        response
    }
}

/// The user's live sessions, newest first; the calling one has `current: true`.
#[utoipa::path(get, path = "/v1/sessions", tag = "session",
    security(("bearer" = [])),
    responses((status = 200, body = SessionList)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    CurrentSession(auth): CurrentSession,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.service.my_sessions(&auth).await?;
    Ok(Json(SessionList {
        sessions: sessions.iter().map(|s| SessionView::new(s, true)).collect(),
    }))
}

/// End one of the user's own sessions (any other id is `NOT_FOUND`).
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "session",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`NOT_FOUND`"),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentSession(auth): CurrentSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let id = SessionId::from_uuid(id);
    state.service.revoke_my_session(&auth, id).await?;
    let response = StatusCode::NO_CONTENT.into_response();
    Ok(if id == auth.session.id {
        ended(&state, &headers, response)
    } else {
        response
    })
}

/// End the user's sessions: with `?except=current`, every other device ("log out other
/// devices"); without it, all of them including this one.
#[utoipa::path(delete, path = "/v1/sessions", tag = "session",
    security(("bearer" = [])),
    params(("except" = Option<Except>, Query, description = "`current` keeps the calling session")),
    responses((status = 200, body = RevokedCount)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentSession(auth): CurrentSession,
    ApiQuery(query): ApiQuery<RevokeSessionsQuery>,
) -> Result<Response, ApiError> {
    let keep_current = query.except == Some(Except::Current);
    let revoked = state
        .service
        .revoke_my_sessions(&auth, keep_current)
        .await?;
    let response = Json(RevokedCount { revoked }).into_response();
    Ok(if keep_current {
        response
    } else {
        ended(&state, &headers, response)
    })
}
