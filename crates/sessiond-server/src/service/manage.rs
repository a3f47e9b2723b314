//! Seeing and ending sessions: the person's own, and an admin's view of anyone's.

use std::time::{Duration, Instant};

use serde_json::json;
use sessiond_core::{DomainError, EventType, RevokeReason, SessionId, User, UserId, fields};
use sessiond_store::PurgeBefore;

use super::{Authenticated, Service, ServiceResult, SessionInfo};
use crate::state::cache::Invalidation;

/// Largest app-data object a session may carry.
/// Rows per purge batch: a batch is about a millisecond of work, shorter than a
/// scheduler time slice, so a running batch delays the token checks beside it little.
const PURGE_BATCH: u32 = 250;
/// A purge rests this many times as long as each batch took (at most `MAX_PURGE_REST`).
const PURGE_REST_FACTOR: u32 = 2;
const MAX_PURGE_REST: Duration = Duration::from_secs(1);

impl Service {
    pub async fn logout(&self, auth: &Authenticated) -> ServiceResult<()> {
        self.revoke(&[auth.session.id], RevokeReason::Logout)
            .await?;
        Ok(())
    }

    /// The live sessions of the caller's user, newest first, the caller's marked current.
    /// An anonymous session sees only itself.
    pub async fn my_sessions(&self, auth: &Authenticated) -> ServiceResult<Vec<SessionInfo>> {
        let current = Some(auth.session.id);
        let Some(user) = auth.session.user_id else {
            return Ok(vec![self.info((*auth.session).clone(), current)]);
        };
        let sessions = self
            .store
            .live_sessions_for_user(user, self.live_window(self.now()))
            .await?;
        Ok(sessions
            .into_iter()
            .map(|s| self.info(s, current))
            .collect())
    }

    /// Ends one of the caller's own sessions; anyone else's is `NOT_FOUND`.
    pub async fn revoke_my_session(
        &self,
        auth: &Authenticated,
        target: SessionId,
    ) -> ServiceResult<()> {
        let owned = if target == auth.session.id {
            true
        } else {
            let found = self.store.session_with_user(target).await?;
            matches!((found, auth.session.user_id), (Some((s, _)), Some(me)) if s.user_id == Some(me))
        };
        if !owned {
            return Err(DomainError::NotFound.into());
        }
        self.revoke(&[target], RevokeReason::RevokedByUser).await?;
        Ok(())
    }

    /// Ends every session of the caller's user, keeping the caller's own when asked.
    pub async fn revoke_my_sessions(
        &self,
        auth: &Authenticated,
        keep_current: bool,
    ) -> ServiceResult<usize> {
        let Some(user) = auth.session.user_id else {
            if keep_current {
                return Ok(0);
            }
            return self
                .revoke(&[auth.session.id], RevokeReason::RevokedByUser)
                .await;
        };
        let (keep, reason) = if keep_current {
            (Some(auth.session.id), RevokeReason::RevokedOthers)
        } else {
            (None, RevokeReason::RevokedByUser)
        };
        self.revoke_user(user, keep, reason).await
    }

    pub async fn session_data(&self, auth: &Authenticated) -> ServiceResult<serde_json::Value> {
        Ok(self
            .store
            .session_data(auth.session.id)
            .await?
            .unwrap_or_else(|| serde_json::json!({})))
    }

    pub async fn set_session_data(
        &self,
        auth: &Authenticated,
        data: serde_json::Value,
    ) -> ServiceResult<serde_json::Value> {
        fields::session_data(&data)?;
        let mut tx = self.store.begin().await?;
        if !tx.set_session_data(auth.session.id, &data).await? {
            return Err(DomainError::NotFound.into());
        }
        tx.commit().await?;
        Ok(data)
    }

    pub async fn user(&self, id: UserId) -> ServiceResult<User> {
        Ok(self
            .store
            .user_by_id(id)
            .await?
            .ok_or(DomainError::NotFound)?)
    }

    pub async fn user_sessions(&self, id: UserId) -> ServiceResult<Vec<SessionInfo>> {
        self.user(id).await?;
        let sessions = self
            .store
            .live_sessions_for_user(id, self.live_window(self.now()))
            .await?;
        Ok(sessions.into_iter().map(|s| self.info(s, None)).collect())
    }

    pub async fn admin_revoke_user_sessions(&self, id: UserId) -> ServiceResult<usize> {
        self.user(id).await?;
        self.revoke_user(id, None, RevokeReason::Admin).await
    }

