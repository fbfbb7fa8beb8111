//! Retention of the lake: whole `ingestion_date=` partitions older than the
//! retention are removed, data and dead letters alike; today's partition
//! never is. Each run is recorded as one JSON line in
//! `log/purge/purge-runs.jsonl`, which the console and the API read.
//!
//! Safe next to a running sink: the sink only writes today's partition, and
//! a file still being written (a hidden temporary file younger than an hour)
//! is never removed; its folder then stays.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{NaiveDate, Utc};
use lakehouse::lake::{self, DATA_EXTENSION, DLQ_EXTENSION};
use serde::{Deserialize, Serialize};

use crate::lake::files::{data_rows, dead_letter_entries};

/// Temporary files younger than this belong to a live writer.
const IN_PROGRESS_AGE: Duration = Duration::from_secs(3600);
pub const RUNS_FILE: &str = "purge-runs.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("retention override {0:?}: expected TOPIC=DAYS")]
    BadOverride(String),
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PurgeError {
    let context = context.into();
    move |source| PurgeError::Io { context, source }
}

/// Days to keep, globally and per topic. A partition is expired when its date
/// is more than `days` before today: retention 7 keeps today and the 7 days before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionPolicy {
    pub default_days: u32,
    pub per_topic: BTreeMap<String, u32>,
}

impl RetentionPolicy {
    pub fn new(default_days: u32) -> Self {
        Self {
            default_days,
            per_topic: BTreeMap::new(),
        }
    }

    /// Parses `TOPIC=DAYS,TOPIC=DAYS`.
    /// Topics with their own retention that the lake has no folder for (a
    /// typo, most likely: such a retention never applies to anything).
    pub fn unknown_topics(&self, lake_root: &Path) -> Vec<String> {
        self.per_topic
            .keys()
            .filter(|topic| !lakehouse::lake::topic_dir(lake_root, topic).is_dir())
            .cloned()
            .collect()
    }

    pub fn with_overrides(mut self, overrides: &str) -> Result<Self, PurgeError> {
        for item in overrides
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (topic, days) = item
                .split_once('=')
                .and_then(|(t, d)| Some((t.trim(), d.trim().parse().ok()?)))
                .filter(|(t, _)| !t.is_empty())
                .ok_or_else(|| PurgeError::BadOverride(item.to_string()))?;
            self.per_topic.insert(topic.to_string(), days);
        }
        Ok(self)
    }

    pub fn days_for(&self, topic: &str) -> u32 {
        self.per_topic
            .get(topic)
            .copied()
            .unwrap_or(self.default_days)
    }

    pub fn is_expired(&self, topic: &str, date: NaiveDate, today: NaiveDate) -> bool {
        date < today && (today - date).num_days() > i64::from(self.days_for(topic))
    }
}

/// One expired partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgedPartition {
    pub topic: String,
    pub dead_letters: bool,
    pub date: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub path: PathBuf,
    pub retention_days: u32,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Files left because a writer still holds them.
    pub kept_in_progress: u64,
}

/// What one run removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    pub started_at: String,
    pub dry_run: bool,
    pub today: NaiveDate,
    pub policy: RetentionPolicy,
    pub partitions: Vec<PurgedPartition>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// One purge run over the lake at `root`.
pub fn purge(
    root: &Path,
    policy: &RetentionPolicy,
    today: NaiveDate,
    dry_run: bool,
) -> Result<PurgeReport, PurgeError> {
    let started_at = Utc::now().to_rfc3339();
    let mut partitions = Vec::new();
    let dlq_root = root.join(lake::DLQ_DIR);
    let data =
        lake::topic_names(root).map_err(io_error(format!("cannot list {}", root.display())))?;
    let dead = lake::topic_names(&dlq_root)
        .map_err(io_error(format!("cannot list {}", dlq_root.display())))?;
    let folders = data
        .into_iter()
        .map(|t| (lake::topic_dir(root, &t), t, false))
        .chain(
            dead.into_iter()
                .map(|t| (lake::dlq_topic_dir(root, &t), t, true)),
        );
    for (topic_dir, topic, dead_letters) in folders {
        let dates = lake::date_partitions(&topic_dir)
            .map_err(io_error(format!("cannot list {}", topic_dir.display())))?;
        for date in dates
            .into_iter()
            .filter(|d| policy.is_expired(&topic, d.date, today))
        {
            let mut partition = PurgedPartition {
                topic: topic.clone(),
                dead_letters,
                date: date.date,
                path: date.path.clone(),
                retention_days: policy.days_for(&topic),
                files: 0,
                rows: 0,
                bytes: 0,
                kept_in_progress: 0,
            };
            purge_partition(&date.path, dead_letters, dry_run, &mut partition)?;
            partitions.push(partition);
        }
    }
    Ok(PurgeReport {
        started_at,
        dry_run,
        today,
        policy: policy.clone(),
        files: partitions.iter().map(|p| p.files).sum(),
        rows: partitions.iter().map(|p| p.rows).sum(),
        bytes: partitions.iter().map(|p| p.bytes).sum(),
        partitions,
    })
}

