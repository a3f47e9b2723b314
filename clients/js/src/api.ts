// Generated from sessiond's /openapi.json by scripts/gen-types.mjs: do not edit.
// The tests regenerate it from the server they start and fail on any difference.

export interface AdminSessionRequest {
  /** Initial app data (a JSON object of at most 16 KiB). */
  data?: Record<string, unknown> | null;
  device?: null | DeviceInput;
  /** A sessiond user id; an id not seen before creates that user. */
  user_id: string;
}

export interface AnonymousSessionRequest {
  device?: null | DeviceInput;
}

export interface ChangePasswordRequest {
  current_password: string;
  /** The same rules as at registration. */
  new_password: string;
}

export interface CleanupResult {
  deleted: number;
}

export interface CodeConfirmRequest {
  challenge_id: string;
  /** The code from the mail; spaces and dashes are ignored. */
  code: string;
}

/** A token response in cookie mode (`Sessiond-Token-Transport: cookie`): the tokens are in `Set-Cookie`, never in the body. */
export interface CookieTokenResponse {
  /** Seconds until the access token (and its cookie) expires. */
  expires_in: number;
  /** Seconds until the refresh token (and its cookie) expires. */
  refresh_expires_in: number;
  session: SessionView;
  /** Always `cookie`: the tokens are in `Set-Cookie` */
  token_transport: "cookie";
  user?: null | UserView;
}

/** The device a session is created on, as the client describes it. */
export interface DeviceInput {
  /** A stable id the app chose for this installation. */
  device_id?: string | null;
  /** A name a person recognises, e.g. "Ann's iPhone". */
  label?: string | null;
  /** Defaults to the request's `User-Agent`. */
  user_agent?: string | null;
}

export interface DeviceView {
  device_id?: string | null;
  ip?: string | null;
  label?: string | null;
  user_agent?: string | null;
}

export interface EmailChangeRequest {
  /** An email address; surrounding blanks are trimmed and it is lower-cased */
  email: string;
}

export interface EventPageView {
  events: EventView[];
  /** Where the next page starts; null when this page is the last one now. */
  next_cursor?: number | null;
}

/** An audit event: what happened, to whom, and its own fields. */
export interface EventView {
  /** The type's own fields (`session.ended`: `reason` and `initiator`; `login.failed`: `method` and `reason`; …). */
  data: Record<string, unknown>;
  /** Also the `webhook-id` of its deliveries. */
  id: string;
  occurred_at: string;
  /** Its place in the log; the cursor. */
  seq: number;
  session_id?: string | null;
  /** `user.created`, `session.ended`, `login.failed`, … */
  type: string;
  user_id?: string | null;
}

/** The sessions `DELETE /v1/sessions` leaves alone. */
export type Except = "current";

export interface ExchangeRequest {
  device?: null | DeviceInput;
  /** `oidc` providers: the nonce the app passed to the sign-in (raw; a provider configured with `nonce_hash = "sha256"` compares its SHA-256). Required unless the provider's `nonce` policy is `optional` or `ignored`; partner providers ignore it. */
  nonce?: string | null;
  /** A configured provider: one of `enum`; a server with none configured (JSON Schema has no empty `enum`) answers every exchange with `422` */
  provider: string;
  /** The partner app's token for its user, or the ID token of an `oidc` provider (Sign in with Apple/Google); an ID token logs in once. */
  token: string;
}

export interface Health {
  status: string;
}

export interface IdentityView {
  created_at: string;
  /** Who the user is at the provider. */
  external_id: string;
  /** The exchange provider's name. */
  provider: string;
}

export interface IntrospectRequest {
  token: string;
  /** Ignored: the token's shape tells its type. */
  token_type_hint?: string | null;
}

/** RFC 7662 introspection response. */
export interface IntrospectResponse {
  active: boolean;
  amr?: string[] | null;
  aud?: string | null;
  exp?: number | null;
  iat?: number | null;
  iss?: string | null;
  jti?: string | null;
  sid?: string | null;
  sub?: string | null;
  token_type?: string | null;
  username?: string | null;
}

export interface OtpChallengeResponse {
  challenge_id: string;
  /** Seconds the code stays valid. */
  expires_in: number;
}

export interface OtpRequest {
  device?: null | DeviceInput;
  /** An email address; surrounding blanks are trimmed and it is lower-cased */
  email: string;
}

export interface OtpVerifyRequest {
  challenge_id: string;
  /** The code from the mail; spaces and dashes are ignored. */
  code: string;
  device?: null | DeviceInput;
}

