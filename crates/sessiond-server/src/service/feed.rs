//! The revocation feed: the facts written as sessions end, and what verifiers read.

use chrono::{DateTime, Utc};
use sessiond_core::revocation::{FeedBounds, Revocation, RevocationFact};
use sessiond_core::{DomainError, RevokeReason, SessionId, UserId};
use sessiond_store::{LivePage, Tx};

use super::{Service, ServiceResult};

/// The most facts one page answers.
pub const MAX_PAGE: u32 = 1000;

/// The facts a snapshot reads at a time: a snapshot of many facts is streamed page by
/// page, never held whole (100 000 facts took ~150 MiB at once).
pub const SNAPSHOT_PAGE: u32 = 1000;

/// What a snapshot is of: the facts numbered up to `through` that are alive at `now`.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotStart {
    pub through: u64,
    pub now: DateTime<Utc>,
}

/// A page of the feed, and the cursor to continue from.
pub struct FeedPage {
    pub events: Vec<Revocation>,
    pub next_cursor: u64,
    pub has_more: bool,
}

impl Service {
    /// The facts for sessions ended by one change; with `user`, every token of the user
    /// issued before now dies too. Record them in the change's own transaction.
    pub(super) fn revocation_facts(
        &self,
        sessions: &[SessionId],
        user: Option<UserId>,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Vec<RevocationFact> {
        // No access token minted before now outlives one lifetime from now.
        let max_exp = now + self.policy.access_token_ttl;
        let mut facts: Vec<RevocationFact> = sessions
            .iter()
            .map(|&session| RevocationFact::SessionRevoked {
                session,
                reason,
                max_exp,
            })
            .collect();
        if let Some(user) = user {
            facts.push(RevocationFact::UserRevoked {
                user,
                reason,
                not_before: now,
                max_exp,
            });
        }
        facts
    }

    /// Records what ending `sessions` means in `tx`: the revocation facts (with `user`,
    /// every token of the user issued before now dies too) and a `session.ended` event
    /// each. `owner` is whose sessions they are, when the caller knows; else it is read.
    pub(super) async fn record_ended(
        &self,
        tx: &mut dyn Tx,
        sessions: &[SessionId],
        owner: Option<UserId>,
        user: Option<UserId>,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        if sessions.is_empty() && user.is_none() {
            return Ok(());
        }
        let facts = self.revocation_facts(sessions, user, reason, now);
        tx.record_revocations(&facts, now).await?;
        let mut owned = Vec::with_capacity(sessions.len());
        for &session in sessions {
            let owner = match owner {
                Some(owner) => Some(owner),
                None => tx.lock_session(session).await?.and_then(|(s, _)| s.user_id),
            };
            owned.push((session, owner));
        }
        let events = self.ended_events(&owned, reason, now);
        self.record(tx, &events).await
    }

    /// Facts after `cursor`. A cursor the feed can no longer continue (its facts purged,
    /// or one this storage never handed out) is refused: the verifier takes a snapshot.
    pub async fn revocations_after(&self, cursor: u64, limit: u32) -> ServiceResult<FeedPage> {
        let bounds = self.store.revocation_bounds().await?;
        check_cursor(cursor, bounds)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let events = self.store.revocations_after(cursor, limit).await?;
        let next_cursor = events.last().map_or(cursor, |r| r.seq);
        Ok(FeedPage {
            has_more: events.len() == limit as usize && next_cursor < bounds.latest,
            events,
            next_cursor,
        })
    }

    /// Where a snapshot starts: the facts it holds are those up to the feed's latest now
    /// whose tokens outlive this instant; the verifier follows the feed from there.
    pub async fn revocation_snapshot_start(&self) -> ServiceResult<SnapshotStart> {
        let bounds = self.store.revocation_bounds().await?;
        Ok(SnapshotStart {
            through: bounds.latest,
            now: self.now(),
        })
    }

    /// The snapshot's facts after `after`, at most [`SNAPSHOT_PAGE`]; fewer means the last.
    pub async fn revocation_snapshot_page(
        &self,
        start: &SnapshotStart,
        after: u64,
    ) -> ServiceResult<Vec<Revocation>> {
        Ok(self
            .store
            .live_revocations(&LivePage {
                after,
                through: start.through,
                now: start.now,
                limit: SNAPSHOT_PAGE,
            })
            .await?)
    }

    /// Where the feed stands, for the stream's checks and the poller.
    pub async fn revocation_bounds(&self) -> ServiceResult<FeedBounds> {
        Ok(self.store.revocation_bounds().await?)
    }

    /// Forgets facts about tokens that are all expired.
    pub async fn purge_revocations(&self) -> ServiceResult<u64> {
        // A minute's slack covers instances whose clocks run a little apart.
        let before = self.now() - chrono::Duration::minutes(1);
        Ok(self.store.purge_revocations(before).await?)
    }
}

/// Whether the feed can continue from `cursor`.
pub fn check_cursor(cursor: u64, bounds: FeedBounds) -> Result<(), DomainError> {
    if cursor < bounds.purged_through || cursor > bounds.latest {
        return Err(DomainError::RevocationCursorExpired);
    }
    Ok(())
}