    /// RFC 7009: ends the session of a live access or refresh token; nothing for any
    /// other token, without saying so.
    pub async fn revoke_token(&self, token: &str) -> ServiceResult<()> {
        if let Some(found) = self.introspect(token).await? {
            self.revoke(&[found.session.id], RevokeReason::Logout)
                .await?;
        }
        Ok(())
    }

    pub async fn admin_revoke_session(&self, id: SessionId) -> ServiceResult<()> {
        if self.store.session_with_user(id).await?.is_none() {
            return Err(DomainError::NotFound.into());
        }
        self.revoke(&[id], RevokeReason::Admin).await?;
        Ok(())
    }

    /// Activates or deactivates a user; deactivation ends every session at once.
    pub async fn set_user_active(&self, id: UserId, active: bool) -> ServiceResult<User> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let was_active = tx.lock_user(id).await?.ok_or(DomainError::NotFound)?.active;
        let user = tx
            .set_user_active(id, active, now)
            .await?
            .ok_or(DomainError::NotFound)?;
        if was_active != active {
            let kind = if active {
                EventType::UserReactivated
            } else {
                EventType::UserDeactivated
            };
            self.record_one(tx.as_mut(), kind, Some(id), None, json!({}))
                .await?;
        }
        let revoked = if active {
            Vec::new()
        } else {
            let reason = RevokeReason::UserDeactivated;
            let revoked = tx.revoke_user_sessions(id, None, reason, now).await?;
            self.record_ended(tx.as_mut(), &revoked, Some(id), Some(id), reason, now)
                .await?;
            revoked
        };
        tx.commit().await?;
        if !active {
            self.feed.written();
        }
        self.fanout.publish(&[Invalidation::User(id)]).await;
        self.ended(&revoked).await;
        tracing::info!(user_id = %id, active, revoked = revoked.len(), "user activation changed");
        Ok(user)
    }

    /// Deletes sessions that ended more than the retention ago, in small batches so the
    /// writer is never held for long.
    pub async fn purge_ended_sessions(&self) -> ServiceResult<u64> {
        let now = self.now();
        let ended_before = now - self.session_retention;
        let before = PurgeBefore {
            ended_before,
            idle_before: ended_before - self.policy.idle_timeout,
            batch_size: PURGE_BATCH,
        };
        let mut deleted = 0;
        loop {
            // A short batch does not mean the end: a backend may purge one way of ending
            // at a time. Only an empty batch does.
            let started = Instant::now();
            let batch = self.store.purge_ended_sessions(before).await?;
            if batch == 0 {
                break;
            }
            deleted += batch;
            // Rest twice as long as the batch took: a purge of millions of rows then holds
            // the (SQLite: single) writer and a core at most a third of the time, so
            // logins, refreshes and token checks keep their latency while it runs.
            let rest = started.elapsed() * PURGE_REST_FACTOR;
            tokio::time::sleep(rest.min(MAX_PURGE_REST)).await;
        }
        // Challenges are only needed until they expire (and for the resend cooldown).
        let otp_before = now - chrono::Duration::days(1);
        while self
            .store
            .purge_otp_challenges(otp_before, PURGE_BATCH)
            .await?
            > 0
        {
            tokio::task::yield_now().await;
        }
        while self.store.purge_spent_tokens(now, PURGE_BATCH).await? > 0 {
            tokio::task::yield_now().await;
        }
        let events = self.purge_events().await?;
        if events > 0 {
            tracing::info!(deleted = events, "purged events past their retention");
        }
        self.activity.prune(self.policy.idle_cutoff(now));
        metrics::counter!("sessiond_sessions_purged_total").increment(deleted);
        Ok(deleted)
    }

    async fn revoke(&self, ids: &[SessionId], reason: RevokeReason) -> ServiceResult<usize> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let revoked = tx.revoke_sessions(ids, reason, now).await?;
        self.record_ended(tx.as_mut(), &revoked, None, None, reason, now)
            .await?;
        tx.commit().await?;
        self.ended(&revoked).await;
        for id in &revoked {
            tracing::info!(session_id = %id, reason = reason.as_str(), "session revoked");
        }
        Ok(revoked.len())
    }

    async fn revoke_user(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
    ) -> ServiceResult<usize> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let revoked = tx.revoke_user_sessions(user, keep, reason, now).await?;
        // Everywhere: the user's tokens die by their subject too. "Everywhere else"
        // must spare this session's, so it names the sessions alone.
        let everywhere = keep.is_none().then_some(user);
        self.record_ended(tx.as_mut(), &revoked, Some(user), everywhere, reason, now)
            .await?;
        tx.commit().await?;
        self.ended(&revoked).await;
        tracing::info!(user_id = %user, reason = reason.as_str(), revoked = revoked.len(), "user sessions revoked");
        Ok(revoked.len())
    }
}
