//! The HTTP surface: routes and their OpenAPI description come from one declaration.

pub mod client_ip;
pub mod console;
pub mod dto;
pub mod extract;
pub mod json;
mod openapi;
pub mod problem;
mod request_id;
mod request_metrics;
mod rfc3339;
mod routes;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use self::problem::{ApiError, method_not_allowed, route_not_found};
use self::routes::{
    account, admin, auth, events, exchange, forward_auth, oauth, ops, otp, revocations, session,
    tokens,
};
use crate::AppState;

/// The API's routes and the OpenAPI document describing exactly those routes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login_password))
        .routes(routes!(auth::create_anonymous))
        .routes(routes!(otp::request_code))
        .routes(routes!(otp::verify_code))
        .routes(routes!(account::request_password_reset))
        .routes(routes!(account::confirm_password_reset))
        .routes(routes!(exchange::exchange_token))
        .routes(routes!(tokens::refresh))
        .routes(routes!(forward_auth::check))
        .routes(routes!(tokens::validate))
        .routes(routes!(tokens::introspect))
        .routes(routes!(session::whoami))
        .routes(routes!(session::get_data, session::put_data))
        .routes(routes!(session::logout))
        .routes(routes!(account::change_password))
        .routes(routes!(account::request_email_verification))
        .routes(routes!(account::confirm_email_verification))
        .routes(routes!(account::request_email_change))
        .routes(routes!(account::confirm_email_change))
        .routes(routes!(session::list_sessions, session::revoke_sessions))
        .routes(routes!(session::revoke_session))
        .routes(routes!(admin::create_session))
        .routes(routes!(admin::user_sessions, admin::revoke_user_sessions))
        .routes(routes!(admin::revoke_session))
        .routes(routes!(admin::list_users))
        .routes(routes!(
            admin::get_user,
            admin::patch_user,
            admin::delete_user
        ))
        .routes(routes!(admin::cleanup))
        .routes(routes!(events::list_events))
        .routes(routes!(revocations::list_revocations))
        .routes(routes!(revocations::revocation_snapshot))
        .routes(routes!(revocations::stream_revocations))
        .routes(routes!(oauth::server_metadata))
        .routes(routes!(oauth::revoke_token))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::jwks))
        .split_for_parts()
}

/// Every route with its layers: a service to serve with `ConnectInfo<SocketAddr>`.
pub fn router(
    state: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let (api_routes, document) = api();
    let facts = openapi::Facts {
        exchange_providers: state.service.exchange_providers(),
    };
    let document = openapi::complete(document, &facts);
    let max_body = state.max_body_bytes;
    let cors = web::cors::layer(&state.web);
    // Per route: only what needs the matched route (the metrics' route label); it also
    // sets `Cache-Control: no-store` where the answer set no policy of its own (contract:
    // token responses and session answers are never cached).
    let routes = api_routes
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document))
        // The admin console: HTML pages, not part of the JSON API (nor of its document).
        .nest("/admin", console::router())
        .route(
            "/admin/",
            axum::routing::get(|| async { axum::response::Redirect::permanent("/admin") }),
        )
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(request_metrics::RequestMetricsLayer)
        .with_state(state);
    // The rest wraps the router once: `Router::layer` boxes a layer into every route, and
    // a request paid a boxed clone and a boxed future per layer. CORS answers preflights
    // before routing, so they are logged as well.
    tower::ServiceBuilder::new()
        .layer(request_id::RequestIdLayer)
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(DefaultBodyLimit::max(max_body))
        .option_layer(cors)
        .service(routes)
}

/// Every log line written while answering a request names it: its id (as answered in
/// `X-Request-Id` and a problem's `instance`), method and path (never the query, which
/// is no place for secrets but may be sent one anyway).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get(&request_id::X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        request_id = id,
        method = req.method().as_str(),
        path = req.uri().path()
    )
}
