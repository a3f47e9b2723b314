//! Activity tracking without a storage write per request.
//!
//! Each instance remembers the latest activity it has seen per session and writes it to
//! storage only when the stored value is older than the activity resolution: at most one
//! write per session per window. Idle-timeout decisions use the newer of the stored and
//! the remembered value, so coalescing never ends a session early.
//!
//! Every authenticated request reads and records here, from every runtime thread, so the
//! map is split into shards by session id: requests for different sessions rarely wait
//! on the same lock.

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

const SHARDS: usize = 32;

type Shard = Mutex<HashMap<SessionId, Seen>>;

pub struct ActivityTracker {
    resolution: Duration,
    shards: Box<[Shard]>,
}

impl ActivityTracker {
    pub fn new(resolution: Duration) -> Self {
        Self {
            resolution,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, session: SessionId) -> std::sync::MutexGuard<'_, HashMap<SessionId, Seen>> {
        // Session ids are UUIDv7: their low bits are random.
        let index = (session.as_uuid().as_u128() % SHARDS as u128) as usize;
        self.shards[index].lock().expect("activity lock")
    }

    /// The latest activity seen here for the session, if any.
    pub fn latest(&self, session: SessionId) -> Option<DateTime<Utc>> {
        self.shard(session).get(&session).map(|s| s.latest)
    }

    /// Records activity at `now`; `stored` is what storage last returned. Returns true
    /// when the caller should write `now` to storage (and this instance will not ask
    /// again for the same session within the resolution).
    pub fn record(&self, session: SessionId, now: DateTime<Utc>, stored: DateTime<Utc>) -> bool {
        let mut seen = self.shard(session);
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
        self.shard(session).remove(&session);
    }

    /// Drops entries not refreshed since `before` (their sessions are idle or gone), so
    /// memory stays proportional to the sessions active recently.
    pub fn prune(&self, before: DateTime<Utc>) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut seen = shard.lock().expect("activity lock");
            let size = seen.len();
            seen.retain(|_, s| s.latest >= before);
            dropped += size - seen.len();
        }
        dropped
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().expect("activity lock").len())
            .sum()
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
        let many: Vec<_> = (0..100).map(|_| SessionId::new()).collect();
        for id in &many {
            tracker.record(*id, t0(), t0());
        }
        assert_eq!(tracker.len(), 102);
        assert_eq!(tracker.prune(t0() + Duration::minutes(30)), 101);
        assert_eq!(tracker.latest(a), None);
        tracker.forget(b);
        assert!(tracker.is_empty());
    }
}
