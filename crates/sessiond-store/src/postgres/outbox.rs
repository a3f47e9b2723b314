//! Audit events and webhook deliveries on PostgreSQL. A claim locks the due rows with
//! `FOR UPDATE SKIP LOCKED` and leases them in the same statement, so instances claiming
//! at once take different deliveries and never wait on each other.

use chrono::{DateTime, Utc};
use sessiond_core::{SessionId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::rows::{db_error, ts};
use crate::revocation_rows::{seq, seq_param};
use crate::{
    Delivery, DeliveryClaim, DeliveryOutcome, EventQuery, NewEvent, StoreResult, StoredEvent,
    WebhookBacklog,
};

const COLUMNS: &str =
    "e.seq, e.id, e.type, e.occurred_at, e.user_id, e.session_id, e.data::text AS data";

pub(super) async fn record(conn: &mut PgConnection, events: &[NewEvent]) -> StoreResult<()> {
    for event in events {
        let event_seq: i64 = sqlx::query_scalar(
            "INSERT INTO events (id, type, occurred_at, user_id, session_id, data) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING seq",
        )
        .bind(event.id)
        .bind(&event.kind)
        .bind(ts(event.occurred_at))
        .bind(event.user_id.map(|u| u.as_uuid()))
        .bind(event.session_id.map(|s| s.as_uuid()))
        .bind(event.data.to_string())
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
        let key = event.ordering_key();
        for endpoint in &event.deliver_to {
            sqlx::query(
                "INSERT INTO webhook_deliveries (endpoint, event_seq, ordering_key, next_attempt_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(endpoint)
            .bind(event_seq)
            .bind(&key)
            .bind(ts(event.occurred_at))
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        }
    }
    Ok(())
}

pub(super) async fn list(conn: &mut PgConnection, q: &EventQuery) -> StoreResult<Vec<StoredEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events e \
         WHERE e.seq > $1 \
           AND ($2::text IS NULL OR e.type = $2) \
           AND ($3::uuid IS NULL OR e.user_id = $3) \
           AND ($4::uuid IS NULL OR e.session_id = $4) \
         ORDER BY e.seq LIMIT $5"
    ))
    .bind(seq_param(q.after))
    .bind(q.kind.as_deref())
    .bind(q.user_id.map(|u| u.as_uuid()))
    .bind(q.session_id.map(|s| s.as_uuid()))
    .bind(i64::from(q.limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(event).collect()
}

pub(super) async fn purge(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    batch: u32,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM events WHERE seq IN \
         (SELECT seq FROM events WHERE occurred_at < $1 ORDER BY seq LIMIT $2)",
    )
    .bind(ts(before))
    .bind(i64::from(batch))
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}

pub(super) async fn claim(
    conn: &mut PgConnection,
    claim: &DeliveryClaim,
) -> StoreResult<Vec<Delivery>> {
    let rows = sqlx::query(&format!(
        "WITH due AS ( \
           SELECT d.endpoint, d.event_seq FROM webhook_deliveries d \
           WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.leased_until IS NULL OR d.leased_until <= $1) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries w \
               WHERE w.state = 'pending' AND w.endpoint = d.endpoint \
                 AND w.ordering_key = d.ordering_key AND w.event_seq < d.event_seq) \
           ORDER BY d.event_seq LIMIT $4 \
           FOR UPDATE OF d SKIP LOCKED), \
         leased AS ( \
           UPDATE webhook_deliveries w SET leased_until = $2, lease_owner = $3 \
           FROM due WHERE w.endpoint = due.endpoint AND w.event_seq = due.event_seq \
           RETURNING w.endpoint, w.event_seq, w.attempts) \
         SELECT l.endpoint, l.attempts, {COLUMNS} FROM leased l \
         JOIN events e ON e.seq = l.event_seq ORDER BY e.seq"
    ))
    .bind(ts(claim.now))
    .bind(ts(claim.until))
    .bind(&claim.owner)
    .bind(i64::from(claim.limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let attempts: i32 = row.try_get("attempts").map_err(db_error)?;
            Ok(Delivery {
                endpoint: row.try_get("endpoint").map_err(db_error)?,
                attempts: u32::try_from(attempts).unwrap_or_default(),
                event: event(row)?,
            })
        })
        .collect()
}

pub(super) async fn finish(
    conn: &mut PgConnection,
    endpoint: &str,
    event_seq: u64,
    outcome: &DeliveryOutcome,
) -> StoreResult<()> {
    let (sql, at, error) = match outcome {
        DeliveryOutcome::Delivered { at } => (
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, \
             finished_at = $3, leased_until = NULL, last_error = $4 \
             WHERE endpoint = $1 AND event_seq = $2",
            *at,
            None,
        ),
        DeliveryOutcome::Retry { next_at, error } => (
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $3, \
             leased_until = NULL, last_error = $4 \
             WHERE endpoint = $1 AND event_seq = $2 AND state = 'pending'",
            *next_at,
            Some(error.as_str()),
        ),
        DeliveryOutcome::Failed { at, error } => (
            "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, \
             finished_at = $3, leased_until = NULL, last_error = $4 \
             WHERE endpoint = $1 AND event_seq = $2 AND state = 'pending'",
            *at,
            Some(error.as_str()),
        ),
    };
    sqlx::query(sql)
        .bind(endpoint)
        .bind(seq_param(event_seq))
        .bind(ts(at))
        .bind(error)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn disable(
    conn: &mut PgConnection,
    endpoint: &str,
    url: &str,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    sqlx::query(
        "INSERT INTO webhook_endpoints_disabled (endpoint, url, disabled_at) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(endpoint)
    .bind(url)
    .bind(ts(at))
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'disabled', finished_at = $2, \
         leased_until = NULL WHERE endpoint = $1 AND state = 'pending'",
    )
    .bind(endpoint)
    .bind(ts(at))
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}

pub(super) async fn disabled(conn: &mut PgConnection) -> StoreResult<Vec<(String, String)>> {
    sqlx::query_as("SELECT endpoint, url FROM webhook_endpoints_disabled ORDER BY endpoint")
        .fetch_all(conn)
        .await
        .map_err(db_error)
}

pub(super) async fn backlog(conn: &mut PgConnection) -> StoreResult<Vec<WebhookBacklog>> {
    let found: Vec<(String, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT d.endpoint, count(*), min(e.occurred_at) FROM webhook_deliveries d \
         JOIN events e ON e.seq = d.event_seq WHERE d.state = 'pending' \
         GROUP BY d.endpoint ORDER BY d.endpoint",
    )
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    Ok(found
        .into_iter()
        .map(|(endpoint, pending, oldest)| WebhookBacklog {
            endpoint,
            pending: u64::try_from(pending).unwrap_or_default(),
            oldest,
        })
        .collect())
}

fn event(row: &PgRow) -> StoreResult<StoredEvent> {
    let data: String = row.try_get("data").map_err(db_error)?;
    let user_id: Option<Uuid> = row.try_get("user_id").map_err(db_error)?;
    let session_id: Option<Uuid> = row.try_get("session_id").map_err(db_error)?;
    Ok(StoredEvent {
        seq: seq(row.try_get("seq").map_err(db_error)?)?,
        id: row.try_get("id").map_err(db_error)?,
        kind: row.try_get("type").map_err(db_error)?,
        occurred_at: row.try_get("occurred_at").map_err(db_error)?,
        user_id: user_id.map(UserId::from_uuid),
        session_id: session_id.map(SessionId::from_uuid),
        data: serde_json::from_str(&data)
            .map_err(|e| crate::StoreError::Corrupt(format!("event data: {e}")))?,
    })
}
