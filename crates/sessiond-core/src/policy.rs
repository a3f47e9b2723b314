use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::session::{RevokeReason, Session};

/// What to do when a user already has `max_sessions_per_user` live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// End the oldest sessions (by creation time) to make room.
    #[default]
    EvictOldest,
    /// Refuse the new login with `SESSION_LIMIT_EXCEEDED`.
    Reject,
}

impl FromStr for OnLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "evict_oldest" => Ok(OnLimit::EvictOldest),
            "reject" => Ok(OnLimit::Reject),
            other => Err(format!(
                "unknown session limit policy {other:?} (expected evict_oldest or reject)"
            )),
        }
    }
}

/// The lifetimes and limits every session obeys.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPolicy {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub refresh_grace: Duration,
    pub idle_timeout: Duration,
    pub absolute_lifetime: Duration,
    /// How stale a stored `last_active_at` may be: activity is written at most once per
    /// session per this window.
    pub activity_resolution: Duration,
    /// 0 means unlimited.
    pub max_sessions_per_user: u32,
    pub on_limit: OnLimit,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::minutes(15),
            refresh_token_ttl: Duration::days(30),
            refresh_grace: Duration::seconds(30),
            idle_timeout: Duration::days(7),
            absolute_lifetime: Duration::days(30),
            activity_resolution: Duration::seconds(60),
            max_sessions_per_user: 0,
            on_limit: OnLimit::EvictOldest,
        }
    }
}

/// The limit to enforce when a session is bound to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    pub max: u32,
    pub on_limit: OnLimit,
}

impl SessionPolicy {
    pub fn session_limit(&self) -> Option<SessionLimit> {
        (self.max_sessions_per_user > 0).then_some(SessionLimit {
            max: self.max_sessions_per_user,
            on_limit: self.on_limit,
        })
    }

    pub fn session_expiry(&self, created_at: DateTime<Utc>) -> DateTime<Utc> {
        created_at + self.absolute_lifetime
    }

    /// A refresh token never outlives its session.
    pub fn refresh_token_expiry(
        &self,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        (now + self.refresh_token_ttl).min(session_expires_at)
    }

    /// When the session dies of idleness if nothing happens after `last_active_at`,
    /// never later than its absolute end.
    pub fn idle_expires_at(
        &self,
        session: &Session,
        last_active_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        (last_active_at + self.idle_timeout).min(session.expires_at)
    }

    /// Sessions whose last stored activity is before this instant count as idle.
    pub fn idle_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.idle_timeout
    }

    /// Decides whether a session may be used at `now`, given the latest activity this
    /// server has seen (which may be newer than what storage holds).
    pub fn check(
        &self,
        session: &Session,
        now: DateTime<Utc>,
        latest_activity: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        match self.end_reason(session, now, latest_activity) {
            None => Ok(()),
            Some(RevokeReason::AbsoluteLifetime) => Err(DomainError::SessionExpired),
            Some(RevokeReason::IdleTimeout) => Err(DomainError::SessionInactive),
            Some(reason) => Err(DomainError::SessionRevoked { reason }),
        }
    }

    /// Why the session has ended at `now`, or `None` while it is live. An explicit
    /// revocation wins over expiry because it is what actually happened first to matter.
    pub fn end_reason(
        &self,
        session: &Session,
        now: DateTime<Utc>,
        latest_activity: DateTime<Utc>,
    ) -> Option<RevokeReason> {
        if let Some(reason) = session.revoked_reason {
            return Some(reason);
        }
        if session.revoked_at.is_some() {
            return Some(RevokeReason::Admin);
        }
        if now >= session.expires_at {
            return Some(RevokeReason::AbsoluteLifetime);
        }
        let last_active = latest_activity.max(session.last_active_at);
        if now >= last_active + self.idle_timeout {
            return Some(RevokeReason::IdleTimeout);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::session::{AuthMethod, Device};

    fn session_at(created: DateTime<Utc>, policy: &SessionPolicy) -> Session {
        Session {
            id: SessionId::new(),
            user_id: None,
            auth_method: AuthMethod::Anonymous,
            created_at: created,
            last_active_at: created,
            expires_at: policy.session_expiry(created),
            revoked_at: None,
            revoked_reason: None,
            device: Device::default(),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn live_session_passes() {
        let policy = SessionPolicy::default();
        let s = session_at(t0(), &policy);
        assert_eq!(policy.check(&s, t0() + Duration::hours(1), t0()), Ok(()));
    }

    #[test]
    fn idle_timeout_is_exact_and_uses_latest_seen_activity() {
        let policy = SessionPolicy::default();
        let s = session_at(t0(), &policy);
        let idle_end = t0() + policy.idle_timeout;
        let just_before = idle_end - Duration::milliseconds(1);
        assert_eq!(policy.check(&s, just_before, t0()), Ok(()));
        assert_eq!(
            policy.check(&s, idle_end, t0()),
            Err(DomainError::SessionInactive)
        );
        // Activity seen in memory but not yet stored keeps the session alive.
        let seen = t0() + Duration::days(1);
        assert_eq!(policy.check(&s, idle_end, seen), Ok(()));
    }

    #[test]
    fn absolute_lifetime_beats_activity() {
        let policy = SessionPolicy::default();
        let s = session_at(t0(), &policy);
        let end = t0() + policy.absolute_lifetime;
        assert_eq!(
            policy.check(&s, end, end - Duration::seconds(1)),
            Err(DomainError::SessionExpired)
        );
    }

    #[test]
    fn revocation_reports_its_reason_even_after_expiry() {
        let policy = SessionPolicy::default();
        let mut s = session_at(t0(), &policy);
        s.revoked_at = Some(t0());
        s.revoked_reason = Some(RevokeReason::Logout);
        let long_after = t0() + Duration::days(365);
        assert_eq!(
            policy.check(&s, long_after, t0()),
            Err(DomainError::SessionRevoked {
                reason: RevokeReason::Logout
            })
        );
    }

    #[test]
    fn refresh_tokens_never_outlive_their_session() {
        let policy = SessionPolicy {
            refresh_token_ttl: Duration::days(60),
            ..SessionPolicy::default()
        };
        let s = session_at(t0(), &policy);
        assert_eq!(
            policy.refresh_token_expiry(t0(), s.expires_at),
            s.expires_at
        );
    }

    #[test]
    fn idle_expiry_is_capped_by_absolute_end() {
        let policy = SessionPolicy::default();
        let s = session_at(t0(), &policy);
        let late = s.expires_at - Duration::hours(1);
        assert_eq!(policy.idle_expires_at(&s, late), s.expires_at);
    }

    #[test]
    fn unlimited_sessions_have_no_limit() {
        assert_eq!(SessionPolicy::default().session_limit(), None);
        let limited = SessionPolicy {
            max_sessions_per_user: 3,
            on_limit: OnLimit::Reject,
            ..SessionPolicy::default()
        };
        assert_eq!(
            limited.session_limit(),
            Some(SessionLimit {
                max: 3,
                on_limit: OnLimit::Reject
            })
        );
    }
}
