//! The data lake's layout on disk (SYSTEM.md section 4), shared by the sink
//! that writes it, the purge worker that trims it, and the readers (API,
//! console):
//!
//! ```text
//! data_lake/<TOPIC>/ingestion_date=YYYY-MM-DD/part-<P>-<FIRST>-<LAST>.parquet
//! data_lake/_dlq/<TOPIC>/ingestion_date=YYYY-MM-DD/part-<P>-<FIRST>-<LAST>.jsonl
//! data_lake/_sink/locks/<TOPIC>-<P>.lock
//! ```
//!
//! Offsets are zero-padded so that names sort in offset order. Names starting
//! with `.` (files being written) or `_` (bookkeeping) are skipped by Hive
//! readers such as DuckDB, pyarrow and Spark.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::NaiveDate;

/// Lineage columns of every landed row (the sink writes them, the API reads them).
pub const COL_TOPIC: &str = "kafka_topic";
pub const COL_PARTITION: &str = "kafka_partition";
pub const COL_OFFSET: &str = "kafka_offset";
pub const COL_TIMESTAMP: &str = "kafka_timestamp";
pub const COL_INGESTION_TIME: &str = "ingestion_time";
/// Derived streams: the source record (`topic:partition:offset`) a row was computed from.
pub const COL_SOURCE: &str = "source_position";
/// Source topics: the record's value exactly as received.
pub const COL_RAW_JSON: &str = "raw_json";
/// The Hive partition column of every dataset.
pub const COL_INGESTION_DATE: &str = "ingestion_date";

/// Folder of dead-lettered records, one sub-folder per topic.
pub const DLQ_DIR: &str = "_dlq";
/// Folder of the sink's own bookkeeping (partition locks).
pub const SINK_DIR: &str = "_sink";
pub const PARTITION_PREFIX: &str = "ingestion_date=";
pub const DATA_EXTENSION: &str = "parquet";
pub const DLQ_EXTENSION: &str = "jsonl";
/// Prefix of files still being written; renamed away when complete.
pub const TEMP_PREFIX: &str = ".";

/// Folder of one topic's data files.
pub fn topic_dir(root: &Path, topic: &str) -> PathBuf {
    root.join(topic)
}

/// Folder of one topic's dead-lettered records.
pub fn dlq_topic_dir(root: &Path, topic: &str) -> PathBuf {
    root.join(DLQ_DIR).join(topic)
}

pub fn lock_dir(root: &Path) -> PathBuf {
    root.join(SINK_DIR).join("locks")
}

pub fn partition_dir_name(date: NaiveDate) -> String {
    format!("{PARTITION_PREFIX}{}", date.format("%Y-%m-%d"))
}

/// The date of an `ingestion_date=YYYY-MM-DD` folder name.
pub fn parse_partition_dir_name(name: &str) -> Option<NaiveDate> {
    let date = name.strip_prefix(PARTITION_PREFIX)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

/// What a data or dead-letter file holds: one Kafka partition's offsets
/// `first..=last` (of which some may have been dropped as replays or
/// dead-lettered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetRange {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

impl OffsetRange {
    pub fn file_name(&self, extension: &str) -> String {
        format!(
            "part-{:05}-{:019}-{:019}.{extension}",
            self.partition, self.first, self.last
        )
    }

    /// Parses a complete file's name; temporary files and other names give `None`.
    pub fn parse(file_name: &str, extension: &str) -> Option<Self> {
        let stem = file_name.strip_prefix("part-")?.strip_suffix(extension)?;
        let stem = stem.strip_suffix('.')?;
        let mut parts = stem.split('-');
        let partition = parts.next()?.parse().ok()?;
        let first = parts.next()?.parse().ok()?;
        let last = parts.next()?.parse().ok()?;
        if parts.next().is_some() || first > last {
            return None;
        }
        Some(Self {
            partition,
            first,
            last,
        })
    }
}

/// One `ingestion_date=` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePartition {
    pub date: NaiveDate,
    pub path: PathBuf,
}

