//! The session rules, written once over the storage traits: logins, rotation, checks,
//! revocation. Handlers call these; they know nothing of HTTP.

pub mod accounts;
pub mod auth;
mod check;
pub mod console;
pub mod events;
mod exchange;
mod expiry;
mod feed;
mod gauges;
mod grant;
pub mod manage;
pub mod otp;
mod refresh;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sessiond_core::jwt::TokenAudience;
use sessiond_core::{Clock, DomainError, Session, SessionId, SessionPolicy, TokenHash, User};
use sessiond_store::{LiveWindow, Store, StoreError};

use crate::infra::password_pool::PasswordPool;
use crate::ratelimit::RateLimiter;
use crate::state::activity::ActivityTracker;
use crate::state::cache::Invalidation;
use crate::state::fanout::Fanout;
use crate::state::keys::KeyManager;

pub use check::{Authenticated, Introspection, Validation};
pub use feed::{FeedPage, MAX_PAGE, SNAPSHOT_PAGE, SnapshotStart, check_cursor};
pub use grant::TokenGrant;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// A session as answered to clients: with the freshest activity this instance knows of
/// and the idle deadline that follows from it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session: Session,
    pub idle_expires_at: DateTime<Utc>,
    pub current: bool,
}

/// What a [`Service`] is made of; the application assembles it at start.
pub struct ServiceParts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub policy: SessionPolicy,
    pub keys: KeyManager,
    pub passwords: PasswordPool,
    pub activity: ActivityTracker,
    pub audience: TokenAudience,
    pub admin_key: TokenHash,
    pub session_retention: chrono::Duration,
    pub limits: RateLimiter,
    /// Announces session and user changes to every instance's cache.
    pub fanout: Arc<Fanout>,
    /// Access tokens already verified, to skip the signature check on repeat presentations.
    pub verified: crate::state::cache::VerifiedTokens,
    pub otp: otp::OtpSettings,
    pub exchange: crate::infra::exchange::Exchange,
    /// Wakes the revocation streams this instance serves.
    pub feed: Arc<crate::state::feed::FeedWatch>,
    /// Hashes of the keys that may read the revocation feed and introspect (besides the
    /// admin key).
    pub verifier_keys: Vec<TokenHash>,
    pub accounts: accounts::AccountSettings,
    pub outbox: Arc<events::Outbox>,
    /// How long events are kept.
    pub events_retention: chrono::Duration,
}

pub struct Service {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    keys: KeyManager,
    passwords: PasswordPool,
    activity: ActivityTracker,
    audience: TokenAudience,
    admin_key: TokenHash,
    session_retention: chrono::Duration,
    limits: RateLimiter,
    /// Announces session and user changes to every instance's cache.
    fanout: Arc<Fanout>,
    /// Access tokens already verified, to skip the signature check on repeat presentations.
    verified: crate::state::cache::VerifiedTokens,
    otp: otp::OtpSettings,
    exchange: crate::infra::exchange::Exchange,
    feed: Arc<crate::state::feed::FeedWatch>,
    verifier_keys: Vec<TokenHash>,
    accounts: accounts::AccountSettings,
    outbox: Arc<events::Outbox>,
    events_retention: chrono::Duration,
    active_sessions: gauges::ActiveSessions,
    expiry: expiry::ExpirySweep,
}

impl From<ServiceParts> for Service {
    fn from(p: ServiceParts) -> Self {
        Self {
            store: p.store,
            clock: p.clock,
            policy: p.policy,
            keys: p.keys,
            passwords: p.passwords,
            activity: p.activity,
            audience: p.audience,
            admin_key: p.admin_key,
            session_retention: p.session_retention,
            limits: p.limits,
            fanout: p.fanout,
            verified: p.verified,
            otp: p.otp,
            exchange: p.exchange,
            feed: p.feed,
            verifier_keys: p.verifier_keys,
            accounts: p.accounts,
            outbox: p.outbox,
            events_retention: p.events_retention,
            active_sessions: gauges::ActiveSessions::default(),
            expiry: expiry::ExpirySweep::default(),
        }
    }
}

