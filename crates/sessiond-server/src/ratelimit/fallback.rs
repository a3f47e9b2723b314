//! Shared counters that survive their store going away.
//!
//! Redis is an accelerator, never the only copy: every hit is also counted in this
//! instance's memory. While Redis answers, a count is the larger of the two (the shared
//! one, unless Redis lost its data); when it stops answering, the instance carries on
//! with its own counts, so limits still hold per instance, and a background check brings
//! the shared counts back as soon as Redis answers again. Each change of state is logged
//! once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::redis::RedisCounters;
use super::{CounterError, CounterStore, MemoryCounters, WindowCount};

/// How often the background check looks (and pings Redis while it is unreachable).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often it pings a Redis that answers, to notice an outage without traffic.
pub const HEALTHY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Whether the shared counters are in use; what `/readyz` reports.
pub struct RedisHealth {
    up: AtomicBool,
    down_since: Mutex<Option<Instant>>,
}

impl Default for RedisHealth {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            down_since: Mutex::new(None),
        }
    }
}

impl RedisHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// `"ok"` or `"degraded"`.
    pub fn status(&self) -> &'static str {
        if self.is_up() { "ok" } else { "degraded" }
    }

    fn went_down(&self, error: &CounterError) {
        if self.up.swap(false, Ordering::AcqRel) {
            *self.down_since.lock().expect("health lock") = Some(Instant::now());
            metrics::gauge!("sessiond_redis_up").set(0.0);
            tracing::warn!(
                error = %error,
                "Redis unreachable: rate limits are counted per instance until it answers again"
            );
        }
    }

    fn came_back(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            let down_for_ms = self
                .down_since
                .lock()
                .expect("health lock")
                .take()
                .map_or(0, |since| since.elapsed().as_millis());
            metrics::gauge!("sessiond_redis_up").set(1.0);
            tracing::info!(
                down_for_ms,
                "Redis reachable again: rate limits are shared across instances"
            );
        }
    }
}

/// Redis counters with this instance's memory behind them.
pub struct FallbackCounters {
    redis: RedisCounters,
    local: Arc<MemoryCounters>,
    health: Arc<RedisHealth>,
}

impl FallbackCounters {
    /// The Redis connection behind the counters, for others to share.
    pub fn link(&self) -> &std::sync::Arc<crate::redis_link::RedisLink> {
        self.redis.link()
    }

    pub fn new(redis: RedisCounters, local: Arc<MemoryCounters>) -> Self {
        metrics::gauge!("sessiond_redis_up").set(1.0);
        Self {
            redis,
            local,
            health: Arc::new(RedisHealth::default()),
        }
    }

    pub fn health(&self) -> Arc<RedisHealth> {
        self.health.clone()
    }

    /// Pings Redis once and records the outcome; a failed ping drops the connection so
    /// the next one starts afresh.
    pub async fn check(&self) -> bool {
        match self.redis.ping().await {
            Ok(()) => {
                self.health.came_back();
                true
            }
            Err(e) => {
                self.health.went_down(&e);
                self.redis.reset().await;
                false
            }
        }
    }

    /// Runs forever: pings every [`CHECK_INTERVAL`] while Redis is unreachable and
    /// every [`HEALTHY_CHECK_INTERVAL`] while it answers.
    pub async fn watch(self: Arc<Self>) {
        let mut last_check = Instant::now();
        loop {
            tokio::time::sleep(CHECK_INTERVAL).await;
            if !self.health.is_up() || last_check.elapsed() >= HEALTHY_CHECK_INTERVAL {
                last_check = Instant::now();
                self.check().await;
            }
        }
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
                self.health.went_down(&e);
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
        if !self.health.is_up() {
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
        if !self.health.is_up() {
            return Ok(local);
        }
        let shared = self.redis.peek(key, window, now).await;
        Ok(self.merged(shared, local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_redis_degrades_to_this_instances_counts() {
        // Nothing listens on port 1.
        let redis = RedisCounters::open("redis://127.0.0.1:1", "p:").unwrap();
        let local = Arc::new(MemoryCounters::default());
        let counters = FallbackCounters::new(redis, local.clone());
        let health = counters.health();
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
        assert!(!counters.check().await);
        assert_eq!(health.status(), "degraded");
        assert_eq!(local.peek("k", w, now).await.unwrap().count, 5);
    }
}
