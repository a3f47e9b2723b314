//! The session states token checks decide on, kept in process so that a check costs no
//! storage round trip in the common case.
//!
//! Exactness comes from invalidation, not from expiry: every change to a session or user
//! anywhere is published (see [`crate::state::fanout`]) and evicts the entry on every instance.
//! Three rules keep that exact:
//! - the cache is only consulted while invalidations are known to arrive (`usable`); when
//!   the channel drops, it is emptied and bypassed until the channel is back;
//! - an entry read from storage is not stored if any invalidation arrived while it was being
//!   read (`epoch`), so a late read cannot resurrect a revoked session;
//! - the TTL is only a backstop for bugs, not part of the correctness argument.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessiond_core::jwt::AccessClaims;
use sessiond_core::{Session, SessionId, User, UserId};

/// A change another instance (or this one) made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    Session(SessionId),
    User(UserId),
    /// Anything may have changed (e.g. after missed notifications).
    Everything,
}

impl Invalidation {
    pub fn encode(&self) -> String {
        match self {
            Invalidation::Session(id) => format!("s:{id}"),
            Invalidation::User(id) => format!("u:{id}"),
            Invalidation::Everything => "*".to_owned(),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        match text.split_once(':') {
            Some(("s", id)) => id.parse().ok().map(Invalidation::Session),
            Some(("u", id)) => id.parse().ok().map(Invalidation::User),
            _ if text == "*" => Some(Invalidation::Everything),
            _ => None,
        }
    }
}

/// How a cache's lookups ended, for the metrics. A token check pays one relaxed atomic
/// add; the metrics endpoint reads the totals when it is scraped.
#[derive(Debug, Default)]
pub struct Lookups {
    hit: AtomicU64,
    miss: AtomicU64,
    bypassed: AtomicU64,
}

/// The totals of [`Lookups`] since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupTotals {
    pub hit: u64,
    pub miss: u64,
    /// Not looked up at all: the cache could not be trusted then.
    pub bypassed: u64,
}

impl Lookups {
    fn count<T>(&self, found: Option<T>) -> Option<T> {
        let tally = if found.is_some() {
            &self.hit
        } else {
            &self.miss
        };
        tally.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn totals(&self) -> LookupTotals {
        LookupTotals {
            hit: self.hit.load(Ordering::Relaxed),
            miss: self.miss.load(Ordering::Relaxed),
            bypassed: self.bypassed.load(Ordering::Relaxed),
        }
    }
}

/// A cached value and when it was stored (for the TTL backstop).
type Stamped<T> = (Instant, Arc<T>);

pub struct SessionCache {
    sessions: quick_cache::sync::Cache<SessionId, Stamped<Session>>,
    users: quick_cache::sync::Cache<UserId, Stamped<User>>,
    ttl: Duration,
    usable: AtomicBool,
    epoch: AtomicU64,
    lookups: Lookups,
}

/// Where a lookup started, to decide later whether its result may be stored.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl SessionCache {
    pub fn new(capacity: usize, ttl: Duration, usable: bool) -> Self {
        Self {
            sessions: quick_cache::sync::Cache::new(capacity),
            users: quick_cache::sync::Cache::new(capacity),
            ttl,
            usable: AtomicBool::new(usable),
            epoch: AtomicU64::new(0),
            lookups: Lookups::default(),
        }
    }

    /// The cached state, if the cache may be trusted now and holds both halves.
    pub fn get(&self, id: SessionId) -> Option<(Arc<Session>, Option<Arc<User>>)> {
        if !self.usable.load(Ordering::Acquire) {
            self.lookups.bypassed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.lookups.count(self.lookup(id))
    }

    fn lookup(&self, id: SessionId) -> Option<(Arc<Session>, Option<Arc<User>>)> {
        let now = Instant::now();
        let session = fresh(&self.sessions, &id, self.ttl, now)?;
        let user = match session.user_id {
            Some(uid) => Some(fresh(&self.users, &uid, self.ttl, now)?),
            None => None,
        };
        Some((session, user))
    }

    pub fn lookups(&self) -> LookupTotals {
        self.lookups.totals()
    }

    /// Take before reading from storage; pass to [`put`](Self::put).
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Stores what storage answered, unless something was invalidated since `ticket`.
    pub fn put(&self, ticket: Ticket, session: &Arc<Session>, user: Option<&Arc<User>>) {
        if !self.usable.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        let now = Instant::now();
        if let Some(user) = user {
            self.users.insert(user.id, (now, user.clone()));
        }
        self.sessions.insert(session.id, (now, session.clone()));
    }

    pub fn invalidate(&self, what: Invalidation) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match what {
            Invalidation::Session(id) => {
                self.sessions.remove(&id);
            }
            Invalidation::User(id) => {
                self.users.remove(&id);
            }
            Invalidation::Everything => {
                self.sessions.clear();
                self.users.clear();
            }
        }
    }

