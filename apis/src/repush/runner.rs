//! Running a re-push job: batches read in the lake's order, paced to the
//! job's rate, each batch recorded before the cursor moves past it.
//!
//! Sending nothing twice without broker transactions: before a batch goes
//! out the job notes the topic's high watermarks; every record carries the
//! job's id and its origin in headers. A job picked up again (after a
//! crash, or a failed send) first reads the topic from the noted marks and
//! records the job's records the broker already holds, so it sends only
//! the rest. One server runs a job at a time (a PostgreSQL advisory lock).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::Connection;

use super::broker::{self, Found, Sender};
use super::rewrite::with_fresh_times;
use super::selection::{SourceReader, SourceRecord, TRANSACTION_ID};
use super::store::{self, JobRow, SentRecord};
use crate::state::SharedState;

/// Longest wait between two tries of a job whose broker or database is away.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The re-push jobs of this server.
pub struct Repush {
    bootstrap: String,
    sender: OnceLock<Arc<Sender>>,
    stopping: AtomicBool,
    active: Mutex<HashSet<String>>,
    pub proofs: super::proof::ProofCache,
}

#[derive(Debug)]
enum JobError {
    /// The broker or the database is away: try again later.
    Transient(String),
    /// The job cannot go on (a lake file that cannot be read).
    Fatal(String),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(format!("PostgreSQL: {e}"))
    }
}

impl From<rdkafka::error::KafkaError> for JobError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Self::Transient(format!("the broker: {e}"))
    }
}

impl From<lakehouse::kafka::KafkaError> for JobError {
    fn from(e: lakehouse::kafka::KafkaError) -> Self {
        Self::Transient(format!("the broker: {e}"))
    }
}

impl Repush {
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            sender: OnceLock::new(),
            stopping: AtomicBool::new(false),
            active: Mutex::new(HashSet::new()),
            proofs: Default::default(),
        }
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Jobs stop between batches and stay `running`, for the next start.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(sender) = self.sender.get() {
            sender.flush();
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    fn sender(&self) -> Result<Arc<Sender>, JobError> {
        if let Some(sender) = self.sender.get() {
            return Ok(sender.clone());
        }
        let sender = Arc::new(Sender::new(&self.bootstrap)?);
        Ok(self.sender.get_or_init(|| sender).clone())
    }
}

