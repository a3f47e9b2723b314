//! Signing in with the admin key (once: the key is never stored in the browser, only a
//! console session is), and signing out.

use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::query;
use crate::AppState;
use crate::http::console::error::{ConsoleError, ConsoleResult};
use crate::http::console::guard::{Post, Signed, form_body, same_origin};
use crate::http::console::layout;
use crate::http::console::session::ConsoleSession;
use crate::http::extract::ClientInfo;

/// No admin key is longer; a longer one is refused without hashing it.
const MAX_KEY: usize = 1024;

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    #[serde(default)]
    signed_out: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
pub struct Empty {}

fn form(error: Option<&str>, notice: Option<&str>) -> axum::response::Html<String> {
    layout::bare(
        "Sign in",
        html! {
            div class="sign-in" {
                h1 { "sessiond console" }
                (layout::notice(notice))
                @if let Some(error) = error {
                    p class="error" role="alert" id="sign-in-error" { (error) }
                }
                form method="post" action="/admin/sign-in" {
                    label for="key" { "Admin API key" }
                    input id="key" name="key" type="password" required autocomplete="off"
                        autofocus maxlength="1024" spellcheck="false"
                        aria-describedby=[error.map(|_| "sign-in-error")];
                    p class="hint" {
                        "The key in " code { "admin_api_key" } " or in the data folder's "
                        code { "admin-api-key" } " file. It is checked once and not kept: \
                         you get a console session of at most 8 hours (30 minutes idle)."
                    }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> ConsoleResult<Response> {
    let q: SignInQuery = query(raw)?;
    let (mut parts, _) = request.into_parts();
    if <Signed as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
        .await
        .is_ok()
    {
        return Ok(Redirect::to("/admin").into_response());
    }
    let notice = q.signed_out.map(|_| "You are signed out.");
    Ok(form(None, notice).into_response())
}

pub async fn submit(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> ConsoleResult<Response> {
    same_origin(request.headers())?;
    let ip = client
        .ip
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    if let Err(limited) = state.service.check_console_sign_in(&ip).await {
        tracing::warn!(client_ip = %ip, "console sign-in refused: too many failures from this address");
        return Err(limited.into());
    }
    let (SignInForm { key }, _) = form_body::<SignInForm>(request, &state).await?;
    let key = key.trim();
    if key.is_empty() || key.len() > MAX_KEY || !state.service.is_admin_key(key) {
        state.service.record_console_failure(&ip).await;
        metrics::counter!("sessiond_console_sign_in_failures_total").increment(1);
        // Never the key, nor a part of it.
        tracing::warn!(client_ip = %ip, "console sign-in refused: not the admin key");
        return Ok((
            StatusCode::UNAUTHORIZED,
            form(Some("That is not the admin key."), None),
        )
            .into_response());
    }
    let session = ConsoleSession::start(state.service.now());
    let cookie = state
        .console
        .cookie
        .set(&state.console.keys.encode(&session));
    tracing::info!(client_ip = %ip, "console sign-in");
    let mut response = Redirect::to("/admin").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn sign_out(
    State(state): State<AppState>,
    post: Result<Post<Empty>, ConsoleError>,
) -> ConsoleResult<Response> {
    let Post { signed, .. } = post?;
    state
        .console
        .keys
        .sign_out(&signed.session, state.service.now())
        .await;
    tracing::info!("console sign-out");
    let mut response = Redirect::to("/admin/sign-in?signed_out=1").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.console.cookie.clear());
    Ok(response)
}
