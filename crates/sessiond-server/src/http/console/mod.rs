//! The admin console: HTML pages at `/admin` for the people who run sessiond.
//!
//! Server-rendered (maud escapes every interpolated value), with one stylesheet and one
//! small script compiled into the binary; forms work without the script. Not part of
//! the JSON API: these routes are not in `/openapi.json`. Every answer carries a strict
//! Content-Security-Policy; pages are never cached. See `session.rs` for the console
//! session and `guard.rs` for the checks every page and form goes through.

mod assets;
mod charts;
mod config_view;
mod error;
mod guard;
mod layout;
mod pages;
pub mod session;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::set_header::SetResponseHeaderLayer;

pub use charts::Activity;
use error::ConsoleError;

use crate::AppState;
use crate::config::Config;
use crate::infra::redis::Redis;
use crate::service::Service;

/// No script or style but our own files, no framing, forms only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console keeps for the life of the process.
pub struct ConsoleState {
    pub keys: session::ConsoleKeys,
    pub cookie: session::CookieSpec,
    pub activity: Activity,
    /// The effective configuration, flattened, with secrets masked.
    pub config: Vec<(String, String)>,
    pub started: Instant,
}

impl ConsoleState {
    pub fn new(
        config: &Config,
        service: &Service,
        metrics: &PrometheusHandle,
        redis: Option<Arc<Redis>>,
        secure_cookie: bool,
    ) -> Self {
        let redis = redis.map(|r| (r, config.redis_prefix.clone()));
        Self {
            keys: session::ConsoleKeys::new(&service.console_secret(), redis),
            cookie: session::CookieSpec::new(secure_cookie),
            activity: Activity::new(metrics),
            config: config_view::flatten(config),
            started: Instant::now(),
        }
    }
}

/// The console's routes, to be nested at `/admin`.
pub fn router() -> Router<AppState> {
    use pages::{config, events, keys, overview, sessions, sign_in, users};
    Router::new()
        .route("/", get(overview::show))
        .route("/sign-in", get(sign_in::show).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::show))
        .route("/users/{id}/end-sessions", post(users::end_sessions))
        .route("/users/{id}/deactivate", post(users::deactivate))
        .route("/users/{id}/reactivate", post(users::reactivate))
        .route("/users/{id}/verify-email", post(users::verify_email))
        .route(
            "/users/{id}/erase",
            get(users::confirm_erase).post(users::erase),
        )
        .route("/sessions/{id}", get(sessions::show))
        .route("/sessions/{id}/end", post(sessions::end))
        .route("/events", get(events::list))
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/config", get(config::show))
        .route("/assets/{name}", get(assets::asset))
        .fallback(|| async { ConsoleError::NotFound })
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        // Assets set their own (long) cache policy; every page is `no-store`.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
