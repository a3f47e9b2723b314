//! The standard endpoints OAuth libraries and verifiers look for: authorization-server
//! metadata (RFC 8414) and token revocation (RFC 7009).

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::http::json::JsonBody;
use crate::http::problem::{ApiError, Refusal};

/// What sessiond honestly supports, in RFC 8414's terms, plus where its revocation feed
/// is. sessiond is not an OAuth authorization server for third-party clients: it has no
/// authorization or token endpoint, so it lists no response or grant types.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    /// The `iss` of every access token.
    pub issuer: String,
    pub jwks_uri: String,
    /// RFC 7662, authenticated with a verifier key or the admin API key (bearer).
    pub introspection_endpoint: String,
    /// RFC 7009, for the holder of a token (no client authentication).
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// None: sessiond has no authorization endpoint.
    pub response_types_supported: Vec<&'static str>,
    /// Access tokens are signed with Ed25519 (`EdDSA`).
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub service_documentation: String,
    /// sessiond's own: the revocation feed (poll) for local verifiers.
    pub revocation_feed_endpoint: String,
    /// sessiond's own: the revocation feed as Server-Sent Events.
    pub revocation_stream_endpoint: String,
}

/// Authorization-server metadata (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "operations",
    responses((status = 200, body = ServerMetadata)))]
pub async fn server_metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> JsonBody<ServerMetadata> {
    let base = public_base(&state, &headers);
    let at = |path: &str| format!("{base}{path}");
    JsonBody(ServerMetadata {
        issuer: state.service.audience().issuer.clone(),
        jwks_uri: at("/.well-known/jwks.json"),
        introspection_endpoint: at("/v1/introspect"),
        revocation_endpoint: at("/oauth/revoke"),
        revocation_endpoint_auth_methods_supported: vec!["none"],
        response_types_supported: Vec::new(),
        token_endpoint_auth_signing_alg_values_supported: vec!["EdDSA"],
        service_documentation: at("/docs"),
        revocation_feed_endpoint: at("/v1/revocations"),
        revocation_stream_endpoint: at("/v1/revocations/stream"),
    })
}

/// `public_url` when configured; otherwise the address the client used.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.parse::<axum::http::uri::Authority>().is_ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeForm {
    /// An access token or a refresh token.
    #[schema(min_length = 1, max_length = 4096)]
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only (both are tried).
    #[allow(dead_code)] // accepted, as RFC 7009 requires; the token says what it is
    pub token_type_hint: Option<String>,
}

/// Token revocation (RFC 7009): ends the session of the access or refresh token (reason
/// `logout`). Answers 200 for a token that is unknown, expired or already dead, as the
/// RFC says, so the answer tells nothing about the token.
#[utoipa::path(post, path = "/oauth/revoke", tag = "tokens",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 503, description = "`STORAGE_UNAVAILABLE`: retry after `Retry-After`"),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    form: Result<Form<RevokeForm>, axum::extract::rejection::FormRejection>,
) -> Result<StatusCode, ApiError> {
    let Form(form) = form.map_err(|e| match e {
        axum::extract::rejection::FormRejection::InvalidFormContentType(_) => {
            Refusal::UnsupportedMediaType("application/x-www-form-urlencoded")
        }
        other => Refusal::MalformedBody(other.body_text()),
    })?;
    if form.token.is_empty() || form.token.len() > 4096 {
        return Err(Refusal::MalformedBody("`token` must be 1 to 4096 characters".into()).into());
    }
    state.service.revoke_token(&form.token).await?;
    Ok(StatusCode::OK)
}
