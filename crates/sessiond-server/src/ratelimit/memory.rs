//! In-process counters, for a single instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CounterError, CounterStore, WindowCount};

/// Counters in a map; each entry remembers which window it counts and when it ends.
#[derive(Default)]
pub struct MemoryCounters {
    windows: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    index: i64,
    count: u64,
    resets_at: DateTime<Utc>,
}

/// The window index of `now` and the instant that window ends.
pub fn window_of(window: Duration, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
    let width = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let index = now.timestamp_millis().div_euclid(width);
    let ends = DateTime::from_timestamp_millis((index + 1).saturating_mul(width))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (index, ends)
}

impl MemoryCounters {
    /// Drops counters of windows that have ended, so memory follows current traffic.
    pub fn prune(&self, now: DateTime<Utc>) {
        self.windows
            .lock()
            .expect("counter lock")
            .retain(|_, entry| entry.resets_at > now);
    }

    pub fn len(&self) -> usize {
        self.windows.lock().expect("counter lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, key: &str, window: Duration, now: DateTime<Utc>, add: u64) -> WindowCount {
        let (index, resets_at) = window_of(window, now);
        let mut windows = self.windows.lock().expect("counter lock");
        let fresh = Entry {
            index,
            count: 0,
            resets_at,
        };
        let entry = windows.entry(key.to_owned()).or_insert(fresh);
        if entry.index != index {
            *entry = Entry {
                index,
                count: 0,
                resets_at,
            };
        }
        entry.count += add;
        WindowCount {
            count: entry.count,
            resets_at,
        }
    }
}

#[async_trait]
impl CounterStore for MemoryCounters {
    async fn increment(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError> {
        Ok(self.apply(key, window, now, 1))
    }

    async fn peek(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError> {
        Ok(self.apply(key, window, now, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_reset_with_each_window() {
        let counters = MemoryCounters::default();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let w = Duration::from_secs(60);
        assert_eq!(counters.increment("k", w, t0).await.unwrap().count, 1);
        assert_eq!(counters.increment("k", w, t0).await.unwrap().count, 2);
        assert_eq!(counters.peek("k", w, t0).await.unwrap().count, 2);
        let next = t0 + chrono::Duration::seconds(60);
        assert_eq!(counters.increment("k", w, next).await.unwrap().count, 1);
        assert_eq!(
            counters.peek("k", w, next).await.unwrap().resets_at,
            next + chrono::Duration::seconds(60)
        );
    }

    #[test]
    fn prune_drops_old_windows() {
        let counters = MemoryCounters::default();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let w = Duration::from_secs(60);
        counters.apply("old", w, t0, 1);
        counters.apply("new", w, t0 + chrono::Duration::hours(3), 1);
        counters.prune(t0 + chrono::Duration::hours(3));
        assert_eq!(counters.len(), 1);
    }
}
