//! Delivering events to webhook endpoints, at least once, from every instance at once.
//!
//! Each round leases up to `concurrency` due deliveries (never one another instance
//! holds, never one waiting behind an earlier pending event of the same session or user
//! at that endpoint) and attempts them side by side, each bounded by the timeout; the
//! lease outlives the attempt, so a delivery is never attempted twice at the same time,
//! and an instance that dies mid-attempt loses nothing: the lease runs out and any
//! instance tries again, with the same `webhook-id`. Logins never wait on any of this:
//! they only write rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sessiond_store::{Delivery, DeliveryClaim, DeliveryOutcome};
use uuid::Uuid;

use super::{Service, ServiceResult};
use crate::infra::webhooks::Attempt;

/// How often the backlog gauges and the disabled endpoints are read again.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

impl Service {
    /// One round of deliveries by `owner` (this instance); how many were attempted.
    pub async fn deliver_webhooks(self: &Arc<Self>, owner: &str) -> ServiceResult<usize> {
        let webhooks = self.outbox.webhooks().clone();
        if webhooks.endpoints.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let lease = chrono::Duration::from_std(webhooks.timeout * 2 + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::minutes(1));
        let claim = DeliveryClaim {
            owner: owner.to_owned(),
            now,
            until: now + lease,
            limit: u32::try_from(webhooks.concurrency).unwrap_or(u32::MAX),
        };
        let due = self.store.claim_deliveries(&claim).await?;
        let attempted = due.len();
        let mut attempts = tokio::task::JoinSet::new();
        for delivery in due {
            let service = Arc::clone(self);
            attempts.spawn(async move { service.deliver(delivery).await });
        }
        while let Some(done) = attempts.join_next().await {
            match done {
                Ok(Err(e)) => tracing::warn!(error = %e, "could not record a webhook attempt"),
                Err(e) => tracing::error!(error = %e, "a webhook attempt panicked"),
                Ok(Ok(())) => {}
            }
        }
        Ok(attempted)
    }

    /// One attempt at one delivery, and its outcome recorded.
    async fn deliver(&self, delivery: Delivery) -> ServiceResult<()> {
        let webhooks = self.outbox.webhooks();
        let seq = delivery.event.seq;
        let name = delivery.endpoint.as_str();
        let Some(endpoint) = webhooks.endpoint(name) else {
            let outcome = DeliveryOutcome::Failed {
                at: self.now(),
                error: "the endpoint is no longer configured".into(),
            };
            return Ok(self.store.finish_delivery(name, seq, &outcome).await?);
        };
        if self.outbox.is_disabled(name) {
            self.store
                .disable_endpoint(name, endpoint.url.as_str(), self.now())
                .await?;
            return Ok(());
        }
        let id = delivery.event.id.to_string();
        let body = payload(&delivery).to_string();
        let started = Instant::now();
        let attempt = webhooks
            .attempt(endpoint, &id, self.now().timestamp(), &body)
            .await;
        let now = self.now();
        let (result, outcome) = match attempt {
            Attempt::Delivered => ("delivered", DeliveryOutcome::Delivered { at: now }),
            Attempt::Gone => {
                let ended = self
                    .store
                    .disable_endpoint(name, endpoint.url.as_str(), now)
                    .await?;
                self.outbox.disable(name);
                tracing::warn!(endpoint = name, url = %endpoint.url, pending_ended = ended, "webhook endpoint answered 410 Gone: disabled until its URL changes");
                metrics::counter!("sessiond_webhook_endpoints_disabled_total", "endpoint" => name.to_owned()).increment(1);
                metrics::counter!("sessiond_webhook_deliveries_total", "endpoint" => name.to_owned(), "result" => "disabled").increment(1);
                return Ok(());
            }
            Attempt::Failed(error) => match webhooks.schedule.get(delivery.attempts as usize) {
                Some(delay) => {
                    let next_at = now + chrono::Duration::from_std(*delay).unwrap_or_default();
                    tracing::info!(endpoint = name, event_id = %id, attempt = delivery.attempts + 1, %error, %next_at, "webhook attempt failed; will retry");
                    ("retry", DeliveryOutcome::Retry { next_at, error })
                }
                None => {
                    tracing::warn!(endpoint = name, event_id = %id, attempts = delivery.attempts + 1, %error, "webhook delivery failed for good");
                    ("failed", DeliveryOutcome::Failed { at: now, error })
                }
            },
        };
        metrics::counter!("sessiond_webhook_deliveries_total", "endpoint" => name.to_owned(), "result" => result).increment(1);
        metrics::histogram!("sessiond_webhook_attempt_seconds", "endpoint" => name.to_owned())
            .record(started.elapsed().as_secs_f64());
        self.store.finish_delivery(name, seq, &outcome).await?;
        Ok(())
    }

    /// Reads the backlog into the gauges and the disabled endpoints into the outbox.
    pub async fn refresh_webhook_state(&self) -> ServiceResult<()> {
        let disabled = self.store.disabled_endpoints().await?;
        self.outbox.set_disabled(&disabled);
        let backlog = self.store.webhook_backlog().await?;
        let now = self.now();
        for endpoint in &self.outbox.webhooks().endpoints {
            let found = backlog.iter().find(|b| b.endpoint == endpoint.name);
            let pending = found.map_or(0, |b| b.pending);
            let oldest = found
                .and_then(|b| b.oldest)
                .map_or(0.0, |at| age_seconds(at, now));
            let label = endpoint.name.clone();
            metrics::gauge!("sessiond_webhook_backlog", "endpoint" => label.clone())
                .set(pending as f64);
            metrics::gauge!("sessiond_webhook_oldest_pending_seconds", "endpoint" => label)
                .set(oldest);
        }
        Ok(())
    }
}

/// Delivers until `stopping` turns true: rounds back to back while there is work, a
/// poll interval apart while there is none.
pub async fn run(service: Arc<Service>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let webhooks = service.outbox().webhooks().clone();
    if webhooks.endpoints.is_empty() {
        return;
    }
    let owner = format!("instance-{}", Uuid::new_v4().simple());
    let mut gauges_at: Option<Instant> = None;
    loop {
        if *stopping.borrow() {
            return;
        }
        if gauges_at.is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL) {
            if let Err(e) = service.refresh_webhook_state().await {
                tracing::warn!(error = %e, "could not read the webhook backlog");
            }
            gauges_at = Some(Instant::now());
        }
        let attempted = match service.deliver_webhooks(&owner).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim webhook deliveries");
                0
            }
        };
        if attempted == 0 {
            tokio::select! {
                () = tokio::time::sleep(webhooks.poll_interval) => {}
                _ = stopping.changed() => {}
            }
        }
    }
}

/// The body receivers get: the event, its subject ids beside its own fields.
fn payload(delivery: &Delivery) -> Value {
    let event = &delivery.event;
    let mut data = match &event.data {
        Value::Object(fields) => fields.clone(),
        _ => serde_json::Map::new(),
    };
    data.insert(
        "user_id".into(),
        json!(event.user_id.map(|u| u.to_string())),
    );
    data.insert(
        "session_id".into(),
        json!(event.session_id.map(|s| s.to_string())),
    );
    json!({
        "id": event.id.to_string(),
        "type": event.kind,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

fn age_seconds(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (now - at).num_milliseconds().max(0) as f64 / 1000.0
}
