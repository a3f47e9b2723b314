//! The revocation feed on SQLite.

use chrono::{DateTime, Utc};
use sessiond_core::revocation::{FeedBounds, Revocation};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::rows::{db_error, ms, opt_time, time};
use super::writer::Writer;
use crate::revocation_rows::{FactRow, fact, seq, seq_param};
use crate::{LivePage, StoreResult};

const COLUMNS: &str = "seq, kind, subject, reason, not_before, max_exp, created_at";

pub(super) const INSERT: &str = "INSERT INTO revocations \
     (kind, subject, reason, not_before, max_exp, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub(super) fn insert_params(row: &FactRow, at: DateTime<Utc>) -> impl rusqlite::Params + '_ {
    (
        row.kind,
        row.subject.as_deref(),
        row.reason,
        row.not_before.map(ms),
        ms(row.max_exp),
        ms(at),
    )
}

pub(super) async fn after(
    reader: &SqlitePool,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<Revocation>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?"
    ))
    .bind(seq_param(after))
    .bind(i64::from(limit))
    .fetch_all(reader)
    .await
    .map_err(db_error)?;
    rows.iter().map(revocation).collect()
}

pub(super) async fn bounds(reader: &SqlitePool) -> StoreResult<FeedBounds> {
    // `sqlite_sequence` holds the last number handed out, even once its row is purged.
    let row = sqlx::query(
        "SELECT purged_through, \
         COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0) AS latest \
         FROM revocation_feed",
    )
    .fetch_one(reader)
    .await
    .map_err(db_error)?;
    Ok(FeedBounds {
        purged_through: seq(row.try_get("purged_through").map_err(db_error)?)?,
        latest: seq(row.try_get("latest").map_err(db_error)?)?,
    })
}

pub(super) async fn live(reader: &SqlitePool, page: &LivePage) -> StoreResult<Vec<Revocation>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM revocations WHERE seq > ? AND seq <= ? AND max_exp > ? \
         ORDER BY seq LIMIT ?"
    ))
    .bind(seq_param(page.after))
    .bind(seq_param(page.through))
    .bind(ms(page.now))
    .bind(i64::from(page.limit))
    .fetch_all(reader)
    .await
    .map_err(db_error)?;
    rows.iter().map(revocation).collect()
}

pub(super) async fn purge(writer: &Writer, before: DateTime<Utc>) -> StoreResult<u64> {
    let before = ms(before);
    let deleted = writer
        .run_blocking(move |c| {
            // The watermark moves with the delete, or neither happens: a cursor must
            // never pass a fact that is gone without being told.
            let tx = c.unchecked_transaction()?;
            let through: Option<i64> = tx.query_row(
                "SELECT max(seq) FROM revocations WHERE max_exp < ?1",
                [before],
                |r| r.get(0),
            )?;
            let deleted = tx.execute("DELETE FROM revocations WHERE max_exp < ?1", [before])?;
            if let Some(through) = through {
                tx.execute(
                    "UPDATE revocation_feed SET purged_through = max(purged_through, ?1)",
                    [through],
                )?;
            }
            tx.commit()?;
            Ok(deleted)
        })
        .await?;
    Ok(deleted as u64)
}

fn revocation(row: &SqliteRow) -> StoreResult<Revocation> {
    let get_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(db_error);
    let kind: String = row.try_get("kind").map_err(db_error)?;
    let (subject, reason) = (get_text("subject")?, get_text("reason")?);
    let not_before = opt_time(row.try_get("not_before").map_err(db_error)?)?;
    let max_exp = time(row.try_get("max_exp").map_err(db_error)?)?;
    Ok(Revocation {
        seq: seq(row.try_get("seq").map_err(db_error)?)?,
        at: time(row.try_get("created_at").map_err(db_error)?)?,
        fact: fact(
            &kind,
            subject.as_deref(),
            reason.as_deref(),
            not_before,
            max_exp,
        )?,
    })
}