    /// Whether invalidations are known to arrive; any change empties the cache, since
    /// some may have been missed.
    pub fn set_usable(&self, usable: bool) {
        if self.usable.swap(usable, Ordering::AcqRel) != usable {
            self.invalidate(Invalidation::Everything);
        }
    }

    pub fn is_usable(&self) -> bool {
        self.usable.load(Ordering::Acquire)
    }
}

/// The entry for `key` unless it is older than `ttl` (then it is dropped).
fn fresh<K, T>(
    cache: &quick_cache::sync::Cache<K, Stamped<T>>,
    key: &K,
    ttl: Duration,
    now: Instant,
) -> Option<Arc<T>>
where
    K: Eq + std::hash::Hash + Clone,
{
    let (stored_at, value) = cache.get(key)?;
    if now.saturating_duration_since(stored_at) > ttl {
        cache.remove(key);
        return None;
    }
    Some(value)
}

/// Access tokens whose signature, type, issuer and audience were verified, keyed by the
/// exact token text: a client presents the same token many times, and an Ed25519
/// verification costs tens of microseconds where this lookup costs well under one. Any
/// changed byte is a different key, so nothing unverified is ever accepted; expiry is still
/// checked on every use (so entries need no time limit of their own), and session state
/// still comes from the session cache or storage.
pub struct VerifiedTokens {
    claims: quick_cache::sync::Cache<Box<str>, Arc<AccessClaims>>,
    lookups: Lookups,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            claims: quick_cache::sync::Cache::new(capacity),
            lookups: Lookups::default(),
        }
    }

    pub fn get(&self, token: &str) -> Option<Arc<AccessClaims>> {
        self.lookups.count(self.claims.get(token))
    }

    pub fn lookups(&self) -> LookupTotals {
        self.lookups.totals()
    }

    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>) {
        self.claims.insert(token.into(), claims);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use sessiond_core::{AuthMethod, Device};

    fn session(user: Option<UserId>) -> Session {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Session {
            id: SessionId::new(),
            user_id: user,
            auth_method: AuthMethod::Password,
            created_at: t,
            last_active_at: t,
            expires_at: t,
            revoked_at: None,
            revoked_reason: None,
            device: Device::default(),
        }
    }

    fn user() -> User {
        User {
            id: UserId::new(),
            email: None,
            name: None,
            active: true,
            email_verified: false,
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            mobile: None,
            profile: None,
        }
    }

    fn cache() -> SessionCache {
        SessionCache::new(1000, Duration::from_secs(60), true)
    }

    #[test]
    fn hits_need_both_session_and_user() {
        let c = cache();
        let u = Arc::new(user());
        let s = Arc::new(session(Some(u.id)));
        c.put(c.ticket(), &s, Some(&u));
        assert_eq!(c.get(s.id), Some((s.clone(), Some(u.clone()))));
        c.invalidate(Invalidation::User(u.id));
        assert_eq!(c.get(s.id), None, "a user change makes the session a miss");
        let anon = Arc::new(session(None));
        c.put(c.ticket(), &anon, None);
        assert_eq!(c.get(anon.id), Some((anon, None)));
    }

    #[test]
    fn lookups_are_counted_by_how_they_ended() {
        let c = cache();
        let s = Arc::new(session(None));
        assert_eq!(c.get(s.id), None);
        c.put(c.ticket(), &s, None);
        assert!(c.get(s.id).is_some());
        assert!(c.get(s.id).is_some());
        c.set_usable(false);
        assert_eq!(c.get(s.id), None);
        assert_eq!(
            c.lookups(),
            LookupTotals {
                hit: 2,
                miss: 1,
                bypassed: 1
            }
        );
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let c = cache();
        let s = Arc::new(session(None));
        let ticket = c.ticket();
        c.invalidate(Invalidation::Session(s.id));
        c.put(ticket, &s, None);
        assert_eq!(c.get(s.id), None);
    }

    #[test]
    fn an_unusable_cache_answers_nothing_and_forgets_everything() {
        let c = cache();
        let s = Arc::new(session(None));
        c.put(c.ticket(), &s, None);
        c.set_usable(false);
        assert_eq!(c.get(s.id), None);
        c.put(c.ticket(), &s, None);
        c.set_usable(true);
        assert_eq!(c.get(s.id), None, "emptied on the way back");
    }

    #[test]
    fn entries_older_than_the_ttl_are_misses() {
        let c = SessionCache::new(1000, Duration::from_millis(30), true);
        let s = Arc::new(session(None));
        c.put(c.ticket(), &s, None);
        assert!(c.get(s.id).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(s.id), None);
    }

    #[test]
    fn invalidations_round_trip_their_wire_form() {
        for inv in [
            Invalidation::Session(SessionId::new()),
            Invalidation::User(UserId::new()),
            Invalidation::Everything,
        ] {
            assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
        }
        assert_eq!(Invalidation::decode("x:nope"), None);
        assert_eq!(Invalidation::decode("s:not-a-uuid"), None);
    }
}
