//! Audit events and webhook deliveries on SQLite. Claims go through the single writer,
//! so two claims never see the same due delivery.

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteRow;

use super::rows::{self, Columns, db_error, ms, time};
use super::writer::Writer;
use crate::revocation_rows::{seq, seq_param};
use crate::{
    Delivery, DeliveryClaim, DeliveryOutcome, EventQuery, NewEvent, StoreError, StoreResult,
    StoredEvent, WebhookBacklog,
};

const COLUMNS: &str = "e.seq, e.id, e.type, e.occurred_at, e.user_id, e.session_id, e.data";

/// Writes `events` and their deliveries on the writer's open transaction.
pub(super) fn record(conn: &rusqlite::Connection, events: &[NewEvent]) -> rusqlite::Result<()> {
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events (id, type, occurred_at, user_id, session_id, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut insert_delivery = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (endpoint, event_seq, ordering_key, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for event in events {
        insert_event.execute(rusqlite::params![
            event.id.to_string(),
            event.kind,
            ms(event.occurred_at),
            event.user_id.map(|u| u.to_string()),
            event.session_id.map(|s| s.to_string()),
            event.data.to_string(),
        ])?;
        let event_seq = conn.last_insert_rowid();
        let ordering_key = event.ordering_key();
        for endpoint in &event.deliver_to {
            insert_delivery.execute(rusqlite::params![
                endpoint,
                event_seq,
                ordering_key,
                ms(event.occurred_at),
            ])?;
        }
    }
    Ok(())
}

pub(super) async fn list(reader: &SqlitePool, q: &EventQuery) -> StoreResult<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events e \
         WHERE e.seq > ?1 \
           AND (?2 IS NULL OR e.type = ?2) \
           AND (?3 IS NULL OR e.user_id = ?3) \
           AND (?4 IS NULL OR e.session_id = ?4) \
         ORDER BY e.seq LIMIT ?5"
    );
    let found = sqlx::query(&sql)
        .bind(seq_param(q.after))
        .bind(q.kind.as_deref())
        .bind(q.user_id.map(|u| u.to_string()))
        .bind(q.session_id.map(|s| s.to_string()))
        .bind(i64::from(q.limit))
        .fetch_all(reader)
        .await
        .map_err(db_error)?;
    found.iter().map(event).collect()
}

pub(super) async fn purge(writer: &Writer, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
    let deleted = writer
        .run_blocking(move |c| {
            c.prepare_cached(
                "DELETE FROM events WHERE seq IN \
                 (SELECT seq FROM events WHERE occurred_at < ?1 ORDER BY seq LIMIT ?2)",
            )?
            .execute(rusqlite::params![ms(before), i64::from(batch)])
        })
        .await?;
    Ok(deleted as u64)
}

pub(super) async fn claim(writer: &Writer, claim: &DeliveryClaim) -> StoreResult<Vec<Delivery>> {
    let claim = claim.clone();
    let claimed = writer
        .run_blocking(move |c| {
            let tx = c.unchecked_transaction()?;
            let leased: Vec<(String, i64, i64)> = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET leased_until = ?2, lease_owner = ?3 \
                     WHERE rowid IN ( \
                       SELECT d.rowid FROM webhook_deliveries d \
                       WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 \
                         AND (d.leased_until IS NULL OR d.leased_until <= ?1) \
                         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries w \
                           WHERE w.state = 'pending' AND w.endpoint = d.endpoint \
                             AND w.ordering_key = d.ordering_key AND w.event_seq < d.event_seq) \
                       ORDER BY d.event_seq LIMIT ?4) \
                     RETURNING endpoint, event_seq, attempts",
                )?
                .query_map(
                    rusqlite::params![
                        ms(claim.now),
                        ms(claim.until),
                        claim.owner,
                        i64::from(claim.limit)
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let mut read =
                tx.prepare_cached(&format!("SELECT {COLUMNS} FROM events e WHERE e.seq = ?1"))?;
            let mut claimed = Vec::with_capacity(leased.len());
            for (endpoint, event_seq, attempts) in leased {
                let event = read
                    .query_row([event_seq], |r| Ok(event_of(r)))
                    .optional()?;
                claimed.push((endpoint, attempts, event));
            }
            drop(read);
            tx.commit()?;
            Ok(claimed)
        })
        .await?;
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(claimed.len());
    for (endpoint, attempts, event) in claimed {
        // An event purged between the claim and the read has nothing left to deliver.
        let Some(event) = event else { continue };
        deliveries.push(Delivery {
            endpoint,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            event: event?,
        });
    }
    deliveries.sort_by_key(|d| d.event.seq);
    Ok(deliveries)
}