impl Service {
    /// Whether storage answers: what readiness reports.
    pub async fn ready(&self) -> Result<(), sessiond_store::StoreError> {
        self.store.ping().await
    }

    /// The signing keys in force, whose public halves verifiers fetch.
    pub fn keys(&self) -> Arc<sessiond_core::jwt::KeyRing> {
        self.keys.current()
    }

    /// Re-reads the signing keys from storage (a rotation by another instance).
    pub async fn reload_keys(&self) -> Result<(), crate::state::keys::KeysError> {
        self.keys.reload(self.store.as_ref(), self.now()).await
    }

    /// The issuer and audience of the tokens this server signs.
    pub fn audience(&self) -> &TokenAudience {
        &self.audience
    }

    /// Counts a request against a per-client-IP limit.
    pub async fn hit_ip_limit(
        &self,
        policy: crate::ratelimit::Policy,
        client: &str,
    ) -> Result<(), DomainError> {
        self.limits.hit(policy, client).await
    }

    /// The configured exchange providers' names.
    pub fn exchange_providers(&self) -> Vec<String> {
        self.exchange.provider_names()
    }

    /// The storage behind the service, for the application's start-up and its tests.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The change announcements between instances, whose listeners the application runs.
    pub fn fanout(&self) -> &Arc<Fanout> {
        &self.fanout
    }

    /// Whether the session cache is kept exact by change announcements yet.
    pub fn cache_is_usable(&self) -> bool {
        self.fanout.cache().is_usable()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn live_window(&self, now: DateTime<Utc>) -> LiveWindow {
        LiveWindow {
            now,
            idle_cutoff: self.policy.idle_cutoff(now),
        }
    }

    /// The newer of the stored and the remembered activity.
    fn last_active(&self, session: &Session) -> DateTime<Utc> {
        self.activity
            .latest(session.id)
            .map_or(session.last_active_at, |seen| {
                seen.max(session.last_active_at)
            })
    }

    pub fn info(&self, mut session: Session, current: Option<SessionId>) -> SessionInfo {
        let (last_active_at, idle_expires_at) = self.activity_of(&session);
        session.last_active_at = last_active_at;
        SessionInfo {
            idle_expires_at,
            current: current == Some(session.id),
            session,
        }
    }

    /// The freshest activity this instance knows of for a session, and the idle deadline
    /// that follows from it.
    pub fn activity_of(&self, session: &Session) -> (DateTime<Utc>, DateTime<Utc>) {
        let last_active_at = self.last_active(session);
        (
            last_active_at,
            self.policy.idle_expires_at(session, last_active_at),
        )
    }

    /// Whether the presented admin API key is ours (compared by hash, in constant time).
    pub fn is_admin_key(&self, presented: &str) -> bool {
        TokenHash::of(presented.as_bytes()).ct_eq(&self.admin_key)
    }

    /// Whether the presented key may read the revocation feed: a verifier key, or the
    /// admin key.
    pub fn is_verifier_key(&self, presented: &str) -> bool {
        let presented = TokenHash::of(presented.as_bytes());
        // Every key compared, so the time taken does not say which one matched.
        self.verifier_keys
            .iter()
            .fold(presented.ct_eq(&self.admin_key), |any, key| {
                any | presented.ct_eq(key)
            })
    }

    /// The revocation streams' shared watch.
    pub fn feed(&self) -> &Arc<crate::state::feed::FeedWatch> {
        &self.feed
    }

    fn check_user(user: Option<&User>) -> Result<(), DomainError> {
        match user {
            Some(u) if !u.active => Err(DomainError::UserInactive),
            _ => Ok(()),
        }
    }

    /// Announces sessions whose state changed (ended, or bound to a user) to the caches
    /// of every instance. Call after commit.
    async fn ended(&self, ids: &[SessionId]) {
        if ids.is_empty() {
            return;
        }
        // Streams of the revocation feed here look at once (the facts are committed).
        self.feed.written();
        for id in ids {
            self.activity.forget(*id);
        }
        let changes: Vec<Invalidation> = ids.iter().map(|id| Invalidation::Session(*id)).collect();
        self.fanout.publish(&changes).await;
        metrics::counter!("sessiond_sessions_revoked_total").increment(ids.len() as u64);
    }
}
