//! Extractors. Authentication is an extractor whose rejection is the problem response,
//! so a handler that compiles is a handler that checked.

use std::any::TypeId;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use sessiond_core::fields::DeviceFields;
use sessiond_core::{Device, DomainError};

use super::client_ip::client_ip;
use super::dto::DeviceInput;
use super::problem::{ApiError, Refusal};
use super::web::cookies::{self, Found};
use super::web::{WebSettings, csrf};
use crate::AppState;
use crate::ratelimit::Policy;
use crate::service::Authenticated;

/// JSON body whose every rejection is a problem response.
pub struct ApiJson<T>(pub T);

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Refusal::UnsupportedMediaType("application/json"),
        StatusCode::UNPROCESSABLE_ENTITY => Refusal::InvalidBody(rejection.body_text()),
        _ => Refusal::MalformedBody(rejection.body_text()),
    }
    .into()
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(unsupported_media_type());
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        require_object::<T>(&bytes)?;
        Ok(ApiJson(value))
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

fn unsupported_media_type() -> ApiError {
    Refusal::UnsupportedMediaType("application/json").into()
}

/// Request bodies described by a struct must be JSON objects: serde would also read a
/// struct from a JSON array (its fields in order), which no client means. Only a body
/// taken as any JSON value (`serde_json::Value`) is left to its handler to check.
fn require_object<T: 'static>(bytes: &[u8]) -> Result<(), ApiError> {
    if TypeId::of::<T>() == TypeId::of::<serde_json::Value>() {
        return Ok(());
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(Refusal::InvalidBody("the body must be a JSON object".to_owned()).into()),
    }
}

/// The raw body, within the body size limit; every rejection is a problem response.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Refusal::BodyTooLarge.into()
                } else {
                    Refusal::MalformedBody(e.body_text()).into()
                }
            })
    }
}

/// A JSON body that may be left out entirely (then `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = has_json_content_type(req.headers());
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(unsupported_media_type());
        }
        // The description says the body may be left out, which a JSON client may say as
        // `null`.
        if bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        require_object::<T>(&bytes)?;
        Ok(OptionalJson(value))
    }
}

/// Path parameters; a malformed id is a 400, never a 500 or a plain-text error.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| Refusal::BadPath(format!("bad path parameter: {}", e.body_text())).into())
    }
}

/// Query parameters, with problem responses.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| Refusal::BadQuery(e.body_text()).into())
    }
}

/// The token of an `Authorization: Bearer …` header, if any.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Where a request's access token came from.
pub enum Credential<'a> {
    Bearer(&'a str),
    /// The access cookie (no `Authorization: Bearer` header was sent).
    Cookie(&'a str),
}

impl<'a> Credential<'a> {
    pub fn token(&self) -> &'a str {
        match self {
            Credential::Bearer(t) | Credential::Cookie(t) => t,
        }
    }
}

/// The access token of a request: `Authorization: Bearer` wins over the access cookie
/// (an explicit credential over an ambient one; a bad bearer token is not rescued by a
/// good cookie). `None` when neither is there.
pub fn access_credential<'a>(
    parts: &'a Parts,
    web: &WebSettings,
) -> Result<Option<Credential<'a>>, ApiError> {
    if let Some(token) = bearer_token(parts) {
        return Ok(Some(Credential::Bearer(token)));
    }
    // A bearer credential that is there but unreadable is a malformed token.
    let unreadable = parts.headers.get(header::AUTHORIZATION).is_some_and(|v| {
        v.to_str().is_err()
            && v.as_bytes().len() > 7
            && v.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ")
    });
    if unreadable {
        return Err(ApiError::from_bearer(DomainError::TokenInvalid));
    }
    match cookies::find(&parts.headers, web.cookies.access) {
        Found::Absent => Ok(None),
        Found::One(token) => Ok(Some(Credential::Cookie(token))),
        Found::Several => Err(Refusal::BadAccessCookie(
            "the request carries the access cookie more than once; none of them is used",
        )
        .into()),
        Found::Unreadable => {
            Err(Refusal::BadAccessCookie("the access cookie does not hold a token").into())
        }
    }
}

/// The CSRF check of a cookie-authenticated request: unsafe methods only.
fn check_cookie_request(parts: &Parts, web: &WebSettings) -> Result<(), ApiError> {
    if parts.method.is_safe() {
        return Ok(());
    }
    csrf::check(&parts.headers, web).map_err(|csrf::Rejected(why)| Refusal::Csrf(why).into())
}

