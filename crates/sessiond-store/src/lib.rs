//! Storage for sessiond: one [`Store`] trait, one module per backend, and a conformance
//! suite every backend must pass.
//!
//! The trait is deliberately low-level: reads, and a write transaction ([`Tx`]) of small
//! primitive statements. The session rules (rotation, grace, limits) are written once,
//! above this layer, on top of a transaction that each backend makes atomic in its own
//! way (SQLite serialises writers; PostgreSQL locks rows).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::otp::{OtpChallenge, OtpPurpose};
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::revocation::{FeedBounds, Revocation, RevocationFact};
use sessiond_core::{
    AuthMethod, Device, Email, RefreshTokenId, RevokeReason, Session, SessionId, TokenHash, User,
    UserId,
};

#[cfg(feature = "testing")]
pub mod conformance;
mod events;
pub mod postgres;
mod revocation_rows;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use events::{
    Delivery, DeliveryClaim, DeliveryOutcome, EventQuery, NewEvent, StoredEvent, WebhookBacklog,
};
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or failed to answer in time.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was violated; names what was duplicated.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored value could not be read back into the domain.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Pool hook (`after_release`) for every backend: a connection that comes back still
/// inside a transaction is closed instead of reused, which rolls the transaction back.
/// That happens when a request is cancelled at the wrong moment (its client went away
/// while the transaction was being opened), and a reused connection would then refuse
/// every later transaction: on SQLite's single writer, every later write.
pub(crate) fn reusable<C: sqlx::Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a connection came back inside a transaction; closing it");
    }
    Box::pin(std::future::ready(Ok(clean)))
}

/// Pool hook (`before_acquire`) for PostgreSQL, replacing sqlx's default ping before every
/// acquire: a connection in steady use is known to be alive (its last query just worked),
/// and a ping is a network round trip on every transaction. Only a connection that sat
/// idle long enough for the server or a proxy to have dropped it is pinged first.
pub(crate) fn alive_or_recent<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    const TRUSTED_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
    Box::pin(async move {
        if meta.idle_for < TRUSTED_IDLE {
            return Ok(true);
        }
        // A failed ping discards the connection; the pool then opens another.
        Ok(conn.ping().await.is_ok())
    })
}

pub struct NewUser {
    pub id: UserId,
    pub email: Option<Email>,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    /// Whether the address is already proven (e.g. it came with a redeemed code).
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

/// What an admin changes on a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub email: Option<Email>,
    pub email_verified: Option<bool>,
}

/// Which users an admin lists: every filter given must hold. Ordered by id.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Exactly this (normalised) address.
    pub email: Option<Email>,
    /// A lower-cased prefix of the email or of the name.
    pub prefix: Option<String>,
    pub active: Option<bool>,
    pub email_verified: Option<bool>,
    /// Only users whose id sorts after this one (the page cursor).
    pub after: Option<UserId>,
    pub limit: u32,
}

/// A link between a user and an account at an external provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub provider: String,
    pub external_id: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewSession {
    pub id: SessionId,
    pub user_id: Option<UserId>,
    pub auth_method: AuthMethod,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub device: Device,
    pub data: Option<serde_json::Value>,
}

pub struct NewRefreshToken {
    pub id: RefreshTokenId,
    pub session_id: SessionId,
    pub hash: TokenHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A user together with their password hash, for the login path only.
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

/// Profile facts an identity provider vouched for, refreshed at each exchange.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserProfile {
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub profile: Option<serde_json::Value>,
}

/// Which sessions count as live at an instant: not revoked, before their absolute end,
/// and active since `idle_cutoff` (as far as storage knows).
#[derive(Debug, Clone, Copy)]
pub struct LiveWindow {
    pub now: DateTime<Utc>,
    pub idle_cutoff: DateTime<Utc>,
}

/// Which ended sessions may be deleted: ended (revoked, expired, idle) before these
/// instants.
#[derive(Debug, Clone, Copy)]
pub struct PurgeBefore {
    /// Revoked before this, or absolute end before this.
    pub ended_before: DateTime<Utc>,
    /// Last activity before this (idle end past retention).
    pub idle_before: DateTime<Utc>,
    pub batch_size: u32,
}

