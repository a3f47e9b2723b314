//! The HTTP surface: routes and their OpenAPI description come from one declaration.

pub mod client_ip;
pub mod dto;
pub mod extract;
pub mod json;
pub mod problem;
mod request_metrics;
mod rfc3339;
mod routes;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use self::problem::{ApiError, route_not_found};
use self::routes::{admin, auth, exchange, ops, otp, session, tokens};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = "Sessions and tokens: logins, rotating refresh tokens, immediate revocation, per-device session lists. Every error is `application/problem+json` with a stable `code`.",
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "login", description = "Ways to start a session"),
        (name = "tokens", description = "Refresh, validation and introspection"),
        (name = "session", description = "The calling session and the person's other sessions"),
        (name = "admin", description = "Trusted backends (admin API key)"),
        (name = "operations", description = "Health, metrics, keys"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some("An access token".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some("The admin API key".into());
        components.add_security_scheme("admin_key", SecurityScheme::Http(admin));
    }
}

/// The API's routes and the OpenAPI document describing exactly those routes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login_password))
        .routes(routes!(auth::create_anonymous))
        .routes(routes!(otp::request_code))
        .routes(routes!(otp::verify_code))
        .routes(routes!(exchange::exchange_token))
        .routes(routes!(tokens::refresh))
        .routes(routes!(tokens::validate))
        .routes(routes!(tokens::introspect))
        .routes(routes!(session::whoami))
        .routes(routes!(session::get_data, session::put_data))
        .routes(routes!(session::logout))
        .routes(routes!(session::list_sessions, session::revoke_sessions))
        .routes(routes!(session::revoke_session))
        .routes(routes!(admin::create_session))
        .routes(routes!(admin::user_sessions, admin::revoke_user_sessions))
        .routes(routes!(admin::revoke_session))
        .routes(routes!(admin::patch_user))
        .routes(routes!(admin::cleanup))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::jwks))
        .split_for_parts()
}

pub fn router(state: AppState) -> Router {
    let (api_routes, openapi) = api();
    let max_body = state.max_body_bytes;
    api_routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Token responses and session answers must never be cached (contract); nothing
        // the API answers benefits from caching except what sets its own policy.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(request_metrics::RequestMetricsLayer)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError::http(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this method is not allowed here",
    )
}
