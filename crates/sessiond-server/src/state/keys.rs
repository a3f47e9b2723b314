//! The signing keys in force, shared by every request and reloaded from storage when a
//! token names a key this instance has not seen (another instance or `sessiond keys
//! rotate` rotated it) and periodically.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sessiond_core::jwt::{KeyRing, SigningKey, TokenAudience};
use sessiond_core::revocation::RevocationFact;
use sessiond_store::{Store, StoreError};

/// How often an unknown `kid` may trigger a reload, so garbage tokens cannot turn into
/// a storage load.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// How often a running instance reloads the keys from storage: for up to this long it may
/// keep signing with a key that `sessiond keys rotate` or another instance just retired.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// How long a retired key keeps verifying: one access-token lifetime after the last token
/// it may have signed, which an instance that had not reloaded yet can sign up to
/// [`RELOAD_INTERVAL`] after the retirement (doubled as a margin for a slow reload).
/// Without the slack those tokens would turn `TOKEN_INVALID` before their `exp`.
pub fn verification_window(access_token_ttl: chrono::Duration) -> chrono::Duration {
    let slack = chrono::Duration::from_std(2 * RELOAD_INTERVAL).expect("a small duration");
    access_token_ttl + slack
}

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
        let ring = KeyRing::new(&keys, &audience, now, verification_window(access_token_ttl))?;
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
        let ring = KeyRing::new(
            &keys,
            &self.audience,
            now,
            verification_window(self.access_token_ttl),
        )?;
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

/// How long a rotated key is published before it signs: every instance reloads its keys
/// within [`RELOAD_INTERVAL`], so by then every JWKS answer lists the key, and verifiers
/// that cache the JWKS have heard `keys_changed`, before any token names it.
pub const PUBLISH_LEAD: chrono::Duration = chrono::Duration::seconds(120);

/// Publishes a new key that becomes the signing key at `signs_from` (its `created_at`),
/// when the current ones retire; they keep verifying until their tokens expire. Tells
/// verifiers through the revocation feed (`keys_changed`). Returns the new key.
pub async fn rotate(
    store: &dyn Store,
    now: DateTime<Utc>,
    signs_from: DateTime<Utc>,
    access_token_ttl: chrono::Duration,
    outbox: &crate::service::events::Outbox,
) -> Result<SigningKey, KeysError> {
    let key = SigningKey::generate(signs_from)?;
    let mut tx = store.begin().await?;
    tx.retire_signing_keys(signs_from).await?;
    tx.insert_signing_key(&key).await?;
    let changed = RevocationFact::KeysChanged {
        max_exp: signs_from + verification_window(access_token_ttl),
    };
    tx.record_revocations(&[changed], now).await?;
    let rotated = outbox.event(
        sessiond_core::EventType::KeysRotated,
        now,
        None,
        None,
        serde_json::json!({"kid": key.kid.to_string(), "signs_from": signs_from.to_rfc3339()}),
    );
    tx.record_events(&[rotated]).await?;
    tx.commit().await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use sessiond_store::SqliteStore;

    use super::*;

    const TTL: chrono::Duration = chrono::Duration::minutes(15);

    fn no_webhooks() -> crate::service::events::Outbox {
        let webhooks = crate::infra::webhooks::Webhooks::new(&Default::default(), |_| None)
            .expect("the default configuration");
        crate::service::events::Outbox::new(std::sync::Arc::new(webhooks), false)
    }

    /// A migrated store in its own folder (kept alive by the caller), with its first key.
    async fn fresh() -> (tempfile::TempDir, SqliteStore, KeyManager) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("keys.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let audience = TokenAudience {
            issuer: "sessiond".into(),
            audience: "sessiond".into(),
        };
        let keys = KeyManager::load(&store, audience, TTL, Utc::now())
            .await
            .unwrap();
        (dir, store, keys)
    }

    #[tokio::test]
    async fn a_retired_key_outlives_tokens_signed_before_instances_reloaded() {
        let (_dir, store, keys) = fresh().await;
        let (ttl, t0) = (TTL, Utc::now());
        let old_kid = keys.current().signing_kid().to_owned();

        let retired_at = t0 + chrono::Duration::seconds(1);
        let new = rotate(&store, retired_at, retired_at, ttl, &no_webhooks())
            .await
            .unwrap();
        // An instance that has not reloaded yet still signs with the old key for up to
        // one reload interval; those tokens must verify until their own expiry.
        let last_old_token_expires =
            retired_at + chrono::Duration::from_std(RELOAD_INTERVAL).unwrap() + ttl;
        keys.reload(
            &store,
            last_old_token_expires - chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
        assert!(keys.current().knows(&old_kid));
        assert_eq!(keys.current().signing_kid(), new.kid);

        keys.reload(
            &store,
            retired_at + verification_window(ttl) + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
        assert!(!keys.current().knows(&old_kid), "retired keys do go away");
        assert!(keys.current().knows(&new.kid));
    }

    #[tokio::test]
    async fn a_rotated_key_is_published_before_it_signs_and_announced_in_the_feed() {
        let (_dir, store, keys) = fresh().await;
        let (ttl, t0) = (TTL, Utc::now());
        let old_kid = keys.current().signing_kid().to_owned();

        let new = rotate(&store, t0, t0 + PUBLISH_LEAD, ttl, &no_webhooks())
            .await
            .unwrap();
        keys.reload(&store, t0 + chrono::Duration::seconds(1))
            .await
            .unwrap();
        assert!(keys.current().knows(&new.kid), "published at once");
        assert_eq!(keys.current().signing_kid(), old_kid, "but not signing yet");

        keys.reload(&store, t0 + PUBLISH_LEAD).await.unwrap();
        assert_eq!(keys.current().signing_kid(), new.kid);
        assert!(keys.current().knows(&old_kid));

        let facts = store.revocations_after(0, 10).await.unwrap();
        assert_eq!(facts.len(), 1);
        assert!(matches!(facts[0].fact, RevocationFact::KeysChanged { .. }));
    }
}
