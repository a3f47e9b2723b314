//! One connection to Redis for everything sessiond asks of it (shared rate-limit counters,
//! change fan-out): opened on first use, every call bounded by a short timeout, and
//! dropped on demand so a connection to a server that vanished without closing it is
//! replaced rather than waited on.

use std::future::Future;
use std::time::Duration;

use redis::Client;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// The default bound on one Redis call, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisLinkError(pub String);

impl From<redis::RedisError> for RedisLinkError {
    fn from(e: redis::RedisError) -> Self {
        RedisLinkError(e.to_string())
    }
}

pub struct RedisLink {
    client: Client,
    timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
}

impl RedisLink {
    /// Parses the URL; connects only when first used, so a Redis that is down at start
    /// costs nothing here.
    pub fn open(url: &str) -> Result<Self, RedisLinkError> {
        Ok(Self {
            client: Client::open(url)?,
            timeout: DEFAULT_TIMEOUT,
            connection: Mutex::new(None),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Answers when Redis answers `PING`.
    pub async fn ping(&self) -> Result<(), RedisLinkError> {
        self.bounded(async {
            let mut conn = self.connection().await?;
            Ok(redis::cmd("PING").query_async::<()>(&mut conn).await?)
        })
        .await
    }

    /// Forgets the connection, so the next call opens a fresh one.
    pub async fn reset(&self) {
        *self.connection.lock().await = None;
    }

    pub async fn connection(&self) -> Result<ConnectionManager, RedisLinkError> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            // One attempt per reconnect: the callers' health checks do the retrying.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `call` within the timeout.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, RedisLinkError>>,
    ) -> Result<T, RedisLinkError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| RedisLinkError(format!("no answer within {:?}", self.timeout)))?
    }
}