fn purge_partition(
    dir: &Path,
    dead_letters: bool,
    dry_run: bool,
    partition: &mut PurgedPartition,
) -> Result<(), PurgeError> {
    let extension = if dead_letters {
        DLQ_EXTENSION
    } else {
        DATA_EXTENSION
    };
    for file in lake::files_in(dir, extension)
        .map_err(io_error(format!("cannot list {}", dir.display())))?
    {
        partition.rows += if dead_letters {
            dead_letter_entries(&file.path)
        } else {
            data_rows(&file.path)
        };
        partition.bytes += file.bytes;
        partition.files += 1;
        if !dry_run {
            remove_file(&file.path)?;
        }
    }
    for temp in
        lake::temp_files_in(dir).map_err(io_error(format!("cannot list {}", dir.display())))?
    {
        let age = std::fs::metadata(&temp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        if age < IN_PROGRESS_AGE {
            partition.kept_in_progress += 1;
        } else if !dry_run {
            remove_file(&temp)?;
        }
    }
    if !dry_run && partition.kept_in_progress == 0 {
        // Something may have appeared meanwhile; then the folder stays for the next run.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

fn remove_file(path: &Path) -> Result<(), PurgeError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Purge settings shared by `lake-purge` and `lakectl purge`.
#[derive(Debug, Clone, clap::Args)]
pub struct PurgeArgs {
    /// Days to keep: today and this many days before it stay.
    #[arg(long, env = "LAKEHOUSE_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Per-topic retention, e.g. `TRANSACTIONS_HIGH_AMOUNT=90,transaction_log=7`.
    #[arg(
        long = "retention",
        env = "LAKEHOUSE_RETENTION_OVERRIDES",
        default_value = ""
    )]
    pub overrides: String,
    /// List what would be removed, remove nothing.
    #[arg(long, env = "LAKEHOUSE_PURGE_DRY_RUN")]
    pub dry_run: bool,
}

impl PurgeArgs {
    /// The defaults, overridden by the environment variables only.
    pub fn from_env() -> Self {
        crate::cli::args_from_env()
    }

    pub fn policy(&self) -> Result<RetentionPolicy, PurgeError> {
        RetentionPolicy::new(self.retention_days).with_overrides(&self.overrides)
    }
}

/// One run against today's date (UTC), recorded under `log_dir` and in the log.
pub fn run_and_record(
    lake_root: &Path,
    log_dir: &Path,
    policy: &RetentionPolicy,
    dry_run: bool,
) -> Result<PurgeReport, PurgeError> {
    let report = purge(lake_root, policy, Utc::now().date_naive(), dry_run)?;
    let record = record_run(log_dir, &report)?;
    tracing::info!(
        dry_run,
        partitions = report.partitions.len(),
        files = report.files,
        rows = report.rows,
        bytes = report.bytes,
        "purge run recorded in {}",
        record.display()
    );
    Ok(report)
}

/// Where runs are recorded: `<log_dir>/purge/purge-runs.jsonl`.
pub fn runs_path(log_dir: &Path) -> PathBuf {
    log_dir.join("purge").join(RUNS_FILE)
}

/// Appends a run to the record.
pub fn record_run(log_dir: &Path, report: &PurgeReport) -> Result<PathBuf, PurgeError> {
    let path = runs_path(log_dir);
    let dir = path.parent().expect("has a folder");
    std::fs::create_dir_all(dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
    let mut line = serde_json::to_vec(report).expect("a report serialises");
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&line))
        .map_err(io_error(format!("cannot append to {}", path.display())))?;
    Ok(path)
}

/// The most recent recorded runs, newest last.
pub fn recent_runs(log_dir: &Path, limit: usize) -> Vec<PurgeReport> {
    let Ok(file) = std::fs::File::open(runs_path(log_dir)) else {
        return Vec::new();
    };
    let runs: Vec<PurgeReport> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    runs[runs.len().saturating_sub(limit)..].to_vec()
}

/// A human-readable table of a run.
pub fn render(report: &PurgeReport) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if report.partitions.is_empty() {
        out.push_str(&format!(
            "nothing expired (today {}, retention {} days)\n",
            report.today, report.policy.default_days
        ));
        return out;
    }
    out.push_str(&format!(
        "{:<36} {:<12} {:>6} {:>10} {:>12}\n",
        "topic", "date", "files", "rows", "bytes"
    ));
    for p in &report.partitions {
        let name = if p.dead_letters {
            format!("_dlq/{}", p.topic)
        } else {
            p.topic.clone()
        };
        out.push_str(&format!(
            "{:<36} {:<12} {:>6} {:>10} {:>12}\n",
            name, p.date, p.files, p.rows, p.bytes
        ));
    }
    out.push_str(&format!(
        "{verb} {} partitions: {} files, {} rows, {} bytes\n",
        report.partitions.len(),
        report.files,
        report.rows,
        report.bytes
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn retention_keeps_today_and_the_days_before_it() {
        let policy = RetentionPolicy::new(7)
            .with_overrides("HOT=0, COLD = 30")
            .unwrap();
        let today = day("2026-11-24");
        assert!(!policy.is_expired("T", day("2026-11-17"), today));
        assert!(policy.is_expired("T", day("2026-11-16"), today));
        assert!(!policy.is_expired("HOT", today, today), "never today's");
        assert!(policy.is_expired("HOT", day("2026-11-23"), today));
        assert!(!policy.is_expired("COLD", day("2026-10-25"), today));
        assert!(policy.is_expired("COLD", day("2026-10-24"), today));
        assert!(
            !policy.is_expired("T", day("2026-12-01"), today),
            "future dates stay"
        );
    }

    #[test]
    fn bad_overrides_are_named() {
        for bad in ["X", "X=", "=3", "X=-1", "X=three"] {
            let err = RetentionPolicy::new(1).with_overrides(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
