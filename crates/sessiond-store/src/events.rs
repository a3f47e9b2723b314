//! Audit events and their webhook deliveries, as the store keeps them.

use chrono::{DateTime, Utc};
use sessiond_core::{SessionId, UserId};
use uuid::Uuid;

/// An event to record in the transaction of the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Also the `webhook-id` of every delivery.
    pub id: Uuid,
    /// `session.created`, `user.deleted`, …
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// The event's own fields (a JSON object).
    pub data: serde_json::Value,
    /// The webhook endpoints it goes to; a pending delivery is created for each.
    pub deliver_to: Vec<String>,
}

impl NewEvent {
    /// What keeps deliveries in order: a session's events stay in order, and so do a
    /// user's that name no session.
    pub fn ordering_key(&self) -> Option<String> {
        match (self.session_id, self.user_id) {
            (Some(session), _) => Some(format!("s:{session}")),
            (None, Some(user)) => Some(format!("u:{user}")),
            (None, None) => None,
        }
    }
}

/// A recorded event; `seq` orders them and is the listing's cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: u64,
    pub id: Uuid,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub data: serde_json::Value,
}

/// Which events to list: every filter given must hold. Ordered by `seq`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after: u64,
    pub kind: Option<String>,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub limit: u32,
}

/// A claim on due deliveries: they are leased to `owner` until `until`, after which
/// another instance may take them (the owner crashed).
#[derive(Debug, Clone)]
pub struct DeliveryClaim {
    pub owner: String,
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub limit: u32,
}

/// A leased delivery, with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub endpoint: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub event: StoredEvent,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered {
        at: DateTime<Utc>,
    },
    /// Try again at `next_at`.
    Retry {
        next_at: DateTime<Utc>,
        error: String,
    },
    /// No attempt is left.
    Failed {
        at: DateTime<Utc>,
        error: String,
    },
}

/// Pending deliveries of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBacklog {
    pub endpoint: String,
    pub pending: u64,
    /// When the oldest pending event happened.
    pub oldest: Option<DateTime<Utc>>,
}
