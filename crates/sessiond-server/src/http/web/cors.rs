//! CORS for `web.allowed_origins`: credentials for exactly those origins (the answer
//! names the caller's origin, never `*`), `Vary: Origin`, preflights cached for
//! `web.cors_max_age`. Without allowed origins there is no CORS at all: same-origin pages
//! and non-browser clients need none.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::WebSettings;
use super::cookies::TRANSPORT_HEADER;

pub fn layer(web: &WebSettings) -> Option<CorsLayer> {
    if web.allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = web
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(TRANSPORT_HEADER),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
            ])
            .max_age(web.cors_max_age),
    )
}
