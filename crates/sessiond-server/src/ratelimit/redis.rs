//! Counters in Redis, shared by every instance that uses the same server and prefix.
//!
//! A counter is the key `{prefix}rl:{key}:{window_index}`, with the window index from
//! [`window_of`], so Redis and [`MemoryCounters`](super::MemoryCounters) count exactly
//! the same windows. Each call is one round trip; each is bounded by a short timeout so
//! that a slow or dead Redis costs a request at most that long.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use redis::Script;

use super::memory::window_of;
use super::{CounterError, CounterStore, WindowCount};

use crate::infra::redis::{Redis, RedisError};

/// Keys outlive their window by this much, so an instance whose clock runs a little
/// behind still finds the count rather than starting the window afresh.
const EXPIRY_SLACK_MS: i64 = 5_000;

/// INCR, and give the key its expiry when it has none (its first hit, or a key somehow
/// left without one): atomic, one round trip, on any Redis version.
const INCREMENT: &str = r"
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

pub struct RedisCounters {
    link: Arc<Redis>,
    prefix: String,
    increment: Script,
}

impl RedisCounters {
    pub fn new(link: Arc<Redis>, prefix: &str) -> Self {
        Self {
            link,
            prefix: prefix.to_owned(),
            increment: Script::new(INCREMENT),
        }
    }

    /// The Redis the counters live in, whose health says whether to ask it.
    pub fn redis(&self) -> &Redis {
        &self.link
    }

    /// The Redis key of `key`'s counter in the window containing `now`.
    pub fn redis_key(&self, key: &str, window: Duration, now: DateTime<Utc>) -> String {
        let (index, _) = window_of(window, now);
        format!("{}rl:{key}:{index}", self.prefix)
    }
}

fn failed(e: RedisError) -> CounterError {
    CounterError(e.to_string())
}

#[async_trait]
impl CounterStore for RedisCounters {
    async fn increment(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError> {
        let (_, resets_at) = window_of(window, now);
        let key = self.redis_key(key, window, now);
        let ttl_ms = (resets_at - now).num_milliseconds().max(1) + EXPIRY_SLACK_MS;
        let count: u64 = self
            .link
            .bounded(async {
                let mut conn = self.link.connection().await?;
                Ok(self
                    .increment
                    .key(&key)
                    .arg(ttl_ms)
                    .invoke_async(&mut conn)
                    .await?)
            })
            .await
            .map_err(failed)?;
        Ok(WindowCount { count, resets_at })
    }

    async fn peek(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError> {
        let (_, resets_at) = window_of(window, now);
        let key = self.redis_key(key, window, now);
        let count: Option<u64> = self
            .link
            .bounded(async {
                let mut conn = self.link.connection().await?;
                Ok(redis::cmd("GET").arg(&key).query_async(&mut conn).await?)
            })
            .await
            .map_err(failed)?;
        Ok(WindowCount {
            count: count.unwrap_or(0),
            resets_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::MemoryCounters;

    const URL: &str = "redis://127.0.0.1:6379";

    /// A Redis for this test, or `None` (announced) when none answers and `CI` is unset.
    async fn redis(prefix: &str) -> Option<RedisCounters> {
        let counters = open(URL, prefix);
        if counters.redis().check().await {
            Some(counters)
        } else if std::env::var_os("CI").is_none() {
            eprintln!("skipped: Redis not reachable on {URL}");
            None
        } else {
            panic!("Redis must be reachable on {URL} in CI");
        }
    }

    fn open(url: &str, prefix: &str) -> RedisCounters {
        RedisCounters::new(Arc::new(Redis::open(url).unwrap()), prefix)
    }

    #[test]
    fn keys_name_the_memory_window() {
        let counters = open(URL, "p:");
        let w = Duration::from_secs(60);
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (index, _) = window_of(w, t0);
        assert_eq!(
            counters.redis_key("login:1.2.3.4", w, t0),
            format!("p:rl:login:1.2.3.4:{index}")
        );
        assert_eq!(
            counters.redis_key("k", w, t0 + chrono::Duration::milliseconds(59_999)),
            counters.redis_key("k", w, t0)
        );
        assert_ne!(
            counters.redis_key("k", w, t0 + chrono::Duration::seconds(60)),
            counters.redis_key("k", w, t0)
        );
    }

    #[tokio::test]
    async fn counts_exactly_like_memory_counters() {
        let prefix = format!("sessiond-test:{}:", uuid::Uuid::new_v4().simple());
        let Some(redis) = redis(&prefix).await else {
            return;
        };
        let memory = MemoryCounters::default();
        let w = Duration::from_secs(60);
        let t0 = DateTime::from_timestamp(1_800_000_030, 0).unwrap();
        let steps = [
            ("a", 0, true),
            ("a", 1, true),
            ("a", 2, false),
            ("b", 3, true),
            ("a", 29_999, true),
            ("a", 30_000, false),
            ("a", 30_001, true),
            ("b", 95_000, false),
        ];
        for (key, ms, increment) in steps {
            let now = t0 + chrono::Duration::milliseconds(ms);
            let (shared, local) = if increment {
                (
                    redis.increment(key, w, now).await,
                    memory.increment(key, w, now).await,
                )
            } else {
                (
                    redis.peek(key, w, now).await,
                    memory.peek(key, w, now).await,
                )
            };
            assert_eq!(shared.unwrap(), local.unwrap(), "{key} at +{ms}ms");
        }
        // The key expires with its window (plus slack), whatever the clock said.
        let mut conn = redis.link.connection().await.unwrap();
        let key = redis.redis_key("a", w, t0 + chrono::Duration::milliseconds(30_001));
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=(60_000 + EXPIRY_SLACK_MS)).contains(&ttl), "ttl {ttl}");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast() {
        // Nothing listens on port 1.
        let redis = open("redis://127.0.0.1:1", "p:");
        let started = std::time::Instant::now();
        assert!(
            redis
                .increment("k", Duration::from_secs(60), Utc::now())
                .await
                .is_err()
        );
        assert!(!redis.redis().check().await);
        assert!(
            started.elapsed()
                < 2 * crate::infra::redis::DEFAULT_TIMEOUT + Duration::from_millis(100)
        );
    }
}