export interface PasswordLoginRequest {
  device?: null | DeviceInput;
  /** An email address; surrounding blanks are trimmed and it is lower-cased */
  email: string;
  password: string;
}

export interface PasswordResetConfirmRequest {
  challenge_id: string;
  /** The code from the mail; spaces and dashes are ignored. */
  code: string;
  device?: null | DeviceInput;
  /** The same rules as at registration. */
  new_password: string;
}

export interface PasswordResetRequest {
  device?: null | DeviceInput;
  /** An email address; surrounding blanks are trimmed and it is lower-cased */
  email: string;
}

export interface PatchUserRequest {
  /** `false` ends every session of the user at once (`user_deactivated`). */
  active?: boolean | null;
  /** A new address (unverified unless `email_verified` is sent too); surrounding blanks are trimmed and it is lower-cased */
  email?: string | null;
  email_verified?: boolean | null;
  /** A display name; `null` clears it. */
  name?: string | null;
}

/** An RFC 9457 problem document; members beyond the standard ones appear where they apply. */
export interface Problem {
  /** Stable machine-readable code */
  code: "VALIDATION_ERROR" | "TOKEN_NOT_PROVIDED" | "TOKEN_INVALID" | "TOKEN_EXPIRED" | "SESSION_REVOKED" | "SESSION_EXPIRED" | "SESSION_INACTIVE" | "USER_INACTIVE" | "REFRESH_TOKEN_INVALID" | "REFRESH_TOKEN_EXPIRED" | "REFRESH_TOKEN_REUSED" | "INVALID_CREDENTIALS" | "OTP_INVALID" | "OTP_EXPIRED" | "OTP_ATTEMPTS_EXCEEDED" | "UPSTREAM_REJECTED" | "UPSTREAM_RATE_LIMITED" | "UPSTREAM_UNAVAILABLE" | "FORBIDDEN" | "CSRF_REJECTED" | "EMAIL_NOT_VERIFIED" | "NOT_FOUND" | "METHOD_NOT_ALLOWED" | "CONFLICT" | "SESSION_LIMIT_EXCEEDED" | "PAYLOAD_TOO_LARGE" | "RATE_LIMITED" | "INTERNAL_ERROR" | "STORAGE_UNAVAILABLE" | "SERVICE_OVERLOADED" | "REVOCATION_CURSOR_EXPIRED";
  detail: string;
  /** `VALIDATION_ERROR`: the fields at fault */
  errors?: ({
    field: string;
    message: string;
    /** The password rule the value broke */
    reason?: "too_short" | "too_long" | "common" | "matches_email";
  })[];
  /** `TOKEN_EXPIRED` */
  expired_at?: string;
  /** `urn:sessiond:request:<X-Request-Id>`, for finding the request's log lines */
  instance?: string;
  /** Seconds, as in `Retry-After` */
  retry_after?: number;
  /** `SESSION_REVOKED`: why the session ended */
  revoked_reason?: "logout" | "revoked_by_user" | "revoked_others" | "admin" | "user_deactivated" | "user_deleted" | "password_changed" | "password_reset" | "refresh_token_reused" | "evicted_by_limit" | "idle_timeout" | "absolute_lifetime";
  /** `SESSION_LIMIT_EXCEEDED`: the user's live sessions */
  sessions?: {
    device: DeviceView;
    id: string;
    last_active_at: string;
  }[];
  status: number;
  /** The same for every occurrence of the code */
  title: string;
  /** `urn:sessiond:problem:<code in lower case>` */
  type: string;
}

export interface Readiness {
  /** `ok`, `degraded` (configured but unreachable) or `not_configured`. */
  redis: string;
  /** `ready`, `degraded` (serving, but Redis is unreachable so rate limits are counted per instance) or `unavailable`. */
  status: string;
  storage: string;
}

export interface RefreshRequest {
  /** Left out in cookie mode: the refresh cookie carries the token. */
  refresh_token?: string | null;
}

export interface RegisterRequest {
  device?: null | DeviceInput;
  /** An email address; surrounding blanks are trimmed and it is lower-cased */
  email: string;
  /** A display name. */
  name?: string | null;
  /** At least 8 and at most 256 characters, not one of the 10 000 most common passwords, not the email address (`errors[].reason` names the rule broken). */
  password: string;
}

