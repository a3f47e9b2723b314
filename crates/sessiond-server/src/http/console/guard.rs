//! The console's extractors: [`Signed`] (a live console session, or a redirect to the
//! sign-in page) and [`Post`] (a form of a signed-in operator, from this origin, with
//! the session's CSRF token). A handler that takes them is a handler that checked.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ConsoleError;
use super::session::ConsoleSession;
use crate::AppState;
use crate::http::web::cookies::{self, Found};
use crate::http::web::normalise_origin;

/// A signed-in operator.
pub struct Signed {
    pub session: ConsoleSession,
    /// The CSRF token for this page's forms.
    pub csrf: String,
    /// The re-signed cookie (a new idle deadline), set on every answer.
    cookie: HeaderValue,
}

impl Signed {
    /// `response` with the refreshed session cookie.
    pub fn answer(&self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        response
            .headers_mut()
            .append(header::SET_COOKIE, self.cookie.clone());
        response
    }

    /// A redirect after a successful POST (the page is then a plain GET: reloading it
    /// does not repeat the action).
    pub fn redirect(&self, to: &str) -> Response {
        self.answer(Redirect::to(to))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let console = &state.console;
        let Found::One(token) = cookies::find(&parts.headers, console.cookie.name) else {
            return Err(ConsoleError::SignInRequired);
        };
        let now = state.service.now();
        let mut session = console
            .keys
            .decode(token, now)
            .ok_or(ConsoleError::SignInRequired)?;
        if console.keys.is_signed_out(&session).await {
            return Err(ConsoleError::SignInRequired);
        }
        session.seen = now.timestamp();
        let cookie = console.cookie.set(&console.keys.encode(&session));
        let csrf = console.keys.csrf_token(&session);
        Ok(Signed {
            session,
            csrf,
            cookie,
        })
    }
}

fn text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `origin` (`scheme://host[:port]`) is this host.
fn is_this_host(origin: &str, headers: &HeaderMap) -> bool {
    let Some(origin) = normalise_origin(origin) else {
        return false;
    };
    let host = origin.split_once("://").map_or("", |(_, host)| host);
    text(headers, header::HOST).is_some_and(|h| h.eq_ignore_ascii_case(host))
}

/// A console form must come from a console page: Fetch Metadata says `same-origin`, or
/// (older browsers) `Origin`, else `Referer`, is this host. Cross-site forms are refused
/// before anything else is looked at (the cookie is SameSite=Strict as well).
pub fn same_origin(headers: &HeaderMap) -> Result<(), ConsoleError> {
    const REFUSED: &str =
        "This form did not come from a console page (cross-site request refused).";
    if let Some(site) = headers.get("sec-fetch-site") {
        return if site.as_bytes() == b"same-origin" {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(REFUSED))
        };
    }
    if let Some(origin) = text(headers, header::ORIGIN) {
        return if is_this_host(origin, headers) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(REFUSED))
        };
    }
    if let Some(referer) = text(headers, header::REFERER) {
        let origin = referer
            .split_once("://")
            .map(|(scheme, rest)| {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                format!("{scheme}://{host}")
            })
            .unwrap_or_default();
        return if is_this_host(&origin, headers) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(REFUSED))
        };
    }
    Err(ConsoleError::Forbidden(REFUSED))
}

/// A form body (`application/x-www-form-urlencoded`, within the body limit), parsed.
pub async fn form_body<T: DeserializeOwned>(
    req: Request,
    state: &AppState,
) -> Result<(T, Bytes), ConsoleError> {
    let is_form = text(req.headers(), header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Err(ConsoleError::BadInput(
            "a console form is sent as application/x-www-form-urlencoded".to_owned(),
        ));
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ConsoleError::TooLarge
        } else {
            ConsoleError::BadInput("the form could not be read".to_owned())
        }
    })?;
    let form = serde_urlencoded::from_bytes(&bytes)
        .map_err(|e| ConsoleError::BadInput(format!("the form does not parse: {e}")))?;
    Ok((form, bytes))
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// A signed-in operator's form, checked: same origin, CSRF token of the session.
pub struct Post<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Post<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        same_origin(req.headers())?;
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let (CsrfOnly { csrf }, bytes) = form_body::<CsrfOnly>(req, state).await?;
        if !state.console.keys.csrf_ok(&signed.session, &csrf) {
            tracing::warn!("console form refused: missing or wrong CSRF token");
            return Err(ConsoleError::Forbidden(
                "The form's CSRF token is missing or wrong: reload the page and try again.",
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadInput(format!("the form does not parse: {e}")))?;
        Ok(Post { signed, form })
    }
}