/// Reads, and the entry to write transactions.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Name of the backend, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    async fn ping(&self) -> StoreResult<()>;

    /// Applies pending migrations. Safe to call on every start.
    async fn migrate(&self) -> StoreResult<()>;

    /// Begins a write transaction. Dropping it without `commit` rolls it back.
    async fn begin(&self) -> StoreResult<Box<dyn Tx>>;

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>>;
    async fn user_credentials(&self, id: UserId) -> StoreResult<Option<UserCredentials>>;
    /// A page of users, by id.
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
    /// The user's links to external providers, oldest first.
    async fn identities_of_user(&self, id: UserId) -> StoreResult<Vec<Identity>>;

    /// The session and, for a bound session, its user: all a token check needs.
    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>>;
    /// The user's ended (revoked) sessions, the latest ended first, at most `limit`.
    async fn ended_sessions_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<Session>>;
    /// The user's live sessions, newest first.
    async fn live_sessions_for_user(
        &self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>>;
    async fn session_data(&self, id: SessionId) -> StoreResult<Option<serde_json::Value>>;
    /// Records activity; never moves `last_active_at` backwards.
    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()>;

    async fn refresh_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>>;
    /// Whether the token has been rotated (its successor presented), read outside any
    /// transaction: the check paths use it, and must not take SQLite's single writer.
    async fn refresh_token_is_rotated(&self, id: RefreshTokenId) -> StoreResult<bool>;

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;

    /// Revocation facts numbered after `after`, oldest first, at most `limit`.
    async fn revocations_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Revocation>>;
    /// Where the revocation feed stands.
    async fn revocation_bounds(&self) -> StoreResult<FeedBounds>;
    /// A page of the facts numbered in `(page.after, page.through]` whose tokens may
    /// outlive `page.now`, oldest first: what a verifier starting afresh must know before
    /// following the feed from `through`, read a page at a time so that a snapshot of
    /// many facts is never held whole.
    async fn live_revocations(&self, page: &LivePage) -> StoreResult<Vec<Revocation>>;
    /// Forgets the facts whose tokens are all dead by `before`, moving the feed's
    /// `purged_through` past them; how many went.
    async fn purge_revocations(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Deletes one batch of sessions that ended before the cut-offs (with their refresh
    /// tokens); returns how many were deleted. Callers loop until it returns 0.
    async fn purge_ended_sessions(&self, before: PurgeBefore) -> StoreResult<u64>;

    /// When the address's newest one-time-code challenge for `purpose` was created.
    async fn latest_otp_challenge_at(
        &self,
        email: &str,
        purpose: OtpPurpose,
    ) -> StoreResult<Option<DateTime<Utc>>>;

    /// Deletes one batch of challenges that expired before `before`.
    async fn purge_otp_challenges(
        &self,
        before: DateTime<Utc>,
        batch_size: u32,
    ) -> StoreResult<u64>;

    /// Deletes one batch of spent-token fingerprints that expired before `before`.
    async fn purge_spent_tokens(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64>;

    /// Events after `query.after` that pass every filter, by `seq`.
    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<StoredEvent>>;

    /// Deletes one batch of events that happened before `before`, with their deliveries.
    async fn purge_events(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64>;

    /// Leases up to `claim.limit` due deliveries: pending, due by `claim.now`, not leased
    /// by anyone now, and not waiting behind an earlier pending delivery of the same
    /// endpoint and ordering key. Instances claiming at once never get the same one.
    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> StoreResult<Vec<Delivery>>;

    /// Records how an attempt at a delivery ended, and releases its lease.
    async fn finish_delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()>;

    /// Disables an endpoint at this URL: its pending deliveries end (state `disabled`) and
    /// [`Store::disabled_endpoints`] names it until its URL changes. The number ended.
    async fn disable_endpoint(
        &self,
        endpoint: &str,
        url: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// The disabled (endpoint, URL) pairs.
    async fn disabled_endpoints(&self) -> StoreResult<Vec<(String, String)>>;

    /// Pending deliveries per endpoint that has any.
    async fn webhook_backlog(&self) -> StoreResult<Vec<WebhookBacklog>>;

    /// Users stored, active or not.
    async fn count_users(&self) -> StoreResult<u64>;

    /// How many sessions are live in `window` (not revoked, within their absolute lifetime,
    /// active since the idle cut-off), across every instance sharing this storage. As
    /// stored: activity not yet written may make a few recently idle ones count as idle.
    async fn count_live_sessions(&self, window: LiveWindow) -> StoreResult<u64>;

    /// The connection pools as they are now, for the metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Unrevoked sessions whose `expires_at` (or `last_active_at`, as `by` says) is in
    /// `[from, to)`, in that column's order, at most `limit`: the sessions that may have
    /// ended by themselves since a sweep last looked.
    async fn unrevoked_sessions_ending(
        &self,
        by: EndingBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Session>>;
}

/// How an unrevoked session ends by itself: the column a sweep for such ends ranges over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndingBy {
    /// Its absolute end (`expires_at`).
    AbsoluteLifetime,
    /// Its last activity (`last_active_at`) falling behind the idle cut-off.
    Idleness,
}

impl EndingBy {
    fn column(self) -> &'static str {
        match self {
            EndingBy::AbsoluteLifetime => "expires_at",
            EndingBy::Idleness => "last_active_at",
        }
    }

    /// The statement, with `?N` or `$N` placeholders as `placeholder` writes them.
    pub(crate) fn statement(self, session_columns: &str, placeholder: fn(u8) -> String) -> String {
        let column = self.column();
        format!(
            "SELECT {session_columns} FROM sessions s \
             WHERE s.revoked_at IS NULL AND s.{column} >= {} AND s.{column} < {} \
             ORDER BY s.{column} LIMIT {}",
            placeholder(1),
            placeholder(2),
            placeholder(3)
        )
    }
}

/// Which page of a revocation snapshot to read (see [`Store::live_revocations`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivePage {
    pub after: u64,
    pub through: u64,
    pub now: DateTime<Utc>,
    pub limit: u32,
}

/// One connection pool of a store: how many connections it holds and how many are at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `reader` and `writer` (SQLite), `main` (PostgreSQL).
    pub pool: &'static str,
    pub open: u32,
    pub in_use: u32,
    pub max: u32,
}

/// One atomic unit of writes. Every read inside sees the transaction's own writes, and
/// nothing another writer does can interleave with it.
#[async_trait]
pub trait Tx: Send {
    async fn insert_user(&mut self, user: &NewUser) -> StoreResult<User>;
    /// The user, locked against concurrent changes to its sessions until commit.
    async fn lock_user(&mut self, id: UserId) -> StoreResult<Option<User>>;
    async fn set_user_active(
        &mut self,
        id: UserId,
        active: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    /// Replaces the password hash; false if there is no such user.
    async fn set_password_hash(
        &mut self,
        id: UserId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Applies an admin's changes; the updated user. A taken email is a `Conflict`.
    async fn update_user(
        &mut self,
        id: UserId,
        changes: &UserChanges,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;
    /// Erases the user with its sessions, refresh tokens, identities and codes, and takes
    /// the `device` (IP address, user agent) out of its events, which stay as the record
    /// of what happened; false if there was no such user. Revoke its sessions (and record
    /// that) first.
    async fn delete_user(&mut self, id: UserId) -> StoreResult<bool>;

    /// The session (locked until commit) with its user.
    async fn lock_session(&mut self, id: SessionId)
    -> StoreResult<Option<(Session, Option<User>)>>;
    /// Live sessions of the user, oldest first (by creation time).
    async fn live_sessions_for_user(
        &mut self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>>;
    async fn insert_session(&mut self, session: &NewSession) -> StoreResult<()>;
    /// Binds an anonymous session to a user after a login on it.
    async fn bind_session(
        &mut self,
        id: SessionId,
        user: UserId,
        method: &AuthMethod,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn set_last_active(&mut self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Replaces the session's app data; false if there is no such session.
    async fn set_session_data(
        &mut self,
        id: SessionId,
        data: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// Revokes the given sessions that are not revoked yet; returns those it revoked.
    async fn revoke_sessions(
        &mut self,
        ids: &[SessionId],
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>>;
    /// Revokes every unrevoked session of the user, except `keep`; returns those revoked.
    async fn revoke_user_sessions(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionId>>;

    /// Appends facts to the revocation feed, numbered in commit order. Call it last in
    /// the transaction: on PostgreSQL it takes the feed's one lock.
    async fn record_revocations(
        &mut self,
        facts: &[RevocationFact],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The refresh token with this hash, locked until commit.
    async fn lock_refresh_token(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>>;
    /// The refresh token with this hash, its session and the session's user, token and
    /// session locked until commit: all a refresh decides on. The session is locked
    /// first: it is the lock that serialises everything done to its token family, so
    /// concurrent presentations of a token and its successor cannot deadlock.
    async fn lock_refresh_token_and_session(
        &mut self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(StoredRefreshToken, Session, Option<User>)>>;
    async fn refresh_token_is_rotated(&mut self, id: RefreshTokenId) -> StoreResult<bool>;
    async fn insert_refresh_token(&mut self, token: &NewRefreshToken) -> StoreResult<()>;
    /// A rotation's writes: stores `successor` and marks `presented` (locked by this
    /// transaction) rotated in its favour at the successor's creation time, with the
    /// successor sealed under the presented token. One round trip to the database: every
    /// statement a refresh sends waits on the single writer (SQLite) or a row lock.
    async fn rotate_refresh_token(
        &mut self,
        presented: RefreshTokenId,
        successor: &NewRefreshToken,
        sealed: &[u8],
    ) -> StoreResult<()>;
    /// Drops every refresh token of a session (used when an anonymous session is upgraded,
    /// so tokens issued before the login cannot be used after it).
    async fn delete_refresh_tokens(&mut self, session: SessionId) -> StoreResult<()>;

    async fn insert_otp_challenge(
        &mut self,
        challenge: &OtpChallenge,
        device: &Device,
    ) -> StoreResult<()>;
    /// The challenge (locked until commit) and the device it was requested from.
    async fn lock_otp_challenge(&mut self, id: &str)
    -> StoreResult<Option<(OtpChallenge, Device)>>;
    async fn record_otp_failure(&mut self, id: &str) -> StoreResult<()>;
    async fn consume_otp_challenge(&mut self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_otp_challenge(&mut self, id: &str) -> StoreResult<()>;

    /// Records events (and a pending delivery per endpoint each goes to) in this
    /// transaction: they exist exactly when the change they describe does.
    async fn record_events(&mut self, events: &[NewEvent]) -> StoreResult<()>;

    /// Records that the single-use token with this fingerprint was used, until
    /// `expires_at`: `true` the first time, `false` for every later use (on any instance).
    async fn spend_token(
        &mut self,
        fingerprint: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// The user linked to an external identity.
    async fn identity_user(
        &mut self,
        provider: &str,
        external_id: &str,
    ) -> StoreResult<Option<UserId>>;
    async fn insert_identity(
        &mut self,
        provider: &str,
        external_id: &str,
        user: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn user_id_by_email(&mut self, email: &Email) -> StoreResult<Option<UserId>>;
    async fn set_user_email(&mut self, id: UserId, email: &Email) -> StoreResult<()>;
    /// Replaces name, mobile and profile; returns the updated user.
    async fn update_user_profile(
        &mut self,
        id: UserId,
        profile: &UserProfile,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;

    async fn insert_signing_key(&mut self, key: &SigningKey) -> StoreResult<()>;
    /// Retires, at `at`, every key not retired by then: an earlier retirement stands, a
    /// later (scheduled) one is brought forward. Returns how many changed.
    async fn retire_signing_keys(&mut self, at: DateTime<Utc>) -> StoreResult<u64>;

    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