/// The caller's live session, from its access token (bearer, or the access cookie after
/// the CSRF check). Counts as activity.
pub struct CurrentSession(pub Authenticated);

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = access_credential(parts, &state.web)?
            .ok_or_else(|| ApiError::from_bearer(DomainError::TokenNotProvided))?;
        if let Credential::Cookie(_) = credential {
            check_cookie_request(parts, &state.web)?;
        }
        state
            .service
            .authenticate(credential.token(), true)
            .await
            .map(CurrentSession)
            .map_err(ApiError::from_bearer)
    }
}

/// An access token sent along with a login (bearer or cookie): an anonymous session to
/// upgrade, if valid.
pub struct MaybeBearer(pub Option<String>);

impl FromRequestParts<AppState> for MaybeBearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = access_credential(parts, &state.web)
            .ok()
            .flatten()
            .map(|c| c.token().to_owned());
        Ok(MaybeBearer(token))
    }
}

/// How a login or refresh answers its tokens: in the body (the default), or as cookies
/// when the request says `Sessiond-Token-Transport: cookie`. A cookie-mode request is
/// subject to the CSRF check (login CSRF).
#[derive(Clone)]
pub enum Transport {
    Body,
    Cookie(std::sync::Arc<WebSettings>),
}

impl Transport {
    pub fn is_cookie(&self) -> bool {
        matches!(self, Transport::Cookie(_))
    }
}

impl FromRequestParts<AppState> for Transport {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(cookies::TRANSPORT_HEADER) else {
            return Ok(Transport::Body);
        };
        if value.as_bytes().eq_ignore_ascii_case(b"cookie") {
            check_cookie_request(parts, &state.web)?;
            Ok(Transport::Cookie(state.web.clone()))
        } else if value.as_bytes().eq_ignore_ascii_case(b"body") {
            Ok(Transport::Body)
        } else {
            Err(Refusal::BadHeader(
                "`Sessiond-Token-Transport` takes `cookie` or `body`".to_owned(),
            )
            .into())
        }
    }
}

/// Proof that the request carried the admin API key.
pub struct AdminKey;

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        api_key(parts, |key| state.service.is_admin_key(key)).map(|()| AdminKey)
    }
}

/// Proof that the request carried a key that may read the revocation feed and introspect
/// tokens: a verifier key, or the admin key.
pub struct VerifierKey;

impl FromRequestParts<AppState> for VerifierKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        api_key(parts, |key| state.service.is_verifier_key(key)).map(|()| VerifierKey)
    }
}

/// Checks the request's API key with `accepts`. No credentials is a 401 (RFC 9110) that
/// says how to authenticate; a credential that is not an accepted key is a 403.
fn api_key(parts: &Parts, accepts: impl FnOnce(&str) -> bool) -> Result<(), ApiError> {
    match bearer_token(parts) {
        Some(key) if accepts(key) => Ok(()),
        Some(_) => Err(DomainError::Forbidden.into()),
        None if parts.headers.contains_key(header::AUTHORIZATION) => {
            Err(DomainError::Forbidden.into())
        }
        None => Err(ApiError::from_bearer(DomainError::TokenNotProvided)),
    }
}

/// Who the client is: its address (see [`client_ip`]) and what it says it runs.
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| client_ip(addr.ip(), &parts.headers, &state.trusted_proxies));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ClientInfo { ip, user_agent })
    }
}

impl ClientInfo {
    /// The device of a new session: what the client said of it, with this request's
    /// `User-Agent` and IP.
    pub fn device(&self, described: Option<DeviceInput>) -> Result<Device, DomainError> {
        DeviceFields::from(described.unwrap_or_default())
            .into_device(self.user_agent.as_deref(), self.ip.map(|ip| ip.to_string()))
    }
}

/// A per-client-IP limit on a group of routes.
pub trait IpPolicy {
    const POLICY: Policy;
}

pub struct LoginGroup;
impl IpPolicy for LoginGroup {
    const POLICY: Policy = Policy::Login;
}

pub struct AnonymousGroup;
impl IpPolicy for AnonymousGroup {
    const POLICY: Policy = Policy::Anonymous;
}

pub struct ValidateGroup;
impl IpPolicy for ValidateGroup {
    const POLICY: Policy = Policy::Validate;
}

/// Proof that the request fitted within its route group's per-IP limit; its rejection
/// is `429 RATE_LIMITED` with `Retry-After` and `RateLimit` headers.
pub struct Limited<P: IpPolicy>(std::marker::PhantomData<P>);

impl<P: IpPolicy> FromRequestParts<AppState> for Limited<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        let subject = client
            .ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        state.service.hit_ip_limit(P::POLICY, &subject).await?;
        Ok(Limited(std::marker::PhantomData))
    }
}
