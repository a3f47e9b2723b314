//! Redis, shared by everything sessiond asks of it: the rate limits' shared counters, the
//! fast path of the change fan-out, and readiness. One connection, opened on first use,
//! every call bounded by a short timeout; one health state that every user reads, so the
//! instance degrades (and recovers) as a whole and each change is logged once.
//!
//! Redis is never the only copy of anything: while it is down, the rate limits count per
//! instance and changes still travel through the storage's own channel.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::Client;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// The default bound on one Redis call, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// How often [`Redis::watch`] looks (and pings Redis while it is unreachable).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often it pings a Redis that answers, to notice an outage without traffic.
pub const HEALTHY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(pub String);

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> Self {
        RedisError(e.to_string())
    }
}

pub struct Redis {
    client: Client,
    timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
    up: AtomicBool,
    down_since: std::sync::Mutex<Option<Instant>>,
}

impl Redis {
    /// Parses the URL; connects only when first used, so a Redis that is down at start
    /// costs nothing here (the instance starts degraded and recovers by itself).
    pub fn open(url: &str) -> Result<Self, RedisError> {
        metrics::gauge!("sessiond_redis_up").set(1.0);
        Ok(Self {
            client: Client::open(url)?,
            timeout: DEFAULT_TIMEOUT,
            connection: Mutex::new(None),
            up: AtomicBool::new(true),
            down_since: std::sync::Mutex::new(None),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether Redis answered last time anyone asked. Users skip Redis while it is down
    /// rather than wait on it for every request.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// `"ok"` or `"degraded"`, as `/readyz` reports it.
    pub fn status(&self) -> &'static str {
        if self.is_up() { "ok" } else { "degraded" }
    }

    /// A call failed: Redis counts as down until a check reaches it again.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        if self.up.swap(false, Ordering::AcqRel) {
            *self.down_since.lock().expect("health lock") = Some(Instant::now());
            metrics::gauge!("sessiond_redis_up").set(0.0);
            tracing::warn!(
                error = %error,
                "Redis unreachable: rate limits are counted per instance, and changes reach \
                 other instances through the storage alone, until it answers again"
            );
        }
    }

    fn answered(&self) {
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

    /// Pings once and records the outcome; a failed ping drops the connection so the
    /// next call opens a fresh one (a server that vanished without closing the socket
    /// is replaced rather than waited on).
    pub async fn check(&self) -> bool {
        match self.ping().await {
            Ok(()) => {
                self.answered();
                true
            }
            Err(e) => {
                self.failed(&e);
                *self.connection.lock().await = None;
                false
            }
        }
    }

    /// Runs forever: checks every [`CHECK_INTERVAL`] while Redis is unreachable and every
    /// [`HEALTHY_CHECK_INTERVAL`] while it answers.
    pub async fn watch(self: Arc<Self>) {
        let mut last_check = Instant::now();
        loop {
            tokio::time::sleep(CHECK_INTERVAL).await;
            if !self.is_up() || last_check.elapsed() >= HEALTHY_CHECK_INTERVAL {
                last_check = Instant::now();
                self.check().await;
            }
        }
    }

    async fn ping(&self) -> Result<(), RedisError> {
        self.bounded(async {
            let mut conn = self.connection().await?;
            Ok(redis::cmd("PING").query_async::<()>(&mut conn).await?)
        })
        .await
    }

    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            // One attempt per reconnect: `watch` does the retrying.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `call` within the timeout.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| RedisError(format!("no answer within {:?}", self.timeout)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_redis_is_reported_down_and_checks_stay_bounded() {
        // Nothing listens on port 1.
        let redis = Redis::open("redis://127.0.0.1:1").unwrap();
        assert_eq!(redis.status(), "ok", "healthy until shown otherwise");
        let started = Instant::now();
        assert!(!redis.check().await);
        assert_eq!(redis.status(), "degraded");
        assert!(started.elapsed() < DEFAULT_TIMEOUT + Duration::from_millis(200));
    }
}
