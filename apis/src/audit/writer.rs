//! Writes `access_log` off the request path: requests hand their entry to a
//! bounded queue and go on; one task inserts entries in batches. While
//! PostgreSQL is away, batches go to a spool file (bounded in size) that is
//! replayed, without doubles (each entry has a unique id), once it is back.
//! On shutdown the queue is drained before the process ends.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, Notify};

const QUEUE_CAPACITY: usize = 65_536;
const BATCH_MAX: usize = 1_000;
const BATCH_WAIT: Duration = Duration::from_millis(200);
const RETRY_EVERY: Duration = Duration::from_secs(2);
pub const SPOOL_FILE: &str = "audit-spool.jsonl";

/// One row of `access_log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub entry_id: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub accessed_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub body: Option<String>,
    pub status: i32,
    pub resource: Option<String>,
    pub duration_ms: f64,
}

/// Counts a `/metrics` scrape and `/health` report.
#[derive(Debug, Default)]
pub struct AuditCounters {
    pub written: AtomicU64,
    pub spooled: AtomicU64,
    /// Lost: queue full, or spool full while PostgreSQL was away.
    pub dropped: AtomicU64,
}

/// The handle requests record through.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<AuditEntry>,
    pub counters: Arc<AuditCounters>,
}

impl AuditLog {
    /// Never waits: a full queue drops the entry and counts it.
    pub fn record(&self, entry: AuditEntry) {
        if self.queue.try_send(entry).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("audit queue full; an access_log entry was dropped");
        }
    }
}

/// The writer task; `shutdown` drains what is queued and returns.
pub struct AuditWriter {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl AuditWriter {
    pub async fn shutdown(self) {
        self.stop.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "audit writer failed");
        }
    }
}

pub fn start(pool: PgPool, spool_dir: &Path, max_spool_bytes: u64) -> (AuditLog, AuditWriter) {
    let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
    let counters = Arc::new(AuditCounters::default());
    let stop = Arc::new(Notify::new());
    let spool = Spool {
        path: spool_dir.join(SPOOL_FILE),
        max_bytes: max_spool_bytes,
    };
    let task = tokio::spawn(run(pool, receiver, spool, counters.clone(), stop.clone()));
    (AuditLog { queue, counters }, AuditWriter { stop, task })
}

async fn run(
    pool: PgPool,
    mut receiver: mpsc::Receiver<AuditEntry>,
    spool: Spool,
    counters: Arc<AuditCounters>,
    stop: Arc<Notify>,
) {
    let mut stopping = false;
    loop {
        let mut batch = Vec::new();
        if !stopping {
            tokio::select! {
                received = receiver.recv() => match received {
                    Some(entry) => batch.push(entry),
                    None => stopping = true,
                },
                _ = stop.notified() => {
                    stopping = true;
                    receiver.close();
                }
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
        if !batch.is_empty() {
            let deadline = tokio::time::Instant::now() + BATCH_WAIT;
            while batch.len() < BATCH_MAX {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(entry)) => batch.push(entry),
                    _ => break,
                }
            }
        }
        if stopping {
            while let Ok(entry) = receiver.try_recv() {
                batch.push(entry);
            }
        }
        flush(&pool, &spool, batch, &counters).await;
        if stopping && receiver.is_empty() {
            return;
        }
    }
}

/// Replays the spool if it holds anything, then writes the batch; what
/// cannot be written now goes to the spool.
async fn flush(pool: &PgPool, spool: &Spool, batch: Vec<AuditEntry>, counters: &AuditCounters) {
    if spool.has_entries() {
        if let Err(e) = replay(pool, spool, counters).await {
            tracing::debug!(error = %e, "audit spool not replayed yet");
            spool_batch(spool, &batch, counters);
            return;
        }
    }
    if batch.is_empty() {
        return;
    }
    match insert(pool, &batch).await {
        Ok(()) => {
            counters
                .written
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::warn!(error = %e, entries = batch.len(), "access_log unreachable; spooling");
            spool_batch(spool, &batch, counters);
        }
    }
}

