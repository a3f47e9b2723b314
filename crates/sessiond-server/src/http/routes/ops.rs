//! Operations: health, readiness, metrics, keys.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::http::dto::{Health, Readiness};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: storage answers. An unreachable Redis only degrades the service (rate
/// limits are then counted per instance), so it is reported but still ready.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let redis = state
        .redis
        .as_ref()
        .map_or("not_configured", |health| health.status());
    match state.service.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                status: if redis == "degraded" {
                    "degraded"
                } else {
                    "ready"
                },
                storage: "ok",
                redis,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "unavailable",
                    storage: "unreachable",
                    redis,
                }),
            )
        }
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.service.export_gauges().await;
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "JWK set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.service.keys();
    let mut response = Json(keys.jwks().clone()).into_response();
    // Verifiers may cache briefly; rotation keeps old keys published for a token lifetime.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
