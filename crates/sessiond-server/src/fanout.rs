//! Telling every instance about changes to sessions and users, so their caches stay exact.
//!
//! One instance (SQLite): invalidations apply locally. Several instances (PostgreSQL):
//! they also go out through `NOTIFY`, and each instance `LISTEN`s; the cache is trusted
//! only while that subscription is connected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond_store::postgres::events::{PgEvents, PgSubscription};

use crate::cache::{Invalidation, SessionCache};

const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Silence this long means the subscription is dead, whatever the socket says.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// `NOTIFY` payloads are limited to 8000 bytes; an encoded invalidation is ~40.
const PER_NOTIFICATION: usize = 150;

pub struct Fanout {
    cache: Arc<SessionCache>,
    postgres: Option<PgEvents>,
}

impl Fanout {
    /// A single instance: nothing to tell anyone else.
    pub fn local(cache: Arc<SessionCache>) -> Self {
        Self {
            cache,
            postgres: None,
        }
    }

    pub fn postgres(cache: Arc<SessionCache>, events: PgEvents) -> Self {
        Self {
            cache,
            postgres: Some(events),
        }
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
        let Some(events) = &self.postgres else { return };
        for chunk in changes.chunks(PER_NOTIFICATION) {
            let payload = chunk
                .iter()
                .map(Invalidation::encode)
                .collect::<Vec<_>>()
                .join(" ");
            if let Err(e) = events.publish(&payload).await {
                // The change itself is committed; other instances drop it from their
                // caches when their entries expire.
                tracing::error!(error = %e, "could not notify other instances of a session change");
                metrics::counter!("sessiond_fanout_publish_failures_total").increment(1);
            }
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