fn spool_batch(spool: &Spool, batch: &[AuditEntry], counters: &AuditCounters) {
    if batch.is_empty() {
        return;
    }
    match spool.append(batch) {
        Ok(kept) => {
            counters.spooled.fetch_add(kept as u64, Ordering::Relaxed);
            let lost = batch.len() - kept;
            if lost > 0 {
                counters.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                tracing::error!(lost, "audit spool full; access_log entries dropped");
            }
        }
        Err(e) => {
            counters
                .dropped
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot write the audit spool; entries dropped");
        }
    }
}

async fn replay(pool: &PgPool, spool: &Spool, counters: &AuditCounters) -> anyhow::Result<()> {
    let entries = spool.read()?;
    for chunk in entries.chunks(BATCH_MAX) {
        insert(pool, chunk).await?;
    }
    spool.clear()?;
    counters
        .written
        .fetch_add(entries.len() as u64, Ordering::Relaxed);
    tracing::info!(
        entries = entries.len(),
        "audit spool replayed into access_log"
    );
    Ok(())
}

async fn insert(pool: &PgPool, batch: &[AuditEntry]) -> Result<(), sqlx::Error> {
    let column = |f: fn(&AuditEntry) -> Option<String>| batch.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO access_log (entry_id, user_id, username, accessed_at, method, path, query,
                                 body, status, resource, duration_ms)
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::timestamptz[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::int4[], $10::text[],
                              $11::float8[])
         ON CONFLICT (entry_id) DO NOTHING",
    )
    .bind(column(|e| Some(e.entry_id.clone())))
    .bind(batch.iter().map(|e| e.user_id).collect::<Vec<_>>())
    .bind(column(|e| e.username.clone()))
    .bind(batch.iter().map(|e| e.accessed_at).collect::<Vec<_>>())
    .bind(column(|e| Some(e.method.clone())))
    .bind(column(|e| Some(e.path.clone())))
    .bind(column(|e| e.query.clone()))
    .bind(column(|e| e.body.clone()))
    .bind(batch.iter().map(|e| e.status).collect::<Vec<_>>())
    .bind(column(|e| e.resource.clone()))
    .bind(batch.iter().map(|e| e.duration_ms).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// Entries waiting for PostgreSQL, one JSON object per line.
struct Spool {
    path: PathBuf,
    max_bytes: u64,
}

impl Spool {
    fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    fn has_entries(&self) -> bool {
        self.size() > 0
    }

    /// Appends as many entries as fit; returns how many were kept.
    fn append(&self, batch: &[AuditEntry]) -> std::io::Result<usize> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut size = self.size();
        let mut text = String::new();
        let mut kept = 0;
        for entry in batch {
            let line = serde_json::to_string(entry).map_err(std::io::Error::other)? + "\n";
            if size + line.len() as u64 > self.max_bytes {
                break;
            }
            size += line.len() as u64;
            text.push_str(&line);
            kept += 1;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        Ok(kept)
    }

    /// Every complete entry; a line cut by a crash is skipped.
    fn read(&self) -> std::io::Result<Vec<AuditEntry>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            if let Ok(entry) = serde_json::from_str(&line?) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> AuditEntry {
        AuditEntry {
            entry_id: format!("e{i}"),
            user_id: Some(1),
            username: Some("ann".into()),
            accessed_at: Utc::now(),
            method: "GET".into(),
            path: "/x".into(),
            query: None,
            body: None,
            status: 200,
            resource: None,
            duration_ms: 1.5,
        }
    }

    #[test]
    fn the_spool_is_bounded_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool {
            path: dir.path().join(SPOOL_FILE),
            max_bytes: 1000,
        };
        let batch: Vec<_> = (0..20).map(entry).collect();
        let kept = spool.append(&batch).unwrap();
        assert!(kept > 0 && kept < 20, "kept {kept}");
        assert!(spool.size() <= 1000);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&spool.path)
            .unwrap()
            .write_all(b"{\"entry_id\":\"torn")
            .unwrap();
        let read = spool.read().unwrap();
        assert_eq!(read.len(), kept);
        assert_eq!(read[0], batch[0]);
        spool.clear().unwrap();
        assert!(!spool.has_entries());
    }
}
