//! Shared counters that survive their store going away.
//!
//! Redis is an accelerator, never the only copy: every hit is also counted in this
//! instance's memory. While Redis answers, a count is the larger of the two (the shared
//! one, unless Redis lost its data); when it stops answering, the instance carries on
//! with its own counts, so limits still hold per instance, and the shared Redis's health
//! check ([`Redis::watch`](crate::infra::redis::Redis::watch)) brings the shared counts
//! back as soon as Redis answers again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::redis::RedisCounters;
use super::{CounterError, CounterStore, MemoryCounters, WindowCount};

/// Redis counters with this instance's memory behind them.
pub struct FallbackCounters {
    redis: RedisCounters,
    local: Arc<MemoryCounters>,
}

impl FallbackCounters {
    pub fn new(redis: RedisCounters, local: Arc<MemoryCounters>) -> Self {
        Self { redis, local }
    }

    fn merged(&self, shared: Result<WindowCount, CounterError>, local: WindowCount) -> WindowCount {
        match shared {
            // Redis may have lost what this instance alone counted (a restart, an
            // eviction); the larger count is the truer one.
            Ok(shared) => WindowCount {
                count: shared.count.max(local.count),
                resets_at: shared.resets_at,
            },
            Err(e) => {
                self.redis.redis().failed(&e);
                local
            }
        }
    }
}

#[async_trait]
impl CounterStore for FallbackCounters {
    async fn increment(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError> {
        let local = self.local.increment(key, window, now).await?;
        if !self.redis.redis().is_up() {
            return Ok(local);
        }
        let shared = self.redis.increment(key, window, now).await;
        Ok(self.merged(shared, local))
    }

    async fn peek(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError> {
        let local = self.local.peek(key, window, now).await?;
        if !self.redis.redis().is_up() {
            return Ok(local);
        }
        let shared = self.redis.peek(key, window, now).await;
        Ok(self.merged(shared, local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::redis::Redis;
    use std::time::Instant;

    #[tokio::test]
    async fn an_unreachable_redis_degrades_to_this_instances_counts() {
        // Nothing listens on port 1.
        let health = Arc::new(Redis::open("redis://127.0.0.1:1").unwrap());
        let redis = RedisCounters::new(health.clone(), "p:");
        let local = Arc::new(MemoryCounters::default());
        let counters = FallbackCounters::new(redis, local.clone());
        assert_eq!(health.status(), "ok", "healthy until shown otherwise");
        let (w, now) = (Duration::from_secs(60), Utc::now());
        // The first failure is noticed by the request itself...
        assert_eq!(counters.increment("k", w, now).await.unwrap().count, 1);
        assert_eq!(health.status(), "degraded");
        // ...and later ones do not wait on Redis at all.
        let started = Instant::now();
        for n in 2..=5 {
            assert_eq!(counters.increment("k", w, now).await.unwrap().count, n);
        }
        assert_eq!(counters.peek("k", w, now).await.unwrap().count, 5);
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(!health.check().await);
        assert_eq!(health.status(), "degraded");
        assert_eq!(local.peek("k", w, now).await.unwrap().count, 5);
    }
}
