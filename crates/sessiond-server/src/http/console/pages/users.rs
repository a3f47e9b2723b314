//! Users: the search, one user with their sessions, and what an operator does to them.
//! Every action calls the same service function as the admin API route for it.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use sessiond_core::{User, UserId};

use super::{id, query};
use crate::AppState;
use crate::http::console::error::{ConsoleError, ConsoleResult};
use crate::http::console::guard::{Post, Signed};
use crate::http::console::layout::{self, Section, action, or_dash, when};
use crate::service::SessionInfo;
use crate::service::users::{UserEdit, UserSearch};

const PAGE: u32 = 25;
/// The ended sessions a user's page shows.
const ENDED_SHOWN: u32 = 20;
/// As the admin API's `q`.
const MAX_QUERY: usize = 256;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    verified: Option<String>,
    cursor: Option<String>,
    erased: Option<String>,
}

fn yes_no(field: &str, value: Option<&str>, yes: &str, no: &str) -> ConsoleResult<Option<bool>> {
    match value {
        None | Some("") | Some("any") => Ok(None),
        Some(v) if v == yes => Ok(Some(true)),
        Some(v) if v == no => Ok(Some(false)),
        Some(_) => Err(ConsoleError::BadInput(format!(
            "{field} must be any, {yes} or {no}"
        ))),
    }
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(&str, &str)]) -> Markup {
    let current = current.unwrap_or("any");
    html! {
        div class="field" {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[*value == current] { (text) }
                }
            }
        }
    }
}

