//! Training jobs: each runs off the request path; its state and progress
//! are kept in memory (the latest `KEPT` jobs) for `GET /api/v2/ml/jobs/{id}`.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

const KEPT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    pub id: String,
    pub dataset: String,
    pub created_by: Option<String>,
    pub state: JobState,
    /// `reading`, `splitting`, `encoding`, `fitting`, `measuring`, `saved`.
    pub phase: String,
    /// From 0 to 1.
    pub progress: f64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The model, once saved.
    pub model_id: Option<String>,
    pub error: Option<String>,
}

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<VecDeque<JobStatus>>,
}

impl Jobs {
    pub fn start(&self, status: JobStatus) {
        let mut jobs = self.jobs.lock().expect("jobs");
        if jobs.len() >= KEPT {
            jobs.pop_front();
        }
        jobs.push_back(status);
    }

    pub fn update(&self, id: &str, change: impl FnOnce(&mut JobStatus)) {
        if let Some(job) = self
            .jobs
            .lock()
            .expect("jobs")
            .iter_mut()
            .find(|j| j.id == id)
        {
            change(job);
        }
    }

    pub fn get(&self, id: &str) -> Option<JobStatus> {
        self.jobs
            .lock()
            .expect("jobs")
            .iter()
            .find(|j| j.id == id)
            .cloned()
    }
}
