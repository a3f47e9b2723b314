//! The signing keys in force, shared by every request and reloaded from storage when a
//! token names a key this instance has not seen (another instance or `sessiond keys
//! rotate` rotated it) and periodically.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sessiond_core::jwt::{KeyRing, SigningKey, TokenAudience};
use sessiond_store::{Store, StoreError};

/// How often an unknown `kid` may trigger a reload, so garbage tokens cannot turn into
/// a storage load.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] sessiond_core::jwt::KeyError),
}

pub struct KeyManager {
    ring: RwLock<Arc<KeyRing>>,
    audience: TokenAudience,
    access_token_ttl: chrono::Duration,
    /// When an unknown `kid` last caused a reload.
    last_unknown_kid_reload: Mutex<Option<Instant>>,
}

impl KeyManager {
    /// Loads the keys, creating the first signing key if storage has none.
    pub async fn load(
        store: &dyn Store,
        audience: TokenAudience,
        access_token_ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Self, KeysError> {
        let keys = ensure_active_key(store, now).await?;
        let ring = KeyRing::new(&keys, &audience, now, access_token_ttl)?;
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
            audience,
            access_token_ttl,
            last_unknown_kid_reload: Mutex::new(None),
        })
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.ring.read().expect("key ring lock").clone()
    }

    pub async fn reload(&self, store: &dyn Store, now: DateTime<Utc>) -> Result<(), KeysError> {
        let keys = store.signing_keys().await?;
        let ring = KeyRing::new(&keys, &self.audience, now, self.access_token_ttl)?;
        *self.ring.write().expect("key ring lock") = Arc::new(ring);
        Ok(())
    }

    /// Whether a token naming `kid` justifies a reload now.
    pub fn should_reload_for(&self, kid: &str) -> bool {
        if self.current().knows(kid) {
            return false;
        }
        let mut last = self.last_unknown_kid_reload.lock().expect("reload lock");
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_RELOAD_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

async fn ensure_active_key(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Vec<SigningKey>, KeysError> {
    let keys = store.signing_keys().await?;
    if keys.iter().any(|k| k.retired_at.is_none()) {
        return Ok(keys);
    }
    let key = SigningKey::generate(now)?;
    let mut tx = store.begin().await?;
    tx.insert_signing_key(&key).await?;
    tx.commit().await?;
    tracing::info!(kid = %key.kid, "generated a new signing key");
    Ok(store.signing_keys().await?)
}

/// Makes a new key the signing key; the old ones keep verifying until their tokens
/// expire. Returns the new key.
pub async fn rotate(store: &dyn Store, now: DateTime<Utc>) -> Result<SigningKey, KeysError> {
    let key = SigningKey::generate(now)?;
    let mut tx = store.begin().await?;
    tx.retire_signing_keys(now).await?;
    tx.insert_signing_key(&key).await?;
    tx.commit().await?;
    Ok(key)
}
