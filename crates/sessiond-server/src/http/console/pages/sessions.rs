//! One session: its facts, why and by whom it ended, and its timeline of events.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use sessiond_core::SessionId;
use sessiond_store::EventQuery;

use super::id;
use super::users::{Empty, device, session_state};
use crate::AppState;
use crate::http::console::error::{ConsoleError, ConsoleResult};
use crate::http::console::guard::{Post, Signed};
use crate::http::console::layout::{self, Section, action, or_dash, when};
use crate::service::events::MAX_EVENTS_PAGE;

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
) -> ConsoleResult<Response> {
    let sid = SessionId::from_uuid(id(&raw)?);
    let (session, user) = state
        .service
        .store()
        .session_with_user(sid)
        .await
        .map_err(|e| ConsoleError::Unavailable(e.to_string()))?
        .ok_or(ConsoleError::NotFound)?;
    let now = state.service.now();
    let info = state.service.info(session, None);
    let events = state
        .service
        .events(EventQuery {
            session_id: Some(sid),
            limit: MAX_EVENTS_PAGE,
            ..EventQuery::default()
        })
        .await?;
    let s = &info.session;
    let live = s.revoked_at.is_none() && s.expires_at > now && info.idle_expires_at > now;
    let ended_by = s.revoked_reason.map(|r| r.initiator().as_str());
    let body = html! {
        section aria-labelledby="facts" {
        h2 id="facts" { "Facts" }
        dl class="facts" {
            dt { "Id" } dd { code { (s.id) } }
            dt { "User" } dd {
                @match &user {
                    Some(u) => a href=(format!("/admin/users/{}", u.id)) { @match &u.email { Some(e) => (e.as_str()), None => (u.id) } },
                    None => span class="muted" { "anonymous" },
                }
            }
            dt { "Method" } dd { (s.auth_method.as_string()) }
            dt { "Device" } dd { (device(&info)) }
            dt { "Device id" } dd { (or_dash(s.device.device_id.as_deref())) }
            dt { "IP" } dd { (or_dash(s.device.ip.as_deref())) }
            dt { "Created" } dd { (when(s.created_at)) }
            dt { "Last active" } dd { (when(s.last_active_at)) }
            dt { "Idle deadline" } dd { (when(info.idle_expires_at)) }
            dt { "Absolute end" } dd { (when(s.expires_at)) }
            dt { "State" } dd { (session_state(&info, now)) }
            @if let (Some(reason), Some(at)) = (s.revoked_reason, s.revoked_at) {
                dt { "Ended" } dd { (when(at)) }
                dt { "Reason" } dd { code { (reason.as_str()) } }
                dt { "Initiator" } dd { (ended_by.unwrap_or("")) }
            }
        }
        @if live {
            div class="actions" {
                (action(&format!("/admin/sessions/{}/end", s.id), &signed.csrf, "End session", true, Some("End this session now? Its tokens stop working at once.")))
            }
        }
        }
        section aria-labelledby="timeline" {
            h2 id="timeline" { "Timeline" }
            @if events.is_empty() {
                p class="muted" { "No events for this session (events are kept for the retention only)." }
            } @else {
                ol class="timeline" {
                    @for e in &events {
                        li {
                            (when(e.occurred_at)) " "
                            strong { (e.kind) }
                            @if let Some(obj) = e.data.as_object() {
                                @if !obj.is_empty() { " " code class="data" { (e.data.to_string()) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(signed.answer(layout::page(Section::Users, "Session", &signed.csrf, body)))
}

pub async fn end(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Post { signed, .. }: Post<Empty>,
) -> ConsoleResult<Response> {
    let sid = SessionId::from_uuid(id(&raw)?);
    let user = state
        .service
        .store()
        .session_with_user(sid)
        .await
        .map_err(|e| ConsoleError::Unavailable(e.to_string()))?
        .and_then(|(s, _)| s.user_id);
    // What `DELETE /v1/admin/sessions/{id}` does: reason `admin`, initiator admin.
    state.service.admin_revoke_session(sid).await?;
    let to = match user {
        Some(u) => format!("/admin/users/{u}?done=ended"),
        None => format!("/admin/sessions/{sid}"),
    };
    Ok(signed.redirect(&to))
}