/// Runs a job in the background (unless this server runs it already),
/// trying again with backoff while the broker or the database is away.
pub fn start(state: &SharedState, id: String) {
    if !state.repush.active.lock().expect("jobs").insert(id.clone()) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(500);
        loop {
            match run(&state, &id).await {
                Ok(()) => break,
                Err(JobError::Fatal(message)) => {
                    tracing::error!(job = %id, error = %message, "re-push failed");
                    if let Err(e) =
                        store::finish(&state.pool, &id, store::FAILED, Some(&message)).await
                    {
                        tracing::error!(job = %id, error = %e, "cannot record the failure; the job is resumed at the next start");
                    }
                    break;
                }
                Err(JobError::Transient(message)) => {
                    if state.repush.stopping() {
                        break;
                    }
                    tracing::warn!(job = %id, error = %message, retry_in = ?wait, "re-push waits");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
        state.repush.active.lock().expect("jobs").remove(&id);
    });
}

/// Picks up the jobs a previous server left running.
pub fn resume_all(state: &SharedState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(500);
        let ids = loop {
            match store::running(&state.pool).await {
                Ok(ids) => break ids,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "cannot list re-push jobs yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        };
        for id in ids {
            tracing::info!(job = %id, "resuming a re-push job");
            if let Err(e) = store::count_resume(&state.pool, &id).await {
                tracing::warn!(job = %id, error = %e, "cannot count the resume");
            }
            start(&state, id);
        }
    });
}

async fn run(state: &SharedState, id: &str) -> Result<(), JobError> {
    // Held for the job's run: another server on the database leaves it be.
    let mut lock = sqlx::PgConnection::connect(&state.settings.postgres_url).await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("lakehouse-repush:{id}"))
        .fetch_one(&mut lock)
        .await?;
    if !locked {
        tracing::info!(job = %id, "another server runs this re-push job");
        return Ok(());
    }
    let Some(job) = store::get(&state.pool, id).await? else {
        return Ok(());
    };
    if job.state != store::RUNNING {
        return Ok(());
    }
    let sender = state.repush.sender()?;
    settle(state, &job, &job.scan_from.0).await?;
    let bootstrap = sender.bootstrap().to_string();
    let topic = job.dataset.clone();
    let partitions =
        tokio::task::spawn_blocking(move || lakehouse::kafka::partition_count(&bootstrap, &topic))
            .await
            .map_err(|e| JobError::Transient(e.to_string()))??
            .ok_or_else(|| {
                JobError::Transient(format!("the broker has no topic {}", job.dataset))
            })?;
    let dataset_dir = state.lake.dataset_dir(&job.dataset);
    let mut reader = SourceReader::open(
        &dataset_dir,
        job.since,
        job.until,
        job.bounds.0.clone(),
        job.cursor(),
    )
    .map_err(|e| JobError::Fatal(format!("cannot list {}: {e}", dataset_dir.display())))?;
    let batch_size = (job.rate as usize / 4).clamp(1, 500);
    let rate = f64::from(job.rate.max(1));
    let started = Instant::now();
    let mut sent_here = 0u64;
    loop {
        if state.repush.stopping() {
            return Ok(());
        }
        let batch = tokio::task::block_in_place(|| reader.next_batch(batch_size))
            .map_err(JobError::Fatal)?;
        let Some(last) = batch.last().map(|r| (r.partition, r.offset)) else {
            store::finish(&state.pool, id, store::DONE, None).await?;
            state.repush.proofs.forget(id);
            tracing::info!(job = %id, "re-push done");
            return Ok(());
        };
        let positions: Vec<(i32, i64)> = batch.iter().map(|r| (r.partition, r.offset)).collect();
        let held = store::sent_among(&state.pool, id, &positions).await?;
        let mut todo: Vec<SourceRecord> = batch
            .into_iter()
            .filter(|r| !held.contains(&(r.partition, r.offset)))
            .collect();
        let mut skipped = 0i64;
        let mut wait = Duration::from_millis(200);
        while !todo.is_empty() {
            let bootstrap = sender.bootstrap().to_string();
            let topic = job.dataset.clone();
            let marks =
                tokio::task::spawn_blocking(move || broker::high_watermarks(&bootstrap, &topic))
                    .await
                    .map_err(|e| JobError::Transient(e.to_string()))??;
            store::set_scan_from(&state.pool, id, &marks).await?;
            let due = started + Duration::from_secs_f64(sent_here as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let now = Utc::now();
            let mut payloads = Vec::with_capacity(todo.len());
            todo.retain(|record| match with_fresh_times(&record.raw_json, now) {
                Ok(payload) => {
                    payloads.push(payload);
                    true
                }
                Err(reason) => {
                    tracing::warn!(job = %id, partition = record.partition, offset = record.offset, %reason, "not re-sent");
                    skipped += 1;
                    false
                }
            });
            let sends = todo.iter().zip(&payloads).map(|(record, payload)| {
                let partition = (record.partition < partitions).then_some(record.partition);
                sender.send(
                    &job.dataset,
                    partition,
                    payload,
                    id,
                    (record.partition, record.offset),
                )
            });
            let results = futures::future::join_all(sends).await;
            let mut delivered = Vec::new();
            let mut failed = Vec::new();
            let mut first_error = None;
            for (record, result) in todo.drain(..).zip(results) {
                match result {
                    Ok((partition, offset)) => delivered.push(SentRecord {
                        source_partition: record.partition,
                        source_offset: record.offset,
                        transaction_id: record.transaction_id.clone(),
                        partition,
                        offset,
                        sent_at: now,
                    }),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        failed.push(record);
                    }
                }
            }
            sent_here += delivered.len() as u64;
            store::record_sent(&state.pool, id, &delivered).await?;
            if failed.is_empty() {
                break;
            }
            tracing::warn!(job = %id, failed = failed.len(), error = ?first_error, retry_in = ?wait, "sends failed; looking for what landed");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
            // A send that timed out may have landed: what the topic holds is sent.
            let landed = settle(state, &job, &marks).await?;
            todo = failed
                .into_iter()
                .filter(|r| !landed.contains(&(r.partition, r.offset)))
                .collect();
        }
        store::advance(&state.pool, id, last, skipped).await?;
    }
}

/// Records the job's records the topic holds from `from` on; their origins.
async fn settle(
    state: &SharedState,
    job: &JobRow,
    from: &store::PartitionOffsets,
) -> Result<HashSet<(i32, i64)>, JobError> {
    if from.is_empty() {
        return Ok(HashSet::new());
    }
    let bootstrap = state.repush.bootstrap().to_string();
    let (topic, id, from) = (job.dataset.clone(), job.id.clone(), from.clone());
    let found =
        tokio::task::spawn_blocking(move || broker::find_sent(&bootstrap, &topic, &id, &from))
            .await
            .map_err(|e| JobError::Transient(e.to_string()))??;
    let records: Vec<SentRecord> = found.iter().map(sent_record).collect();
    store::record_sent(&state.pool, &job.id, &records).await?;
    if !records.is_empty() {
        tracing::info!(job = %job.id, records = records.len(), "found sends the job had not recorded");
    }
    Ok(found.into_iter().map(|f| f.source).collect())
}

fn sent_record(found: &Found) -> SentRecord {
    let transaction_id = found
        .value
        .as_deref()
        .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
        .and_then(|v| v.get(TRANSACTION_ID)?.as_str().map(str::to_string));
    let sent_at = found
        .timestamp_ms
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_else(Utc::now);
    SentRecord {
        source_partition: found.source.0,
        source_offset: found.source.1,
        transaction_id,
        partition: found.partition,
        offset: found.offset,
        sent_at,
    }
}
