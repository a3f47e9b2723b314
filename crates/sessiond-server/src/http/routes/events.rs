//! The audit log, with the admin API key.

use axum::Json;
use axum::extract::State;
use sessiond_core::{DomainError, EventType, SessionId, UserId};
use sessiond_store::EventQuery;

use crate::AppState;
use crate::http::dto::{EventListQuery, EventPageView, EventView};
use crate::http::extract::{AdminKey, ApiQuery};
use crate::http::problem::ApiError;
use crate::service::events::MAX_EVENTS_PAGE;

/// Events after a cursor, oldest first: every filter given must hold.
#[utoipa::path(get, path = "/v1/admin/events", tag = "admin",
    security(("admin_key" = [])),
    params(EventListQuery),
    responses(
        (status = 200, body = EventPageView),
        (status = 400, description = "`VALIDATION_ERROR`: a query that does not parse"),
        (status = 422, description = "`VALIDATION_ERROR`: an unknown type, a limit out of range"),
    ))]
pub async fn list_events(
    State(state): State<AppState>,
    _admin: AdminKey,
    ApiQuery(query): ApiQuery<EventListQuery>,
) -> Result<Json<EventPageView>, ApiError> {
    let kind = query
        .r#type
        .map(|t| {
            EventType::parse(&t)
                .ok_or_else(|| DomainError::invalid_field("type", "is not an event type"))
        })
        .transpose()?;
    let after = query.after.unwrap_or(0);
    let after = u64::try_from(after)
        .map_err(|_| DomainError::invalid_field("after", "must be 0 or more"))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(DomainError::invalid_field("limit", "must be between 1 and 500").into());
    }
    let events = state
        .service
        .events(EventQuery {
            after,
            kind: kind.map(|k| k.as_str().to_owned()),
            user_id: query.user_id.map(UserId::from_uuid),
            session_id: query.session_id.map(SessionId::from_uuid),
            limit,
        })
        .await?;
    let full = events.len() == limit as usize;
    let next_cursor = events.last().filter(|_| full).map(|e| e.seq);
    Ok(Json(EventPageView {
        events: events.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}
