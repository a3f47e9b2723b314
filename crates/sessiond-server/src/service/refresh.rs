//! Refresh-token rotation with a grace window and theft detection.

use serde_json::json;
use sessiond_core::refresh::{RefreshDecision, decide};
use sessiond_core::{DomainError, EventType, RefreshToken, RefreshTokenId, RevokeReason};
use sessiond_store::NewRefreshToken;

use super::{Service, ServiceResult, TokenGrant};
use crate::ratelimit::Policy;

impl Service {
    /// Exchanges a refresh token for a fresh pair. All checks and writes happen in one
    /// transaction, so concurrent presentations of one token get exactly the outcomes the
    /// rules allow: one rotation, and the same successor for every racer in the window.
    pub async fn refresh(&self, presented: &str) -> ServiceResult<TokenGrant> {
        let presented = RefreshToken::parse(presented).ok_or(DomainError::RefreshTokenInvalid)?;
        // Limited per session: find it with a read, outside the write transaction.
        let known = self
            .store
            .refresh_token_by_hash(&presented.hash())
            .await?
            .ok_or(DomainError::RefreshTokenInvalid)?;
        self.limits
            .hit(Policy::Refresh, &known.session_id.to_string())
            .await?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let (token, session, user) = tx
            .lock_refresh_token_and_session(&presented.hash())
            .await?
            .ok_or(DomainError::RefreshTokenInvalid)?;
        self.policy
            .check(&session, now, self.last_active(&session))?;
        Self::check_user(user.as_ref())?;

        let successor_used = match token.successor_id {
            Some(id) => tx.refresh_token_is_rotated(id).await?,
            None => false,
        };
        let (successor, successor_expires_at) = match decide(
            &token,
            successor_used,
            now,
            self.policy.refresh_grace,
        ) {
            RefreshDecision::Rotate => {
                let successor = RefreshToken::generate();
                let expires_at = self.policy.refresh_token_expiry(now, session.expires_at);
                let stored = NewRefreshToken {
                    id: RefreshTokenId::new(),
                    session_id: session.id,
                    hash: successor.hash(),
                    created_at: now,
                    expires_at,
                };
                tx.rotate_refresh_token(token.id, &stored, &presented.seal_successor(&successor))
                    .await?;
                metrics::counter!("sessiond_refresh_outcomes_total", "outcome" => "rotated")
                    .increment(1);
                (successor, expires_at)
            }
            RefreshDecision::ReplaySuccessor => {
                let successor = token
                    .successor_sealed
                    .as_deref()
                    .and_then(|sealed| presented.open_successor(sealed))
                    .ok_or(DomainError::RefreshTokenInvalid)?;
                let stored = tx
                    .lock_refresh_token(&successor.hash())
                    .await?
                    .ok_or(DomainError::RefreshTokenInvalid)?;
                metrics::counter!("sessiond_refresh_grace_replays_total").increment(1);
                metrics::counter!("sessiond_refresh_outcomes_total", "outcome" => "grace_replay")
                    .increment(1);
                (successor, stored.expires_at)
            }
            RefreshDecision::Reuse => {
                let reason = RevokeReason::RefreshTokenReused;
                let revoked = tx.revoke_sessions(&[session.id], reason, now).await?;
                self.record_one(
                    tx.as_mut(),
                    EventType::RefreshReuseDetected,
                    session.user_id,
                    Some(session.id),
                    json!({"refresh_token_id": token.id.to_string()}),
                )
                .await?;
                self.record_ended(tx.as_mut(), &revoked, session.user_id, None, reason, now)
                    .await?;
                tx.commit().await?;
                self.ended(&[session.id]).await;
                metrics::counter!("sessiond_refresh_reuse_detected_total").increment(1);
                metrics::counter!("sessiond_refresh_outcomes_total", "outcome" => "reused")
                    .increment(1);
                tracing::warn!(session_id = %session.id, "refresh token reused after rotation: session revoked");
                return Err(DomainError::RefreshTokenReused.into());
            }
            RefreshDecision::Expired => {
                metrics::counter!("sessiond_refresh_outcomes_total", "outcome" => "expired")
                    .increment(1);
                return Err(DomainError::RefreshTokenExpired.into());
            }
        };
        // A refresh is activity like any token check, and as coalesced: the stored value
        // is written only when the activity resolution has passed since it was.
        let activity_due = self
            .activity
            .record(session.id, now, session.last_active_at);
        if activity_due {
            tx.set_last_active(session.id, now).await?;
        }
        if self.outbox.record_refreshes {
            self.record_one(
                tx.as_mut(),
                EventType::SessionRefreshed,
                session.user_id,
                Some(session.id),
                json!({}),
            )
            .await?;
        }
        tx.commit().await?;

        let mut session = session;
        session.last_active_at = self.last_active(&session);
        metrics::counter!("sessiond_refreshes_total").increment(1);
        Ok(self.grant(session, user, successor, successor_expires_at, now))
    }
}
