//! Audit events: built here, recorded in the transaction of the change they describe
//! (so no change happens without its event, and no event without its change), each with
//! a pending delivery for every webhook endpoint that wants its type.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sessiond_core::{Device, EventType, RevokeReason, SessionId, UserId};
use sessiond_store::{EventQuery, NewEvent, StoredEvent, Tx};
use uuid::Uuid;

use super::{Service, ServiceResult};
use crate::infra::webhooks::Webhooks;

/// The most events one page answers.
pub const MAX_EVENTS_PAGE: u32 = 500;

/// Which endpoints each new event goes to.
pub struct Outbox {
    webhooks: Arc<Webhooks>,
    /// Endpoints that answered 410, by name, while their URL stays the same.
    disabled: RwLock<HashSet<String>>,
    /// Whether refreshes are recorded one by one.
    pub record_refreshes: bool,
}

impl Outbox {
    pub fn new(webhooks: Arc<Webhooks>, record_refreshes: bool) -> Self {
        Self {
            webhooks,
            disabled: RwLock::new(HashSet::new()),
            record_refreshes,
        }
    }

    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// Takes the disabled (endpoint, URL) pairs the store remembers; a pair whose URL
    /// is no longer the configured one does not count.
    pub fn set_disabled(&self, pairs: &[(String, String)]) {
        let disabled = pairs
            .iter()
            .filter(|(name, url)| {
                self.webhooks
                    .endpoint(name)
                    .is_some_and(|e| e.url.as_str() == url)
            })
            .map(|(name, _)| name.clone())
            .collect();
        *self.disabled.write().expect("disabled lock") = disabled;
    }

    /// Stops addressing new events to `endpoint` (it answered 410).
    pub fn disable(&self, endpoint: &str) {
        self.disabled
            .write()
            .expect("disabled lock")
            .insert(endpoint.to_owned());
    }

    pub fn is_disabled(&self, endpoint: &str) -> bool {
        self.disabled
            .read()
            .expect("disabled lock")
            .contains(endpoint)
    }

    /// An event of `kind` as of `at`, addressed to the endpoints that want it.
    pub fn event(
        &self,
        kind: EventType,
        at: DateTime<Utc>,
        user_id: Option<UserId>,
        session_id: Option<SessionId>,
        data: Value,
    ) -> NewEvent {
        let deliver_to = self
            .webhooks
            .endpoints
            .iter()
            .filter(|e| e.wants(kind) && !self.is_disabled(&e.name))
            .map(|e| e.name.clone())
            .collect();
        NewEvent {
            id: Uuid::now_v7(),
            kind: kind.as_str().to_owned(),
            occurred_at: at,
            user_id,
            session_id,
            data,
            deliver_to,
        }
    }
}

/// A device as events show it.
pub(super) fn device_json(device: &Device) -> Value {
    json!({
        "device_id": device.device_id,
        "user_agent": device.user_agent,
        "ip": device.ip,
        "label": device.label,
    })
}

impl Service {
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Records `events` in `tx`.
    pub(super) async fn record(&self, tx: &mut dyn Tx, events: &[NewEvent]) -> ServiceResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        tx.record_events(events).await?;
        for event in events {
            metrics::counter!("sessiond_events_total", "type" => event.kind.clone()).increment(1);
        }
        Ok(())
    }

    /// One event of `kind`, recorded in `tx`.
    pub(super) async fn record_one(
        &self,
        tx: &mut dyn Tx,
        kind: EventType,
        user_id: Option<UserId>,
        session_id: Option<SessionId>,
        data: Value,
    ) -> ServiceResult<()> {
        let event = self
            .outbox
            .event(kind, self.now(), user_id, session_id, data);
        self.record(tx, &[event]).await
    }

    /// `session.ended` for each of `sessions`, with why and on whose initiative.
    pub(super) fn ended_events(
        &self,
        sessions: &[(SessionId, Option<UserId>)],
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Vec<NewEvent> {
        sessions
            .iter()
            .map(|&(session, user)| {
                self.outbox.event(
                    EventType::SessionEnded,
                    now,
                    user,
                    Some(session),
                    json!({
                        "reason": reason.as_str(),
                        "initiator": reason.initiator().as_str(),
                    }),
                )
            })
            .collect()
    }

    /// `user.created`, saying how (`registration`, `otp`, `exchange:<provider>`,
    /// `admin_session`).
    pub(super) async fn record_user_created(
        &self,
        tx: &mut dyn Tx,
        user: &sessiond_core::User,
        via: &str,
    ) -> ServiceResult<()> {
        // No address in the data: events outlive an erasure of the user.
        let data = json!({
            "via": via,
            "has_email": user.email.is_some(),
            "email_verified": user.email_verified,
        });
        self.record_one(tx, EventType::UserCreated, Some(user.id), None, data)
            .await
    }

    /// A failed login, in its own transaction: nothing else changed. Never the secret.
    pub(super) async fn record_failed_login(
        &self,
        method: &str,
        reason: &str,
        user_id: Option<UserId>,
        device: &Device,
    ) {
        let event = self.outbox.event(
            EventType::LoginFailed,
            self.now(),
            user_id,
            None,
            json!({"method": method, "reason": reason, "device": device_json(device)}),
        );
        let written = async {
            let mut tx = self.store.begin().await?;
            self.record(tx.as_mut(), &[event]).await?;
            tx.commit().await?;
            ServiceResult::Ok(())
        };
        if let Err(e) = written.await {
            // The refusal stands either way; the event is what is lost.
            tracing::warn!(error = %e, "could not record a failed login");
        }
    }

    /// Events after `query.after`, at most [`MAX_EVENTS_PAGE`].
    pub async fn events(&self, mut query: EventQuery) -> ServiceResult<Vec<StoredEvent>> {
        query.limit = query.limit.clamp(1, MAX_EVENTS_PAGE);
        Ok(self.store.events(&query).await?)
    }

    /// Forgets events older than the retention, with their deliveries.
    pub async fn purge_events(&self) -> ServiceResult<u64> {
        let before = self.now() - self.events_retention;
        let mut deleted = 0;
        loop {
            let batch = self.store.purge_events(before, 1000).await?;
            if batch == 0 {
                return Ok(deleted);
            }
            deleted += batch;
            tokio::task::yield_now().await;
        }
    }
}
