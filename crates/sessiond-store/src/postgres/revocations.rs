//! The revocation feed on PostgreSQL. Numbers come from `revocation_feed.last_seq`,
//! whose row lock the numbering transaction holds until commit (see the migration).

use chrono::{DateTime, Utc};
use sessiond_core::revocation::{FeedBounds, Revocation, RevocationFact};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::rows::{db_error, ts};
use crate::revocation_rows::{FactRow, fact, seq, seq_param};
use crate::{LivePage, StoreResult};

const COLUMNS: &str = "seq, kind, subject, reason, not_before, max_exp, created_at";

pub(super) async fn record(
    conn: &mut PgConnection,
    facts: &[RevocationFact],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if facts.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(facts.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar(
        "UPDATE revocation_feed SET last_seq = last_seq + $1 RETURNING last_seq",
    )
    .bind(count)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    let first = last - count + 1;
    for (offset, fact) in (0..).zip(facts) {
        let row = FactRow::from(fact);
        sqlx::query(
            "INSERT INTO revocations (seq, kind, subject, reason, not_before, max_exp, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(first + offset)
        .bind(row.kind)
        .bind(row.subject)
        .bind(row.reason)
        .bind(row.not_before.map(ts))
        .bind(ts(row.max_exp))
        .bind(ts(at))
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

pub(super) async fn after(
    conn: &mut PgConnection,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<Revocation>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(seq_param(after))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(revocation).collect()
}

pub(super) async fn bounds(conn: &mut PgConnection) -> StoreResult<FeedBounds> {
    let row = sqlx::query("SELECT purged_through, last_seq FROM revocation_feed")
        .fetch_one(conn)
        .await
        .map_err(db_error)?;
    Ok(FeedBounds {
        purged_through: seq(row.try_get("purged_through").map_err(db_error)?)?,
        latest: seq(row.try_get("last_seq").map_err(db_error)?)?,
    })
}

pub(super) async fn live(conn: &mut PgConnection, page: &LivePage) -> StoreResult<Vec<Revocation>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM revocations WHERE seq > $1 AND seq <= $2 AND max_exp > $3 \
         ORDER BY seq LIMIT $4"
    ))
    .bind(seq_param(page.after))
    .bind(seq_param(page.through))
    .bind(ts(page.now))
    .bind(i64::from(page.limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(revocation).collect()
}

pub(super) async fn purge(conn: &mut PgConnection, before: DateTime<Utc>) -> StoreResult<u64> {
    // One statement: the watermark moves with the delete, or neither happens.
    let deleted: i64 = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM revocations WHERE max_exp < $1 RETURNING seq), \
         moved AS (UPDATE revocation_feed \
             SET purged_through = GREATEST(purged_through, (SELECT max(seq) FROM gone)) \
             WHERE EXISTS (SELECT 1 FROM gone)) \
         SELECT count(*) FROM gone",
    )
    .bind(ts(before))
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

fn revocation(row: &PgRow) -> StoreResult<Revocation> {
    let kind: String = row.try_get("kind").map_err(db_error)?;
    let subject: Option<String> = row.try_get("subject").map_err(db_error)?;
    let reason: Option<String> = row.try_get("reason").map_err(db_error)?;
    Ok(Revocation {
        seq: seq(row.try_get("seq").map_err(db_error)?)?,
        at: row.try_get("created_at").map_err(db_error)?,
        fact: fact(
            &kind,
            subject.as_deref(),
            reason.as_deref(),
            row.try_get("not_before").map_err(db_error)?,
            row.try_get("max_exp").map_err(db_error)?,
        )?,
    })
}
