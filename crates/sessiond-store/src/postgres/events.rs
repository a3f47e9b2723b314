//! Cross-instance notifications through PostgreSQL `LISTEN`/`NOTIFY`: the fan-out path
//! that needs nothing but the database every instance already shares.

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::rows::db_error;
use crate::StoreResult;

/// The channel sessiond instances talk on.
pub const CHANNEL: &str = "sessiond_invalidations";

/// Publishes to and subscribes from [`CHANNEL`] on the store's database.
#[derive(Clone)]
pub struct PgEvents {
    pool: PgPool,
}

impl PgEvents {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn publish(&self, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// A listening connection. Notifications sent while it is not connected are lost,
    /// so callers must treat a lost connection as "everything may have changed".
    pub async fn subscribe(&self) -> StoreResult<PgSubscription> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(db_error)?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await.map_err(db_error)?;
        Ok(PgSubscription { listener })
    }
}

pub struct PgSubscription {
    listener: PgListener,
}

impl PgSubscription {
    /// The next payload; `None` when the connection was lost (the subscription is then
    /// finished: subscribe again).
    pub async fn next(&mut self) -> Option<String> {
        match self.listener.try_recv().await {
            Ok(Some(notification)) => Some(notification.payload().to_owned()),
            Ok(None) | Err(_) => None,
        }
    }
}
