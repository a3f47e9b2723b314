//! What travels over the wire: request and response bodies, with their OpenAPI schemas.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessiond_core::fields::DeviceFields;
use sessiond_core::{Session, User};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::{SessionInfo, TokenGrant};

/// The device a session is created on, as the client describes it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeviceInput {
    /// A stable id the app chose for this installation.
    #[schema(max_length = 512)]
    pub device_id: Option<String>,
    /// Defaults to the request's `User-Agent`.
    #[schema(max_length = 512)]
    pub user_agent: Option<String>,
    /// A name a person recognises, e.g. "Ann's iPhone".
    #[schema(max_length = 512)]
    pub label: Option<String>,
}

impl From<DeviceInput> for DeviceFields {
    fn from(d: DeviceInput) -> Self {
        Self {
            device_id: d.device_id,
            user_agent: d.user_agent,
            label: d.label,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    /// At least 8 and at most 256 characters, not one of the 10 000 most common
    /// passwords, not the email address (`errors[].reason` names the rule broken).
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// A display name.
    #[schema(max_length = 256)]
    pub name: Option<String>,
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordLoginRequest {
    pub email: String,
    pub password: String,
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AnonymousSessionRequest {
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// Left out in cookie mode: the refresh cookie carries the token.
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ValidateRequest {
    /// An access or a refresh token.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct IntrospectRequest {
    pub token: String,
    /// Ignored: the token's shape tells its type.
    pub token_type_hint: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminSessionRequest {
    /// A sessiond user id; an id not seen before creates that user.
    pub user_id: Uuid,
    pub device: Option<DeviceInput>,
    /// Initial app data (a JSON object of at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    /// A display name; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 256)]
    pub name: Option<Option<String>>,
    /// A new address: unverified unless `email_verified` is sent too.
    pub email: Option<String>,
    /// `false` ends every session of the user at once (`user_deactivated`).
    pub active: Option<bool>,
    pub email_verified: Option<bool>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// The same rules as at registration.
    #[schema(min_length = 8, max_length = 256)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    pub email: String,
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordResetConfirmRequest {
    pub challenge_id: String,
    /// The code from the mail; spaces and dashes are ignored.
    pub code: String,
    /// The same rules as at registration.
    #[schema(min_length = 8, max_length = 256)]
    pub new_password: String,
    /// Defaults to the device sent with the reset request.
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeConfirmRequest {
    pub challenge_id: String,
    /// The code from the mail; spaces and dashes are ignored.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailChangeRequest {
    /// The new address; the code goes there.
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Exactly this address (any case).
    pub email: Option<String>,
    /// A prefix of the email or of the name, any case.
    #[param(max_length = 256)]
    pub q: Option<String>,
    pub active: Option<bool>,
    /// Only users whose email is (or is not) verified.
    pub email_verified: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Users per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    /// `next_cursor` of the previous page (or an event's `seq`): events after it.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// One event type, e.g. `session.ended`.
    pub r#type: Option<String>,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// Events per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// An audit event: what happened, to whom, and its own fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Its place in the log; the cursor.
    pub seq: u64,
    /// Also the `webhook-id` of its deliveries.
    pub id: Uuid,
    /// `user.created`, `session.ended`, `login.failed`, …
    pub r#type: String,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<Utc>,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// The type's own fields (`session.ended`: `reason` and `initiator`; `login.failed`:
    /// `method` and `reason`; …).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<sessiond_store::StoredEvent> for EventView {
    fn from(e: sessiond_store::StoredEvent) -> Self {
        Self {
            seq: e.seq,
            id: e.id,
            r#type: e.kind,
            occurred_at: e.occurred_at,
            user_id: e.user_id.map(|u| u.as_uuid()),
            session_id: e.session_id.map(|s| s.as_uuid()),
            data: e.data,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageView {
    pub events: Vec<EventView>,
    /// Where the next page starts; null when this page is the last one now.
    pub next_cursor: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPageView {
    pub users: Vec<UserView>,
    /// Where the next page starts; null after the last.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    /// The exchange provider's name.
    pub provider: String,
    /// Who the user is at the provider.
    pub external_id: String,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A user, with how it signs in and how much it is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetailView {
    #[serde(flatten)]
    pub user: UserView,
    /// Whether the user has a password (else it signs in by code, exchange or backend).
    pub has_password: bool,
    pub identities: Vec<IdentityView>,
    /// Live sessions now.
    pub session_count: usize,
    /// The latest activity of any live session; null without one.
    #[serde(serialize_with = "super::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_active_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeSessionsQuery {
    /// `current` keeps the calling session.
    pub except: Option<Except>,
}

/// The sessions `DELETE /v1/sessions` leaves alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Except {
    Current,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    /// `pwd`, `otp`, `exchange:<provider>`, `anon` or `admin`.
    pub auth_method: String,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub last_active_at: DateTime<Utc>,
    /// Absolute end of the session.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub expires_at: DateTime<Utc>,
    /// When the session ends if it stays idle.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub idle_expires_at: DateTime<Utc>,
    pub device: DeviceView,
    /// In session lists: whether this is the calling session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
}

impl SessionView {
    pub fn new(info: &SessionInfo, in_list: bool) -> Self {
        Self::of(
            &info.session,
            info.session.last_active_at,
            info.idle_expires_at,
            in_list.then_some(info.current),
        )
    }

    /// A view of a session as it is, with the activity this instance knows of: no copy
    /// of the session is made first (a token check answers this on every call).
    pub fn of(
        s: &Session,
        last_active_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
        current: Option<bool>,
    ) -> Self {
        Self {
            id: s.id.as_uuid(),
            user_id: s.user_id.map(|u| u.as_uuid()),
            auth_method: s.auth_method.as_string(),
            created_at: s.created_at,
            last_active_at,
            expires_at: s.expires_at,
            idle_expires_at,
            device: DeviceView {
                device_id: s.device.device_id.clone(),
                user_agent: s.device.user_agent.clone(),
                ip: s.device.ip.clone(),
                label: s.device.label.clone(),
            },
            current,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub active: bool,
    /// Whether the person proved they read mail at `email`.
    pub email_verified: bool,
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// From an identity provider, when one vouched for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Profile JSON from an identity provider, when one vouched for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Value>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email.as_ref().map(|e| e.as_str().to_owned()),
            name: u.name.clone(),
            active: u.active,
            email_verified: u.email_verified,
            created_at: u.created_at,
            mobile: u.mobile.clone(),
            profile: u.profile.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    pub session: SessionView,
    /// Null for anonymous sessions.
    pub user: Option<UserView>,
}

impl From<TokenGrant> for TokenResponse {
    fn from(g: TokenGrant) -> Self {
        Self {
            access_token: g.access_token,
            token_type: "Bearer",
            expires_in: g.access_expires_in,
            refresh_token: g.refresh_token.expose(),
            refresh_expires_in: g.refresh_expires_in,
            session: SessionView::new(&g.session, false),
            user: g.user.as_ref().map(UserView::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub session: SessionView,
    pub user: Option<UserView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupResult {
    pub deleted: u64,
}

/// `{valid: true, …}` or `{valid: false, reason, revoked_reason?}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateResponse {
    pub valid: bool,
    /// `access` or `refresh` (valid tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Null for anonymous sessions (valid tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Option<Uuid>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::rfc3339::option::serialize"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// The error code the token would get (invalid tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Why the session ended, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<&'static str>,
}

/// RFC 7662 introspection response.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct IntrospectResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (serving, but Redis is unreachable so rate limits are counted
    /// per instance) or `unavailable`.
    pub status: &'static str,
    pub storage: &'static str,
    /// `ok`, `degraded` (configured but unreachable) or `not_configured`.
    pub redis: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpRequest {
    pub email: String,
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpChallengeResponse {
    pub challenge_id: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpVerifyRequest {
    pub challenge_id: String,
    /// The code from the mail; spaces and dashes are ignored.
    pub code: String,
    /// Defaults to the device sent with the code request.
    pub device: Option<DeviceInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// A provider name from the `[exchange.providers]` configuration.
    pub provider: String,
    /// The partner app's token for its user, or the ID token of an `oidc` provider
    /// (Sign in with Apple/Google); an ID token logs in once.
    #[schema(min_length = 1, max_length = 8192)]
    pub token: String,
    /// `oidc` providers: the nonce the app passed to the sign-in (raw; a provider
    /// configured with `nonce_hash = "sha256"` compares its SHA-256). Required unless the
    /// provider's `nonce` policy is `optional` or `ignored`; partner providers ignore it.
    #[schema(min_length = 1, max_length = 1024)]
    pub nonce: Option<String>,
    pub device: Option<DeviceInput>,
}

/// A token response in cookie mode (`Sessiond-Token-Transport: cookie`): the tokens are
/// in `Set-Cookie`, never in the body.
#[derive(Debug, Serialize, ToSchema)]
pub struct CookieTokenResponse {
    /// Always `cookie`.
    #[schema(value_type = String, example = "cookie")]
    pub token_transport: &'static str,
    /// Seconds until the access token (and its cookie) expires.
    pub expires_in: i64,
    /// Seconds until the refresh token (and its cookie) expires.
    pub refresh_expires_in: i64,
    pub session: SessionView,
    /// Null for anonymous sessions.
    pub user: Option<UserView>,
}

impl From<&TokenGrant> for CookieTokenResponse {
    fn from(g: &TokenGrant) -> Self {
        Self {
            token_transport: "cookie",
            expires_in: g.access_expires_in,
            refresh_expires_in: g.refresh_expires_in,
            session: SessionView::new(&g.session, false),
            user: g.user.as_ref().map(UserView::from),
        }
    }
}
