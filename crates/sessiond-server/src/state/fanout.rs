//! Telling every instance about changes to sessions and users, so their caches stay exact.
//!
//! One instance (SQLite): invalidations apply locally. Several instances (PostgreSQL):
//! they also go out through `NOTIFY`, and each instance `LISTEN`s; the cache is trusted
//! only while that subscription is connected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessiond_store::postgres::events::{PgEvents, PgSubscription};

use futures_util::StreamExt;

use crate::infra::redis::Redis;
use crate::state::cache::{Invalidation, SessionCache};

const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Silence this long means the subscription is dead, whatever the socket says.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// `NOTIFY` payloads are limited to 8000 bytes; an encoded invalidation is ~40.
const PER_NOTIFICATION: usize = 150;

/// The Redis pub/sub channel of the instances sharing a prefix: a second, fast path
/// for changes. It adds speed, not trust: the cache is trusted on the PostgreSQL
/// channel's heartbeat, so losing Redis loses nothing.
pub struct RedisChannel {
    link: Arc<Redis>,
    name: String,
}

impl RedisChannel {
    pub fn new(link: Arc<Redis>, prefix: &str) -> Self {
        Self {
            link,
            name: format!("{prefix}invalidations"),
        }
    }
}

pub struct Fanout {
    cache: Arc<SessionCache>,
    postgres: Option<PgEvents>,
    redis: Option<RedisChannel>,
    /// The last heartbeat's trip through PostgreSQL and back, in microseconds
    /// ([`NO_ECHO_YET`] before the first): how late a change reaches the other instances.
    heartbeat_lag_us: AtomicU64,
}

const NO_ECHO_YET: u64 = u64::MAX;

/// Where the channel to the other instances stands, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FanoutStatus {
    /// Whether other instances may share the storage (PostgreSQL), i.e. there is a channel.
    pub shared: bool,
    /// Whether the channel is known to work now, so the cache is trusted.
    pub connected: bool,
    /// The last heartbeat's round trip.
    pub heartbeat_lag: Option<Duration>,
}

impl Fanout {
    /// `postgres`: the storage's channel when several instances may share the storage;
    /// without it this instance is alone and changes apply locally only.
    pub fn new(
        cache: Arc<SessionCache>,
        postgres: Option<PgEvents>,
        redis: Option<RedisChannel>,
    ) -> Self {
        Self {
            cache,
            postgres,
            redis,
            heartbeat_lag_us: AtomicU64::new(NO_ECHO_YET),
        }
    }

    pub fn status(&self) -> FanoutStatus {
        let lag = self.heartbeat_lag_us.load(Ordering::Relaxed);
        FanoutStatus {
            shared: self.postgres.is_some(),
            connected: self.postgres.is_some() && self.cache.is_usable(),
            heartbeat_lag: (lag != NO_ECHO_YET).then(|| Duration::from_micros(lag)),
        }
    }

    /// A single instance: nothing to tell anyone else.
    pub fn local(cache: Arc<SessionCache>) -> Self {
        Self::new(cache, None, None)
    }

    pub fn cache(&self) -> &SessionCache {
        &self.cache
    }

    /// Applies the changes here at once, then tells the other instances. Call after the
    /// change is committed, so nobody re-reads the old state after hearing of the new.
    pub async fn publish(&self, changes: &[Invalidation]) {
        for change in changes {
            self.cache.invalidate(*change);
        }
        for chunk in changes.chunks(PER_NOTIFICATION) {
            let payload = chunk
                .iter()
                .map(Invalidation::encode)
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(redis) = &self.redis {
                self.publish_redis(redis, &payload).await;
            }
            let Some(events) = &self.postgres else {
                continue;
            };
            if let Err(e) = events.publish(&payload).await {
                // The change itself is committed; other instances drop it from their
                // caches when their entries expire.
                tracing::error!(error = %e, "could not notify other instances of a session change");
                metrics::counter!("sessiond_fanout_publish_failures_total").increment(1);
            }
        }
    }

