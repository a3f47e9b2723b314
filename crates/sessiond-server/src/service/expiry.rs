//! Recording the ends nobody causes. A session that reaches its absolute end or idles out
//! changes nothing in storage when it does (every check decides from the timestamps), so
//! no transaction would write its `session.ended` event. A sweep finds those sessions
//! soon after, marks them ended (revoked at the instant they ended, with the reason every
//! check was already answering) and records their events in the same transaction, so the
//! event log explains every end. Several instances may sweep at once: a session is
//! marked by whichever gets there first, and only that one records its event.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use sessiond_core::{RevokeReason, Session};
use sessiond_store::EndingBy;

use super::{Service, ServiceResult};
use crate::state::cache::Invalidation;

/// Sessions read (and ended) per transaction.
const BATCH: u32 = 500;
/// Batches per sweep per way of ending; the rest waits for the next sweep.
const MAX_BATCHES: usize = 20;
/// On top of the activity resolution: how stale another instance's record of activity may
/// be beyond the resolution (a write on its way).
const ACTIVITY_SLACK: Duration = Duration::seconds(10);

/// Where the previous sweep stopped, per way of ending: the next reads from there.
#[derive(Default)]
pub struct ExpirySweep {
    marks: Mutex<Option<Marks>>,
}

#[derive(Debug, Clone, Copy)]
struct Marks {
    absolute: DateTime<Utc>,
    idle: DateTime<Utc>,
}

impl Service {
    /// Ends and records the sessions that ended by themselves since the last sweep (on
    /// the first, within the retention); how many it recorded.
    pub async fn record_expired_sessions(&self) -> ServiceResult<u64> {
        let now = self.now();
        let marks = self
            .expiry
            .marks
            .lock()
            .expect("sweep marks")
            .unwrap_or(Marks {
                absolute: now - self.session_retention,
                idle: now - self.session_retention - self.policy.idle_timeout,
            });
        // Another instance may have seen activity it has not written yet (it writes once
        // per resolution): only a session idle by a margin beyond that is surely idle.
        let idle_cutoff =
            self.policy.idle_cutoff(now) - self.policy.activity_resolution - ACTIVITY_SLACK;
        let (absolute, ended_absolute) = self
            .sweep(EndingBy::AbsoluteLifetime, marks.absolute, now, now)
            .await?;
        let (idle, ended_idle) = self
            .sweep(EndingBy::Idleness, marks.idle, idle_cutoff, now)
            .await?;
        *self.expiry.marks.lock().expect("sweep marks") = Some(Marks { absolute, idle });
        Ok(ended_absolute + ended_idle)
    }

    /// Reads `by`'s range `[from, to)` in batches and ends what has ended; returns where
    /// the next sweep should start and how many ended.
    async fn sweep(
        &self,
        by: EndingBy,
        mut from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> ServiceResult<(DateTime<Utc>, u64)> {
        let mut ended = 0;
        for _ in 0..MAX_BATCHES {
            if from >= to {
                break;
            }
            let batch = self
                .store
                .unrevoked_sessions_ending(by, from, to, BATCH)
                .await?;
            ended += self.end_by_themselves(&batch, now).await?;
            let Some(last) = batch.last().filter(|_| batch.len() == BATCH as usize) else {
                return Ok((to, ended));
            };
            // The sessions at `last`'s instant that were left live are read again; the
            // ended ones are revoked now and are not.
            let reached = match by {
                EndingBy::AbsoluteLifetime => last.expires_at,
                EndingBy::Idleness => last.last_active_at,
            };
            if reached == from {
                break;
            }
            from = reached;
            tokio::task::yield_now().await;
        }
        Ok((from, ended))
    }

    /// Marks the sessions of `batch` that have ended by `now` as ended, with their events,
    /// in one transaction; how many this instance marked.
    async fn end_by_themselves(&self, batch: &[Session], now: DateTime<Utc>) -> ServiceResult<u64> {
        let ends: Vec<(&Session, RevokeReason, DateTime<Utc>)> = batch
            .iter()
            .filter_map(|session| {
                let last_active = self.last_active(session);
                match self.policy.end_reason(session, now, last_active)? {
                    RevokeReason::AbsoluteLifetime => {
                        Some((session, RevokeReason::AbsoluteLifetime, session.expires_at))
                    }
                    RevokeReason::IdleTimeout => Some((
                        session,
                        RevokeReason::IdleTimeout,
                        self.policy.idle_expires_at(session, last_active),
                    )),
                    _ => None,
                }
            })
            .collect();
        if ends.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        let (mut events, mut changes) = (Vec::new(), Vec::new());
        for &(session, reason, at) in &ends {
            if tx
                .revoke_sessions(&[session.id], reason, at)
                .await?
                .is_empty()
            {
                continue; // Ended meanwhile, by someone else: their event says so.
            }
            events.extend(self.ended_events(&[(session.id, session.user_id)], reason, at));
            changes.push(Invalidation::Session(session.id));
            metrics::counter!("sessiond_sessions_expired_total", "reason" => reason.as_str())
                .increment(1);
        }
        self.record(tx.as_mut(), &events).await?;
        tx.commit().await?;
        self.fanout.publish(&changes).await;
        Ok(changes.len() as u64)
    }
}