/// The date partitions under a topic folder, oldest first. A missing folder has none.
pub fn date_partitions(topic_dir: &Path) -> io::Result<Vec<DatePartition>> {
    let mut partitions = Vec::new();
    for entry in read_dir_if_exists(topic_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(date) = name.to_str().and_then(parse_partition_dir_name) {
            if entry.file_type()?.is_dir() {
                partitions.push(DatePartition {
                    date,
                    path: entry.path(),
                });
            }
        }
    }
    partitions.sort_by_key(|p| p.date);
    Ok(partitions)
}

/// A complete file of the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeFile {
    pub path: PathBuf,
    pub range: OffsetRange,
    pub bytes: u64,
}

/// Complete files with `extension` in one folder (temporary files excluded).
pub fn files_in(dir: &Path, extension: &str) -> io::Result<Vec<LakeFile>> {
    Ok(complete_files(dir, extension)?
        .into_iter()
        .map(|(file, _)| file)
        .collect())
}

/// The complete files a reader may open, with their modification time:
/// regular files only, since a link planted in the lake is not part of it.
pub fn readable_files_in(dir: &Path, extension: &str) -> io::Result<Vec<(LakeFile, SystemTime)>> {
    Ok(complete_files(dir, extension)?
        .into_iter()
        .filter(|(_, meta)| meta.file_type().is_file())
        .map(|(file, meta)| (file, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        .collect())
}

/// Complete files of a folder in offset order, each with its own metadata
/// (not a link's target's).
fn complete_files(dir: &Path, extension: &str) -> io::Result<Vec<(LakeFile, std::fs::Metadata)>> {
    let mut files = Vec::new();
    for entry in read_dir_if_exists(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(range) = name.to_str().and_then(|n| OffsetRange::parse(n, extension)) else {
            continue;
        };
        // A file removed between listing and stat (purge) is simply not there.
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        files.push((
            LakeFile {
                path: entry.path(),
                range,
                bytes: metadata.len(),
            },
            metadata,
        ));
    }
    files.sort_by_key(|(f, _)| f.range);
    Ok(files)
}

/// Temporary files (left by a writer that died) in one folder.
pub fn temp_files_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in read_dir_if_exists(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Topic folders of the lake (bookkeeping folders excluded).
pub fn topic_names(root: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in read_dir_if_exists(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !name.starts_with(['_', '.']) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn read_dir_if_exists(
    dir: &Path,
) -> io::Result<Box<dyn Iterator<Item = io::Result<std::fs::DirEntry>>>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_in_offset_order() {
        let a = OffsetRange {
            partition: 2,
            first: 9,
            last: 99,
        };
        let b = OffsetRange {
            partition: 2,
            first: 100,
            last: 1_000,
        };
        let (na, nb) = (a.file_name("parquet"), b.file_name("parquet"));
        assert_eq!(
            na,
            "part-00002-0000000000000000009-0000000000000000099.parquet"
        );
        assert!(na < nb);
        assert_eq!(OffsetRange::parse(&na, "parquet"), Some(a));
        assert_eq!(OffsetRange::parse(&nb, "jsonl"), None);
        assert_eq!(OffsetRange::parse(&format!(".{na}.tmp"), "parquet"), None);
        assert_eq!(OffsetRange::parse("part-1-5-4.parquet", "parquet"), None);
    }

    #[test]
    fn partition_folders_parse_only_real_dates() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(partition_dir_name(d), "ingestion_date=2026-11-24");
        assert_eq!(
            parse_partition_dir_name("ingestion_date=2026-11-24"),
            Some(d)
        );
        assert_eq!(parse_partition_dir_name("ingestion_date=2026-13-01"), None);
        assert_eq!(parse_partition_dir_name("date=2026-11-24"), None);
    }
}