    async fn publish_redis(&self, redis: &RedisChannel, payload: &str) {
        if !redis.link.is_up() {
            // Not worth a timeout per change: PostgreSQL carries it anyway.
            return;
        }
        let published = redis
            .link
            .bounded(async {
                let mut conn = redis.link.connection().await?;
                Ok(redis::cmd("PUBLISH")
                    .arg(&redis.name)
                    .arg(payload)
                    .query_async::<()>(&mut conn)
                    .await?)
            })
            .await;
        if let Err(e) = published {
            // PostgreSQL carries the change too; Redis only makes it faster.
            redis.link.failed(&e);
        }
    }

    /// Applies other instances' changes for as long as the process runs, reconnecting
    /// when the subscription drops. The cache is bypassed while disconnected.
    ///
    /// A connection can die without telling (a network partition leaves it half open), so
    /// the instance also sends itself a heartbeat through the channel every second; when
    /// its own heartbeat stops coming back, the subscription is treated as lost.
    pub async fn listen(self: Arc<Self>) {
        let Some(events) = self.postgres.clone() else {
            return;
        };
        let heartbeat = format!("hb:{}", uuid::Uuid::new_v4().simple());
        let mut retry = Duration::from_millis(100);
        loop {
            match events.subscribe().await {
                Ok(mut subscription) => {
                    retry = Duration::from_millis(100);
                    self.follow(&events, &mut subscription, &heartbeat).await;
                    self.cache.set_usable(false);
                    tracing::warn!(
                        "lost the session-change subscription; cache bypassed until it is back"
                    );
                }
                Err(e) => {
                    self.cache.set_usable(false);
                    tracing::debug!(error = %e, "session-change subscription unavailable");
                }
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(Duration::from_secs(2));
        }
    }

    /// Applies changes arriving through Redis for as long as the process runs.
    pub async fn listen_redis(self: Arc<Self>) {
        let Some(redis) = &self.redis else { return };
        loop {
            if let Ok(Ok(mut pubsub)) = tokio::time::timeout(
                Duration::from_secs(2),
                redis.link.client().get_async_pubsub(),
            )
            .await
                && pubsub.subscribe(&redis.name).await.is_ok()
            {
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    for change in payload.split(' ').filter_map(Invalidation::decode) {
                        self.cache.invalidate(change);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Applies changes from one subscription until it is lost or goes quiet.
    ///
    /// Each heartbeat carries when it was sent (`<heartbeat>:<µs since the subscription
    /// started>`), so its echo measures the channel's lag even when echoes come late.
    async fn follow(&self, events: &PgEvents, subscription: &mut PgSubscription, heartbeat: &str) {
        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let started = Instant::now();
        let mut last_echo = started;
        let mut trusted = false;
        let echo_of = |item: &str| -> Option<u64> {
            item.strip_prefix(heartbeat)?
                .strip_prefix(':')?
                .parse()
                .ok()
        };
        loop {
            tokio::select! {
                payload = subscription.next() => {
                    let Some(payload) = payload else { return };
                    for item in payload.split(' ') {
                        if let Some(sent_us) = echo_of(item) {
                            last_echo = Instant::now();
                            let now_us = elapsed_us(started);
                            self.heartbeat_lag_us
                                .store(now_us.saturating_sub(sent_us), Ordering::Relaxed);
                            if !trusted {
                                // The channel demonstrably works end to end: trust the cache.
                                self.cache.set_usable(true);
                                trusted = true;
                                tracing::info!("listening for session changes from other instances");
                            }
                        } else if let Some(change) = Invalidation::decode(item) {
                            self.cache.invalidate(change);
                        }
                    }
                }
                _ = beat.tick() => {
                    if last_echo.elapsed() > HEARTBEAT_TIMEOUT {
                        return;
                    }
                    let beat = format!("{heartbeat}:{}", elapsed_us(started));
                    if events.publish(&beat).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
}
