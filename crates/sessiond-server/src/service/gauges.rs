//! The gauges no request updates, set when `/metrics` is scraped: live sessions (counted in
//! storage), the storage pools, the caches' lookups and the channel to the other instances.

use std::time::{Duration, Instant};

use metrics::{counter, gauge};

use super::{Service, ServiceResult};
use crate::state::cache::LookupTotals;

/// A scrape counts the live sessions again only after this long: the count reads every
/// live session's row, and `/metrics` needs no key, so scrapes must not drive it.
const ACTIVE_SESSIONS_EVERY: Duration = Duration::from_secs(5);

/// A count that takes longer is given up for this scrape (the gauge keeps its value), so
/// a struggling storage does not also stall the metrics.
const ACTIVE_SESSIONS_LIMIT: Duration = Duration::from_secs(2);

/// The last count of live sessions, shared by the scrapes that come while it is taken.
#[derive(Default)]
pub struct ActiveSessions {
    last: tokio::sync::Mutex<Option<(Instant, u64)>>,
}

impl Service {
    /// Sets every scrape-time gauge; a failed count keeps the previous value.
    pub async fn export_gauges(&self) {
        // The pools first: the count below borrows a connection of its own.
        self.export_pools();
        match tokio::time::timeout(ACTIVE_SESSIONS_LIMIT, self.export_active_sessions()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not count the live sessions for the metrics");
            }
            Err(_) => tracing::warn!(
                limit = ?ACTIVE_SESSIONS_LIMIT,
                "counting the live sessions for the metrics took too long"
            ),
        }
        export_lookups("session", self.fanout.cache().lookups());
        export_lookups("token", self.verified.lookups());
        self.export_fanout();
    }

    /// `sessiond_sessions_active`: the same number on every instance sharing the storage
    /// (aggregate with `max`, not `sum`).
    async fn export_active_sessions(&self) -> ServiceResult<()> {
        let mut last = self.active_sessions.last.lock().await;
        if last.is_some_and(|(at, _)| at.elapsed() < ACTIVE_SESSIONS_EVERY) {
            return Ok(());
        }
        let live = self
            .store
            .count_live_sessions(self.live_window(self.now()))
            .await?;
        *last = Some((Instant::now(), live));
        gauge!("sessiond_sessions_active").set(live as f64);
        Ok(())
    }

    fn export_pools(&self) {
        for pool in self.store.pool_stats() {
            let idle = pool.open.saturating_sub(pool.in_use);
            gauge!("sessiond_storage_connections", "pool" => pool.pool, "state" => "in_use")
                .set(f64::from(pool.in_use));
            gauge!("sessiond_storage_connections", "pool" => pool.pool, "state" => "idle")
                .set(f64::from(idle));
            gauge!("sessiond_storage_connections_max", "pool" => pool.pool)
                .set(f64::from(pool.max));
        }
    }

    /// Only where instances share the storage: a single instance has no channel.
    fn export_fanout(&self) {
        let status = self.fanout.status();
        if !status.shared {
            return;
        }
        gauge!("sessiond_fanout_connected").set(if status.connected { 1.0 } else { 0.0 });
        if let Some(lag) = status.heartbeat_lag {
            gauge!("sessiond_fanout_heartbeat_lag_seconds").set(lag.as_secs_f64());
        }
    }
}

fn export_lookups(cache: &'static str, totals: LookupTotals) {
    counter!("sessiond_cache_lookups_total", "cache" => cache, "result" => "hit")
        .absolute(totals.hit);
    counter!("sessiond_cache_lookups_total", "cache" => cache, "result" => "miss")
        .absolute(totals.miss);
    if cache == "session" {
        counter!("sessiond_cache_lookups_total", "cache" => cache, "result" => "bypassed")
            .absolute(totals.bypassed);
    }
}
