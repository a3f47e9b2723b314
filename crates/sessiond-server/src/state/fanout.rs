//! Telling every instance about changes to sessions and users, so their caches stay exact.
//!
//! One instance (SQLite): invalidations apply locally. Several instances (PostgreSQL):
//! they also go out through `NOTIFY`, and each instance `LISTEN`s; the cache is trusted
//! only while that subscription is connected.

use std::sync::Arc;
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
    async fn follow(&self, events: &PgEvents, subscription: &mut PgSubscription, heartbeat: &str) {
        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut last_echo = Instant::now();
        let mut trusted = false;
        loop {
            tokio::select! {
                payload = subscription.next() => {
                    let Some(payload) = payload else { return };
                    for item in payload.split(' ') {
                        if item == heartbeat {
                            last_echo = Instant::now();
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
                    if events.publish(heartbeat).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