/** One fact of the feed. `session_revoked`: refuse tokens whose `sid` is `sid`. `user_revoked`: refuse tokens whose `sub` is `sub` and whose `iat` is before `not_before` (whole seconds). `keys_changed`: refetch the JWKS. Each fact may be forgotten once `max_exp` has passed: no token it is about lives longer. */
export interface RevocationEvent {
  /** When the fact was written. */
  at: string;
  /** This fact's place in the feed; continue after it with `?after=`. */
  cursor: string;
  max_exp: string;
  not_before?: string | null;
  /** Why the session or user was revoked (the contract's reason list). */
  reason?: string | null;
  sid?: string | null;
  sub?: string | null;
  type: RevocationType;
}

/** A page of facts, oldest first. */
export interface RevocationPage {
  events: RevocationEvent[];
  /** Whether more facts follow right away. */
  has_more: boolean;
  /** Where to continue from (`?after=`, or `Last-Event-ID` on the stream). */
  next_cursor: string;
}

/** What a fact is about. */
export type RevocationType = "session_revoked" | "user_revoked" | "keys_changed";

export interface RevokeForm {
  /** An access token or a refresh token. */
  token: string;
  /** `access_token` or `refresh_token`; a hint only (both are tried). */
  token_type_hint?: string | null;
}

export interface RevokedCount {
  revoked: number;
}

/** What sessiond honestly supports, in RFC 8414's terms, plus where its revocation feed is. sessiond is not an OAuth authorization server for third-party clients: it has no authorization or token endpoint, so it lists no response or grant types. */
export interface ServerMetadata {
  /** RFC 7662, authenticated with a verifier key or the admin API key (bearer). */
  introspection_endpoint: string;
  /** The `iss` of every access token. */
  issuer: string;
  jwks_uri: string;
  /** None: sessiond has no authorization endpoint. */
  response_types_supported: string[];
  /** RFC 7009, for the holder of a token (no client authentication). */
  revocation_endpoint: string;
  revocation_endpoint_auth_methods_supported: string[];
  /** sessiond's own: the revocation feed (poll) for local verifiers. */
  revocation_feed_endpoint: string;
  /** sessiond's own: the revocation feed as Server-Sent Events. */
  revocation_stream_endpoint: string;
  service_documentation: string;
  /** Access tokens are signed with Ed25519 (`EdDSA`). */
  token_endpoint_auth_signing_alg_values_supported: string[];
}

export interface SessionList {
  sessions: SessionView[];
}

export interface SessionView {
  /** `pwd`, `otp`, `exchange:<provider>`, `anon` or `admin`. */
  auth_method: string;
  created_at: string;
  /** In session lists: whether this is the calling session. */
  current?: boolean | null;
  device: DeviceView;
  /** Absolute end of the session. */
  expires_at: string;
  id: string;
  /** When the session ends if it stays idle. */
  idle_expires_at: string;
  last_active_at: string;
  user_id?: string | null;
}

export interface TokenResponse {
  access_token: string;
  /** Seconds until the access token expires. */
  expires_in: number;
  /** Seconds until the refresh token expires. */
  refresh_expires_in: number;
  refresh_token: string;
  session: SessionView;
  /** Always `Bearer`. */
  token_type: string;
  user?: null | UserView;
}

/** A user, with how it signs in and how much it is signed in. */
export type UserDetailView = UserView & {
  /** Whether the user has a password (else it signs in by code, exchange or backend). */
  has_password: boolean;
  identities: IdentityView[];
  /** The latest activity of any live session; null without one. */
  last_active_at?: string | null;
  /** Live sessions now. */
  session_count: number;
};

export interface UserPageView {
  /** Where the next page starts; null after the last. */
  next_cursor?: string | null;
  users: UserView[];
}

export interface UserView {
  active: boolean;
  created_at: string;
  email?: string | null;
  /** Whether the person proved they read mail at `email`. */
  email_verified: boolean;
  id: string;
  /** From an identity provider, when one vouched for it. */
  mobile?: string | null;
  name?: string | null;
  /** Profile JSON from an identity provider, when one vouched for it. */
  profile?: Record<string, unknown> | null;
}

export interface ValidateRequest {
  /** An access or a refresh token. */
  token: string;
}

/** `{valid: true, …}` or `{valid: false, reason, revoked_reason?}`. */
export interface ValidateResponse {
  expires_at?: string | null;
  /** The error code the token would get (invalid tokens). */
  reason?: string | null;
  /** Why the session ended, when it did. */
  revoked_reason?: string | null;
  session_id?: string | null;
  /** `access` or `refresh` (valid tokens). */
  token_type?: string | null;
  /** Null for anonymous sessions (valid tokens). */
  user_id?: string | null;
  valid: boolean;
}

export interface WhoAmI {
  session: SessionView;
  user?: null | UserView;
}
