//! Re-push jobs and the records they sent, in PostgreSQL: the job's row is
//! its progress (a cursor over the lake's order), each sent record is one
//! row keyed by where it was first read, so recording a record twice is a
//! no-op and a resumed job skips what it holds.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::PgPool;

/// The tables, applied with the API's schema (idempotent).
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// Offsets per Kafka partition.
pub type PartitionOffsets = BTreeMap<i32, i64>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub dataset: String,
    pub transaction_id: Option<String>,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub rate: i32,
    pub state: String,
    pub total: i64,
    pub skipped: i64,
    pub bounds: Json<PartitionOffsets>,
    pub cursor_partition: Option<i32>,
    pub cursor_offset: Option<i64>,
    pub scan_from: Json<PartitionOffsets>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub resumed: i32,
}

impl JobRow {
    pub fn cursor(&self) -> Option<(i32, i64)> {
        self.cursor_partition.zip(self.cursor_offset)
    }
}

pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// What a new job covers.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub kind: &'static str,
    pub dataset: String,
    pub transaction_id: Option<String>,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub rate: i32,
    pub total: i64,
    pub bounds: PartitionOffsets,
    pub cursor: Option<(i32, i64)>,
    pub created_by: String,
}

/// One record as sent: where it was read, where the broker put it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SentRecord {
    pub source_partition: i32,
    pub source_offset: i64,
    pub transaction_id: Option<String>,
    pub partition: i32,
    pub offset: i64,
    pub sent_at: DateTime<Utc>,
}

pub async fn create(pool: &PgPool, job: &NewJob) -> Result<JobRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO lakehouse_repush_jobs
           (id, kind, dataset, transaction_id, since, until, rate, state, total, bounds,
            cursor_partition, cursor_offset, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $11, $12)
         RETURNING *",
    )
    .bind(&job.id)
    .bind(job.kind)
    .bind(&job.dataset)
    .bind(&job.transaction_id)
    .bind(job.since)
    .bind(job.until)
    .bind(job.rate)
    .bind(job.total)
    .bind(Json(&job.bounds))
    .bind(job.cursor.map(|c| c.0))
    .bind(job.cursor.map(|c| c.1))
    .bind(&job.created_by)
    .fetch_one(pool)
    .await
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM lakehouse_repush_jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Jobs left running (by a server that stopped or died).
pub async fn running(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM lakehouse_repush_jobs WHERE state = 'running' ORDER BY created_at",
    )
    .fetch_all(pool)
    .await
}

/// The running dataset job re-sending `dataset`, if any.
pub async fn running_on(pool: &PgPool, dataset: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM lakehouse_repush_jobs
         WHERE state = 'running' AND kind = 'dataset' AND dataset = $1 LIMIT 1",
    )
    .bind(dataset)
    .fetch_optional(pool)
    .await
}

pub async fn count_resume(pool: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lakehouse_repush_jobs SET resumed = resumed + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Which of `positions` (source partition, offset) the job has sent.
pub async fn sent_among(
    pool: &PgPool,
    id: &str,
    positions: &[(i32, i64)],
) -> Result<HashSet<(i32, i64)>, sqlx::Error> {
    let partitions: Vec<i32> = positions.iter().map(|p| p.0).collect();
    let offsets: Vec<i64> = positions.iter().map(|p| p.1).collect();
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT r.source_partition, r.source_offset FROM lakehouse_repush_records r
         JOIN unnest($2::int[], $3::bigint[]) AS p(partition, \"offset\")
           ON r.source_partition = p.partition AND r.source_offset = p.\"offset\"
         WHERE r.job_id = $1",
    )
    .bind(id)
    .bind(&partitions)
    .bind(&offsets)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Records sent records (again: a record already held is left as it is).
pub async fn record_sent(pool: &PgPool, id: &str, sent: &[SentRecord]) -> Result<(), sqlx::Error> {
    if sent.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&SentRecord) -> i64| sent.iter().map(f).collect::<Vec<i64>>();
    let transaction_ids: Vec<Option<String>> =
        sent.iter().map(|s| s.transaction_id.clone()).collect();
    let sent_at: Vec<DateTime<Utc>> = sent.iter().map(|s| s.sent_at).collect();
    sqlx::query(
        "INSERT INTO lakehouse_repush_records
           (job_id, source_partition, source_offset, transaction_id, partition, \"offset\", sent_at)
         SELECT $1, sp::int, so, t, p::int, o, s
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::timestamptz[])
           AS r(sp, so, t, p, o, s)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(column(|s| s.source_partition.into()))
    .bind(column(|s| s.source_offset))
    .bind(&transaction_ids)
    .bind(column(|s| s.partition.into()))
    .bind(column(|s| s.offset))
    .bind(&sent_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Where to look for unrecorded sends if the batch about to go out is cut short.
pub async fn set_scan_from(
    pool: &PgPool,
    id: &str,
    marks: &PartitionOffsets,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lakehouse_repush_jobs SET scan_from = $2, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(Json(marks))
    .execute(pool)
    .await?;
    Ok(())
}

/// Everything up to `cursor` is sent and recorded; `skipped` more records
/// could not be re-sent.
pub async fn advance(
    pool: &PgPool,
    id: &str,
    cursor: (i32, i64),
    skipped: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lakehouse_repush_jobs
         SET cursor_partition = $2, cursor_offset = $3, skipped = skipped + $4, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(cursor.0)
    .bind(cursor.1)
    .bind(skipped)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn finish(
    pool: &PgPool,
    id: &str,
    state: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lakehouse_repush_jobs
         SET state = $2, error = $3, finished_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn sent_count(pool: &PgPool, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM lakehouse_repush_records WHERE job_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// Every record the job sent, in the order it read them.
pub async fn sent(pool: &PgPool, id: &str) -> Result<Vec<SentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source_partition, source_offset, transaction_id, partition, \"offset\", sent_at
         FROM lakehouse_repush_records WHERE job_id = $1
         ORDER BY source_partition, source_offset",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