fn status(user: &User) -> Markup {
    html! {
        @if user.active { span class="badge ok" { "active" } }
        @else { span class="badge bad" { "deactivated" } }
    }
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> ConsoleResult<Response> {
    let q: ListQuery = query(raw)?;
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > MAX_QUERY) {
        return Err(ConsoleError::BadInput(format!(
            "the search must be at most {MAX_QUERY} characters"
        )));
    }
    let active = yes_no("status", q.status.as_deref(), "active", "inactive")?;
    let verified = yes_no("verified", q.verified.as_deref(), "yes", "no")?;
    let cursor = super::optional_uuid("cursor", q.cursor.as_deref())?;
    // An exact address is looked up as one (indexed); anything else is a prefix of the
    // email or the name.
    let (email, prefix) = match text {
        Some(t) if t.contains('@') && sessiond_core::Email::parse(t).is_ok() => {
            (Some(t.to_owned()), None)
        }
        other => (None, other.map(str::to_owned)),
    };
    let page = state
        .service
        .list_users(UserSearch {
            email,
            q: prefix,
            active,
            email_verified: verified,
            cursor: cursor.map(UserId::from_uuid),
            limit: PAGE,
        })
        .await?;
    let users: Vec<&User> = page.users.iter().collect();
    let keep = |cursor: &str| {
        serde_urlencoded::to_string([
            ("q", text.unwrap_or("")),
            ("status", q.status.as_deref().unwrap_or("any")),
            ("verified", q.verified.as_deref().unwrap_or("any")),
            ("cursor", cursor),
        ])
        .unwrap_or_default()
    };
    let body = html! {
        (layout::notice(q.erased.as_ref().map(|_| "The user was erased.")))
        form method="get" action="/admin/users" class="filters" role="search" {
            div class="field grow" {
                label for="q" { "Email or name (prefix)" }
                input id="q" name="q" type="search" value=[text] maxlength="256"
                    placeholder="ann@example.com or Ann" autocomplete="off";
            }
            (select("status", "Status", q.status.as_deref(), &[("any", "Any"), ("active", "Active"), ("inactive", "Deactivated")]))
            (select("verified", "Email verified", q.verified.as_deref(), &[("any", "Any"), ("yes", "Verified"), ("no", "Not verified")]))
            button type="submit" { "Search" }
        }
        div class="table-wrap" {
            table {
                caption { @if let Some(t) = text { "Users matching “" (t) "”" } @else { "All users" } ", by id" }
                thead { tr { th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Email verified" } th scope="col" { "Created" } } }
                tbody {
                    @for user in &users {
                        tr {
                            td { a href=(format!("/admin/users/{}", user.id)) { @match &user.email { Some(e) => (e.as_str()), None => { "(no email) " (user.id) } } } }
                            td { (or_dash(user.name.as_deref())) }
                            td { (status(user)) }
                            td { @if user.email_verified { "yes" } @else { "no" } }
                            td { (when(user.created_at)) }
                        }
                    }
                    @if users.is_empty() {
                        tr { td colspan="5" class="muted" { "No users on this page." } }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if cursor.is_some() { a href=(format!("/admin/users?{}", keep(""))) { "First page" } }
            @if let Some(next) = page.next_cursor {
                a href=(format!("/admin/users?{}", keep(&next.to_string()))) rel="next" { "Next page" }
            }
        }
    };
    Ok(signed.answer(layout::page(Section::Users, "Users", &signed.csrf, body)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    done: Option<String>,
}

/// What an action's redirect may announce: fixed texts, nothing from the URL is shown.
fn done_text(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "ended" => Some("The session was ended."),
        "ended-all" => Some("Every session of this user was ended."),
        "deactivated" => Some("The user was deactivated and every session ended."),
        "reactivated" => Some("The user was reactivated."),
        "verified" => Some("The email address is marked verified."),
        _ => None,
    }
}

/// A session's state as a badge (a live session's idle deadline in the title).
pub fn session_state(info: &SessionInfo, now: chrono::DateTime<chrono::Utc>) -> Markup {
    let s = &info.session;
    html! {
        @if let Some(reason) = s.revoked_reason {
            span class="badge bad" { "ended: " (reason.as_str()) }
        } @else if s.expires_at <= now {
            span class="badge warn" { "expired" }
        } @else if info.idle_expires_at <= now {
            span class="badge warn" { "idle timeout" }
        } @else {
            span class="badge ok" { "live" }
        }
    }
}

/// A session's device in a few words.
pub fn device(info: &SessionInfo) -> Markup {
    device_of(&info.session)
}

fn device_of(session: &sessiond_core::Session) -> Markup {
    let d = &session.device;
    html! {
        @if let Some(label) = &d.label { strong { (label) } br; }
        @if let Some(ua) = &d.user_agent { span class="ua" { (ua) } }
        @if d.label.is_none() && d.user_agent.is_none() { span class="muted" { "unknown device" } }
    }
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
    RawQuery(raw_query): RawQuery,
) -> ConsoleResult<Response> {
    let uid = UserId::from_uuid(id(&raw)?);
    let q: ShowQuery = query(raw_query)?;
    let detail = state.service.user_detail(uid).await?;
    let sessions = state.service.user_sessions(uid).await?;
    let ended = state.service.user_ended_sessions(uid, ENDED_SHOWN).await?;
    let now = state.service.now();
    let user = &detail.user;
    let base = format!("/admin/users/{}", user.id);
    let csrf = &signed.csrf;
    let title = user
        .email
        .as_ref()
        .map(|e| e.as_str().to_owned())
        .or_else(|| user.name.clone())
        .unwrap_or_else(|| user.id.to_string());
    let body = html! {
        (layout::notice(done_text(q.done.as_deref())))
        section aria-labelledby="profile" {
            h2 id="profile" { "Profile" }
            dl class="facts" {
                dt { "Id" } dd { code { (user.id) } }
                dt { "Email" } dd { (or_dash(user.email.as_ref().map(|e| e.as_str()))) }
                dt { "Name" } dd { (or_dash(user.name.as_deref())) }
                dt { "Status" } dd { (status(user)) }
                dt { "Email verified" } dd { @if user.email_verified { "yes" } @else { "no" } }
                dt { "Mobile" } dd { (or_dash(user.mobile.as_deref())) }
                dt { "Password" } dd { @if detail.has_password { "set" } @else { "none" } }
                dt { "Created" } dd { (when(user.created_at)) }
                dt { "Last active" } dd { @match detail.last_active_at { Some(at) => (when(at)), None => span class="muted" { "no live session" } } }
            }
            @if let Some(profile) = &user.profile {
                details {
                    summary { "Profile from the identity provider" }
                    pre { (serde_json::to_string_pretty(profile).unwrap_or_default()) }
                }
            }
        }
        section aria-labelledby="identities" {
            h2 id="identities" { "Identities" }
            @if detail.identities.is_empty() {
                p class="muted" { "No external identities." }
            } @else {
                div class="table-wrap" {
                    table {
                        caption class="visually-hidden" { "Identities" }
                        thead { tr { th scope="col" { "Provider" } th scope="col" { "External id" } th scope="col" { "Linked" } } }
                        tbody {
                            @for i in &detail.identities {
                                tr { td { (i.provider) } td { code { (i.external_id) } } td { (when(i.created_at)) } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="sessions" {
            h2 id="sessions" { "Live sessions (" (sessions.len()) ")" }
            @if sessions.is_empty() {
                p class="muted" { "No live sessions." }
            } @else {
                div class="table-wrap" {
                    table class="sessions" {
                        caption class="visually-hidden" { "Live sessions, newest first" }
                        thead { tr {
                            th scope="col" { "Device" } th scope="col" { "IP" } th scope="col" { "Method" }
                            th scope="col" { "Created" } th scope="col" { "Last active" } th scope="col" { "Expires" }
                            th scope="col" { "State" } th scope="col" { span class="visually-hidden" { "Actions" } }
                        } }
                        tbody {
                            @for info in &sessions {
                                @let s = &info.session;
                                tr {
                                    td { a href=(format!("/admin/sessions/{}", s.id)) aria-label=(format!("Session {}", s.id)) { (device(info)) } }
                                    td { (or_dash(s.device.ip.as_deref())) }
                                    td { (s.auth_method.as_string()) }
                                    td { (when(s.created_at)) }
                                    td { (when(s.last_active_at)) }
                                    td { (when(info.idle_expires_at.min(s.expires_at))) }
                                    td { (session_state(info, now)) }
                                    td { (action(&format!("/admin/sessions/{}/end", s.id), csrf, "End session", true, Some("End this session now? Its tokens stop working at once."))) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="ended" {
            h2 id="ended" { "Ended sessions" }
            @if ended.is_empty() {
                p class="muted" { "No ended sessions are kept for this user." }
            } @else {
                p class="muted" { "The latest " (ended.len()) ", latest end first; kept for the session retention." }
                div class="table-wrap" {
                    table class="sessions" {
                        caption class="visually-hidden" { "Ended sessions, latest end first" }
                        thead { tr {
                            th scope="col" { "Device" } th scope="col" { "IP" } th scope="col" { "Method" }
                            th scope="col" { "Created" } th scope="col" { "Ended" } th scope="col" { "Reason" }
                            th scope="col" { "Initiator" }
                        } }
                        tbody {
                            @for s in &ended {
                                tr {
                                    td { a href=(format!("/admin/sessions/{}", s.id)) aria-label=(format!("Session {}", s.id)) { (device_of(s)) } }
                                    td { (or_dash(s.device.ip.as_deref())) }
                                    td { (s.auth_method.as_string()) }
                                    td { (when(s.created_at)) }
                                    td { @match s.revoked_at { Some(at) => (when(at)), None => "—" } }
                                    td { @match s.revoked_reason { Some(r) => code { (r.as_str()) }, None => "—" } }
                                    td { @match s.revoked_reason { Some(r) => (r.initiator().as_str()), None => "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="actions" {
            h2 id="actions" { "Actions" }
            div class="actions" {
                @if !sessions.is_empty() {
                    (action(&format!("{base}/end-sessions"), csrf, "End all sessions", true, Some("End every session of this user now?")))
                }
                @if user.active {
                    (action(&format!("{base}/deactivate"), csrf, "Deactivate", true, Some("Deactivate this user? Every session ends and logins are refused.")))
                } @else {
                    (action(&format!("{base}/reactivate"), csrf, "Reactivate", false, None))
                }
                @if user.email.is_some() && !user.email_verified {
                    (action(&format!("{base}/verify-email"), csrf, "Mark email verified", false, None))
                }
                a class="button danger" href=(format!("{base}/erase")) { "Erase…" }
                a class="button" href=(format!("/admin/events?user_id={}", user.id)) { "Events of this user" }
            }
        }
    };
    Ok(signed.answer(layout::page(Section::Users, &title, csrf, body)))
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn end_sessions(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Post { signed, .. }: Post<Empty>,
) -> ConsoleResult<Response> {
    let uid = UserId::from_uuid(id(&raw)?);
    state.service.admin_revoke_user_sessions(uid).await?;
    Ok(signed.redirect(&format!("/admin/users/{uid}?done=ended-all")))
}

async fn set_active(
    state: &AppState,
    raw: &str,
    signed: &Signed,
    active: bool,
) -> ConsoleResult<Response> {
    let uid = UserId::from_uuid(id(raw)?);
    state
        .service
        .edit_user(
            uid,
            UserEdit {
                active: Some(active),
                ..UserEdit::default()
            },
        )
        .await?;
    let done = if active { "reactivated" } else { "deactivated" };
    Ok(signed.redirect(&format!("/admin/users/{uid}?done={done}")))
}

pub async fn deactivate(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Post { signed, .. }: Post<Empty>,
) -> ConsoleResult<Response> {
    set_active(&state, &raw, &signed, false).await
}

pub async fn reactivate(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Post { signed, .. }: Post<Empty>,
) -> ConsoleResult<Response> {
    set_active(&state, &raw, &signed, true).await
}

pub async fn verify_email(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Post { signed, .. }: Post<Empty>,
) -> ConsoleResult<Response> {
    let uid = UserId::from_uuid(id(&raw)?);
    state
        .service
        .edit_user(
            uid,
            UserEdit {
                email_verified: Some(true),
                ..UserEdit::default()
            },
        )
        .await?;
    Ok(signed.redirect(&format!("/admin/users/{uid}?done=verified")))
}

/// The word an operator types to erase a user: a second, deliberate step.
const ERASE_WORD: &str = "erase";

fn erase_page(user: &User, csrf: &str, error: Option<&str>) -> Markup {
    html! {
        div class="warning" {
            p {
                "Erasing deletes the user, every session, refresh token, identity and code \
                 at once; their tokens stop working everywhere. Events stay, without the \
                 address. This cannot be undone."
            }
        }
        dl class="facts" {
            dt { "Id" } dd { code { (user.id) } }
            dt { "Email" } dd { (or_dash(user.email.as_ref().map(|e| e.as_str()))) }
            dt { "Name" } dd { (or_dash(user.name.as_deref())) }
        }
        form method="post" action=(format!("/admin/users/{}/erase", user.id)) {
            (layout::csrf_field(csrf))
            @if let Some(error) = error { p class="error" role="alert" id="erase-error" { (error) } }
            label for="confirm" { "Type " strong { (ERASE_WORD) } " to confirm" }
            input id="confirm" name="confirm" type="text" required autocomplete="off" maxlength="64"
                aria-describedby=[error.map(|_| "erase-error")];
            div class="actions" {
                button type="submit" class="danger" { "Erase this user" }
                a class="button" href=(format!("/admin/users/{}", user.id)) { "Cancel" }
            }
        }
    }
}

pub async fn confirm_erase(
    State(state): State<AppState>,
    signed: Signed,
    Path(raw): Path<String>,
) -> ConsoleResult<Response> {
    let user = state.service.user(UserId::from_uuid(id(&raw)?)).await?;
    let body = erase_page(&user, &signed.csrf, None);
    Ok(signed.answer(layout::page(
        Section::Users,
        "Erase user",
        &signed.csrf,
        body,
    )))
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    confirm: String,
}

pub async fn erase(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Post { signed, form }: Post<EraseForm>,
) -> ConsoleResult<Response> {
    let uid = UserId::from_uuid(id(&raw)?);
    if form.confirm.trim() != ERASE_WORD {
        let user = state.service.user(uid).await?;
        let body = erase_page(
            &user,
            &signed.csrf,
            Some("Type the word exactly to confirm; nothing was erased."),
        );
        let page = layout::page(Section::Users, "Erase user", &signed.csrf, body);
        return Ok(signed.answer((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page)));
    }
    state.service.delete_user(uid).await?;
    Ok(signed.redirect("/admin/users?erased=1"))
}
