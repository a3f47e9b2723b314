//! Activity tracking without a storage write per request.
//!
//! Each instance remembers the latest activity it has seen per session and writes it to
//! storage only when the stored value is older than the activity resolution: at most one
//! write per session per window. Idle-timeout decisions use the newer of the stored and
//! the remembered value, so coalescing never ends a session early.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use sessiond_core::SessionId;

#[derive(Debug, Clone, Copy)]
struct Seen {
    latest: DateTime<Utc>,
    /// The newest value this instance has written (or knows storage holds).
    persisted: DateTime<Utc>,
}

pub struct ActivityTracker {
    resolution: Duration,
    seen: Mutex<HashMap<SessionId, Seen>>,
}

impl ActivityTracker {
    pub fn new(resolution: Duration) -> Self {
        Self {
            resolution,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The latest activity seen here for the session, if any.
    pub fn latest(&self, session: SessionId) -> Option<DateTime<Utc>> {
        self.seen
            .lock()
            .expect("activity lock")
            .get(&session)
            .map(|s| s.latest)
    }

    /// Records activity at `now`; `stored` is what storage last returned. Returns true
    /// when the caller should write `now` to storage (and this instance will not ask
    /// again for the same session within the resolution).
    pub fn record(&self, session: SessionId, now: DateTime<Utc>, stored: DateTime<Utc>) -> bool {
        let mut seen = self.seen.lock().expect("activity lock");
        let entry = seen.entry(session).or_insert(Seen {
            latest: now,
            persisted: stored,
        });
        entry.latest = entry.latest.max(now);
        entry.persisted = entry.persisted.max(stored);
        if now - entry.persisted >= self.resolution {
            entry.persisted = now;
            true
        } else {
            false
        }
    }

    /// Forgets a session that has ended.
    pub fn forget(&self, session: SessionId) {
        self.seen.lock().expect("activity lock").remove(&session);
    }

    /// Drops entries not refreshed since `before` (their sessions are idle or gone), so
    /// memory stays proportional to the sessions active recently.
    pub fn prune(&self, before: DateTime<Utc>) -> usize {
        let mut seen = self.seen.lock().expect("activity lock");
        let size = seen.len();
        seen.retain(|_, s| s.latest >= before);
        size - seen.len()
    }

    pub fn len(&self) -> usize {
        self.seen.lock().expect("activity lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn writes_at_most_once_per_resolution() {
        let tracker = ActivityTracker::new(Duration::seconds(60));
        let sid = SessionId::new();
        let writes = (0..600)
            .filter(|i| tracker.record(sid, t0() + Duration::seconds(*i), t0()))
            .count();
        // Seconds 60, 120, … 540: one write per full minute after the stored value.
        assert_eq!(writes, 9);
        assert_eq!(tracker.latest(sid), Some(t0() + Duration::seconds(599)));
    }

    #[test]
    fn a_fresh_stored_value_needs_no_write() {
        let tracker = ActivityTracker::new(Duration::seconds(60));
        let sid = SessionId::new();
        assert!(!tracker.record(sid, t0() + Duration::seconds(10), t0()));
        assert!(tracker.record(sid, t0() + Duration::seconds(61), t0()));
    }

    #[test]
    fn prune_and_forget_drop_entries() {
        let tracker = ActivityTracker::new(Duration::seconds(60));
        let (a, b) = (SessionId::new(), SessionId::new());
        tracker.record(a, t0(), t0());
        tracker.record(b, t0() + Duration::hours(1), t0());
        assert_eq!(tracker.prune(t0() + Duration::minutes(30)), 1);
        assert_eq!(tracker.latest(a), None);
        tracker.forget(b);
        assert!(tracker.is_empty());
    }
}
