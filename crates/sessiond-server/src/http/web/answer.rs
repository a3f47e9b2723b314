//! Token answers in either transport, and the cookie clearing of session ends.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebSettings;
use super::cookies;
use crate::http::dto::{CookieTokenResponse, TokenResponse};
use crate::http::extract::Transport;
use crate::http::json::JsonBody;
use crate::service::TokenGrant;

/// A token response: the body of the contract, or in cookie mode `Set-Cookie` for both
/// tokens and a body without them.
pub struct TokenAnswer {
    pub status: StatusCode,
    pub grant: TokenGrant,
    pub transport: Transport,
}

impl TokenAnswer {
    pub fn ok(grant: TokenGrant, transport: Transport) -> Self {
        Self {
            status: StatusCode::OK,
            grant,
            transport,
        }
    }

    pub fn created(grant: TokenGrant, transport: Transport) -> Self {
        Self {
            status: StatusCode::CREATED,
            grant,
            transport,
        }
    }
}

impl IntoResponse for TokenAnswer {
    fn into_response(self) -> Response {
        match self.transport {
            Transport::Body => {
                let mut response = JsonBody(TokenResponse::from(self.grant)).into_response();
                if response.status() == StatusCode::OK {
                    *response.status_mut() = self.status;
                }
                response
            }
            Transport::Cookie(web) => {
                let mut response = JsonBody(CookieTokenResponse::from(&self.grant)).into_response();
                if response.status() != StatusCode::OK {
                    return response;
                }
                *response.status_mut() = self.status;
                let g = &self.grant;
                let refresh = g.refresh_token.expose();
                for value in cookies::set_tokens(
                    &web.cookies,
                    &web.refresh_cookie_path,
                    &g.access_token,
                    g.access_expires_in,
                    &refresh,
                    g.refresh_expires_in,
                ) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                response
            }
        }
    }
}

/// Adds `Set-Cookie` clearing both token cookies.
pub fn clear_cookies(mut response: Response, web: &WebSettings) -> Response {
    for value in cookies::clear_tokens(&web.cookies, &web.refresh_cookie_path) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether a session end answered to this request should clear the cookies: it asked for
/// cookie transport or carried a token cookie.
pub fn wants_clearing(headers: &axum::http::HeaderMap, web: &WebSettings) -> bool {
    headers
        .get(cookies::TRANSPORT_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cookie"))
        || cookies::carries_ours(headers, &web.cookies)
}
