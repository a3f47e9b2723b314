//! What the admin console needs from the service beyond what the admin API routes call:
//! a secret to sign console sessions with, the sign-in failure limit, key rotation and
//! storage health. Everything a console page changes goes through the same service
//! functions as the admin API, so an action has the same effects and events either way.

use std::time::{Duration, Instant};

use sessiond_core::jwt::SigningKey;
use sessiond_core::{DomainError, TokenHash};
use sessiond_store::EventQuery;

use super::{Service, ServiceResult};
use crate::ratelimit::Policy;

/// How a storage check went.
pub struct StorageHealth {
    pub backend: &'static str,
    pub ok: bool,
    pub latency: Duration,
}

impl Service {
    /// The console's signing secret: derived from the admin key's hash, so every instance
    /// that shares the admin key accepts the same console sessions (behind a load
    /// balancer), and changing the admin key ends every console session.
    pub fn console_secret(&self) -> [u8; 32] {
        let mut input = b"sessiond console session v1:".to_vec();
        input.extend_from_slice(self.admin_key.as_bytes());
        *TokenHash::of(&input).as_bytes()
    }

    /// Refuses a console sign-in from `client` once it has failed too often (the
    /// `password_failures` limit, counted under its own key).
    pub async fn check_console_sign_in(&self, client: &str) -> Result<(), DomainError> {
        self.limits
            .check(Policy::PasswordFailures, &console_key(client))
            .await
    }

    /// Counts a failed console sign-in from `client`.
    pub async fn record_console_failure(&self, client: &str) {
        self.limits
            .record(Policy::PasswordFailures, &console_key(client))
            .await;
    }

    /// Every signing key storage holds, newest first.
    pub async fn signing_keys(&self) -> ServiceResult<Vec<SigningKey>> {
        let mut keys = self.store.signing_keys().await?;
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }

    /// Rotates the signing key as `sessiond keys rotate` does: the new key is published
    /// now and signs after the publication lead, so every verifier has it first.
    pub async fn rotate_signing_key(&self) -> Result<SigningKey, crate::state::keys::KeysError> {
        let now = self.now();
        let key = crate::state::keys::rotate(
            self.store.as_ref(),
            now,
            now + crate::state::keys::PUBLISH_LEAD,
            self.policy.access_token_ttl,
            &self.outbox,
        )
        .await?;
        self.reload_keys().await?;
        tracing::info!(kid = %key.kid, "signing key rotated from the console");
        Ok(key)
    }

    /// How many users are stored and how many sessions are live (the overview's counts).
    pub async fn counts(&self) -> ServiceResult<(u64, u64)> {
        let users = self.store.count_users().await?;
        let live = self
            .store
            .count_live_sessions(self.live_window(self.now()))
            .await?;
        Ok((users, live))
    }

    /// The cursor whose page (of `page` events matching `query`'s filters) holds the
    /// latest ones: what an operator opens the audit log for, though events are paged
    /// oldest first. Found by probing with the one query events have (after a cursor):
    /// doubling to pass the newest sequence number, then halving to the smallest cursor
    /// with at most `page` matches after it; about 2·log₂(events) indexed reads.
    pub async fn latest_events_cursor(&self, query: &EventQuery, page: u32) -> ServiceResult<u64> {
        let probe = |after: u64, limit: u32| {
            let mut q = query.clone();
            q.after = after;
            q.limit = limit;
            async move { self.store.events(&q).await }
        };
        let mut high = 1u64;
        while !probe(high, 1).await?.is_empty() {
            high = high.saturating_mul(2);
            if high == u64::MAX {
                break;
            }
        }
        // Invariant: at most `page` matches after `high`; find the smallest such cursor.
        let mut low = 0u64;
        if probe(low, page + 1).await?.len() <= page as usize {
            return Ok(0);
        }
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if probe(mid, page + 1).await?.len() <= page as usize {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(high)
    }

    /// The user's latest ended sessions, the latest end first: why they were logged out.
    /// Sessions that ran out by themselves are here once the sweep has recorded them
    /// (within a minute); erased users' and purged sessions are gone.
    pub async fn user_ended_sessions(
        &self,
        user: sessiond_core::UserId,
        limit: u32,
    ) -> ServiceResult<Vec<sessiond_core::Session>> {
        Ok(self.store.ended_sessions_for_user(user, limit).await?)
    }

    /// Pings storage and times it.
    pub async fn storage_health(&self) -> StorageHealth {
        let started = Instant::now();
        let ok = self.store.ping().await.is_ok();
        StorageHealth {
            backend: self.store.backend(),
            ok,
            latency: started.elapsed(),
        }
    }
}

fn console_key(client: &str) -> String {
    format!("console:{client}")
}