pub(super) async fn finish(
    writer: &Writer,
    endpoint: &str,
    event_seq: u64,
    outcome: &DeliveryOutcome,
) -> StoreResult<()> {
    let (endpoint, outcome) = (endpoint.to_owned(), outcome.clone());
    writer
        .run_blocking(move |c| {
            let (sql, at, error): (&str, i64, Option<String>) = match outcome {
                DeliveryOutcome::Delivered { at } => (
                    "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, \
                     finished_at = ?3, leased_until = NULL, last_error = ?4 \
                     WHERE endpoint = ?1 AND event_seq = ?2",
                    ms(at),
                    None,
                ),
                DeliveryOutcome::Retry { next_at, error } => (
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?3, \
                     leased_until = NULL, last_error = ?4 \
                     WHERE endpoint = ?1 AND event_seq = ?2 AND state = 'pending'",
                    ms(next_at),
                    Some(error),
                ),
                DeliveryOutcome::Failed { at, error } => (
                    "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, \
                     finished_at = ?3, leased_until = NULL, last_error = ?4 \
                     WHERE endpoint = ?1 AND event_seq = ?2 AND state = 'pending'",
                    ms(at),
                    Some(error),
                ),
            };
            c.prepare_cached(sql)?.execute(rusqlite::params![
                endpoint,
                seq_param(event_seq),
                at,
                error
            ])
        })
        .await?;
    Ok(())
}

pub(super) async fn disable(
    writer: &Writer,
    endpoint: &str,
    url: &str,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    let (endpoint, url) = (endpoint.to_owned(), url.to_owned());
    let ended = writer
        .run_blocking(move |c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO webhook_endpoints_disabled (endpoint, url, disabled_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                rusqlite::params![endpoint, url, ms(at)],
            )?;
            let ended = tx.execute(
                "UPDATE webhook_deliveries SET state = 'disabled', finished_at = ?2, \
                 leased_until = NULL WHERE endpoint = ?1 AND state = 'pending'",
                rusqlite::params![endpoint, ms(at)],
            )?;
            tx.commit()?;
            Ok(ended)
        })
        .await?;
    Ok(ended as u64)
}

pub(super) async fn disabled(reader: &SqlitePool) -> StoreResult<Vec<(String, String)>> {
    let found: Vec<(String, String)> =
        sqlx::query_as("SELECT endpoint, url FROM webhook_endpoints_disabled ORDER BY endpoint")
            .fetch_all(reader)
            .await
            .map_err(db_error)?;
    Ok(found)
}

pub(super) async fn backlog(reader: &SqlitePool) -> StoreResult<Vec<WebhookBacklog>> {
    let found: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT d.endpoint, count(*), min(e.occurred_at) FROM webhook_deliveries d \
         JOIN events e ON e.seq = d.event_seq WHERE d.state = 'pending' \
         GROUP BY d.endpoint ORDER BY d.endpoint",
    )
    .fetch_all(reader)
    .await
    .map_err(db_error)?;
    found
        .into_iter()
        .map(|(endpoint, pending, oldest)| {
            Ok(WebhookBacklog {
                endpoint,
                pending: u64::try_from(pending).unwrap_or_default(),
                oldest: oldest.map(time).transpose()?,
            })
        })
        .collect()
}

fn event(row: &SqliteRow) -> StoreResult<StoredEvent> {
    event_of(row)
}

fn event_of(row: &impl Columns) -> StoreResult<StoredEvent> {
    let user_id: Option<String> = row.column("user_id")?;
    let session_id: Option<String> = row.column("session_id")?;
    let data: String = row.column("data")?;
    Ok(StoredEvent {
        seq: seq(row.column("seq")?)?,
        id: rows::parse("event id", &row.column::<String>("id")?)?,
        kind: row.column("type")?,
        occurred_at: time(row.column("occurred_at")?)?,
        user_id: user_id.map(|u| rows::parse("user id", &u)).transpose()?,
        session_id: session_id
            .map(|s| rows::parse("session id", &s))
            .transpose()?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
    })
}
