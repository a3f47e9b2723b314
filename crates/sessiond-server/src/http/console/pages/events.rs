//! The audit log, filterable and paged (oldest first, as the admin API pages it).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use sessiond_core::{EventType, SessionId, UserId};
use sessiond_store::EventQuery;

use super::{optional_uuid, query};
use crate::AppState;
use crate::http::console::error::{ConsoleError, ConsoleResult};
use crate::http::console::guard::Signed;
use crate::http::console::layout::{self, Section, when};

const PAGE: u32 = 50;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EventsQuery {
    r#type: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> ConsoleResult<Response> {
    let q: EventsQuery = query(raw)?;
    let kind = match q.r#type.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(
            EventType::parse(t)
                .ok_or_else(|| ConsoleError::BadInput("type is not an event type".to_owned()))?,
        ),
    };
    let user_id = optional_uuid("user_id", q.user_id.as_deref())?;
    let session_id = optional_uuid("session_id", q.session_id.as_deref())?;
    let filters = EventQuery {
        after: 0,
        kind: kind.map(|k| k.as_str().to_owned()),
        user_id: user_id.map(UserId::from_uuid),
        session_id: session_id.map(SessionId::from_uuid),
        limit: PAGE,
    };
    // Without a cursor: the latest page (what an operator looks for first).
    let latest = q.after.as_deref().map(str::trim).is_none_or(str::is_empty);
    let after = if latest {
        state.service.latest_events_cursor(&filters, PAGE).await?
    } else {
        q.after
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .parse::<u64>()
            .map_err(|_| ConsoleError::BadInput("after must be a whole number".to_owned()))?
    };
    let events = state
        .service
        .events(EventQuery { after, ..filters })
        .await?;
    let next = (!latest && events.len() == PAGE as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    let keep = |after: &str| {
        serde_urlencoded::to_string([
            ("type", kind.map_or("", |k| k.as_str())),
            (
                "user_id",
                &user_id.map(|u| u.to_string()).unwrap_or_default(),
            ),
            (
                "session_id",
                &session_id.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("after", after),
        ])
        .unwrap_or_default()
    };
    let body = html! {
        form method="get" action="/admin/events" class="filters" role="search" {
            div class="field" {
                label for="type" { "Type" }
                select id="type" name="type" {
                    option value="" { "Any" }
                    @for t in EventType::ALL {
                        option value=(t.as_str()) selected[kind == Some(t)] { (t.as_str()) }
                    }
                }
            }
            div class="field grow" {
                label for="user_id" { "User id" }
                input id="user_id" name="user_id" type="text" maxlength="36" value=[user_id.map(|u| u.to_string())] autocomplete="off";
            }
            div class="field grow" {
                label for="session_id" { "Session id" }
                input id="session_id" name="session_id" type="text" maxlength="36" value=[session_id.map(|s| s.to_string())] autocomplete="off";
            }
            button type="submit" { "Filter" }
        }
        div class="table-wrap" {
            table {
                caption {
                    @if latest { "The latest events" } @else { "Events after #" (after) }
                    " (oldest first on the page)"
                }
                thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "User" } th scope="col" { "Session" } th scope="col" { "Data" } } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (e.seq) }
                            td { (when(e.occurred_at)) }
                            td { code { (e.kind) } }
                            td { @if let Some(u) = e.user_id { a href=(format!("/admin/users/{u}")) { (short(&u.to_string())) } } }
                            td { @if let Some(s) = e.session_id { a href=(format!("/admin/sessions/{s}")) { (short(&s.to_string())) } } }
                            td { code class="data" { (e.data.to_string()) } }
                        }
                    }
                    @if events.is_empty() { tr { td colspan="6" class="muted" { "No events." } } }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if after > 0 { a href=(format!("/admin/events?{}", keep("0"))) { "Oldest" } }
            @if let Some(n) = next { a href=(format!("/admin/events?{}", keep(&n.to_string()))) rel="next" { "Newer" } }
            @if !latest { a href=(format!("/admin/events?{}", keep(""))) { "Latest" } }
        }
    };
    Ok(signed.answer(layout::page(Section::Events, "Events", &signed.csrf, body)))
}

/// The first block of a UUID, enough to tell rows apart (the link has the whole id).
fn short(id: &str) -> String {
    id.split('-').next().unwrap_or(id).to_owned() + "…"
}
