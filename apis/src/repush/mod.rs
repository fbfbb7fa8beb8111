//! Re-push: records of the raw lake sent again to the topic they came
//! from, with fresh times and marked with their job (`x-lakehouse-repush`),
//! so that the pipeline processes them again; and the proof that it did.
//!
//! A job re-sends the records of a source dataset (one the lake lands with
//! its `raw_json`, such as `transaction_log`) in the lake's order, as the
//! history stood when the job began: records landing meanwhile, the job's
//! own included, are not part of it. Jobs live in PostgreSQL, so a job
//! survives a restart of the server and resumes without sending anything
//! twice (`runner`).

pub mod broker;
pub mod proof;
pub mod rewrite;
pub mod runner;
pub mod selection;
pub mod store;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use store::JobRow;

/// A re-push job as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepushJob {
    pub id: String,
    /// `transaction` (one record) or `dataset` (a dataset's history).
    pub kind: String,
    /// The dataset read, which is also the topic the records are sent to.
    pub dataset: String,
    pub transaction_id: Option<String>,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    /// Records per second at most.
    pub rate: i32,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Records the job covers.
    pub total: i64,
    /// Records sent so far.
    pub sent: i64,
    /// Records that could not be sent again (their `raw_json` is not an object).
    pub skipped: i64,
    /// From 0 to 1.
    pub progress: f64,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Times a server picked the job up again after a restart.
    pub resumed: i32,
    /// Where the job and its proof are.
    pub status_url: String,
}

impl RepushJob {
    pub fn of(row: &JobRow, sent: i64) -> Self {
        let done = sent + row.skipped;
        let progress = if row.state == store::DONE || row.total <= 0 {
            1.0
        } else {
            (done as f64 / row.total as f64).min(1.0)
        };
        Self {
            id: row.id.clone(),
            kind: row.kind.clone(),
            dataset: row.dataset.clone(),
            transaction_id: row.transaction_id.clone(),
            since: row.since,
            until: row.until,
            rate: row.rate,
            state: row.state.clone(),
            total: row.total,
            sent,
            skipped: row.skipped,
            progress,
            created_by: row.created_by.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
            error: row.error.clone(),
            resumed: row.resumed,
            status_url: format!("/api/v2/repush/{}", row.id),
        }
    }
}
