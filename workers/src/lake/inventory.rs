//! What the lake holds, per topic: date partitions, files, rows, bytes,
//! newest data and dead letters. Read from the folders and the Parquet
//! footers only, for `lakectl status`, the console and the API.

use std::path::Path;
use std::time::SystemTime;

use chrono::NaiveDate;
use lakehouse::lake::{self, DATA_EXTENSION, DLQ_EXTENSION};
use serde::Serialize;

use super::files::{data_rows, dead_letter_entries};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInventory {
    pub topic: String,
    pub partitions: usize,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub oldest_date: Option<NaiveDate>,
    pub newest_date: Option<NaiveDate>,
    /// Seconds since the newest file was written.
    pub newest_file_age_secs: Option<u64>,
    pub dead_letters: u64,
    /// Each `ingestion_date=` folder, oldest first.
    pub dates: Vec<DateInventory>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateInventory {
    pub date: NaiveDate,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Every topic folder of the lake at `root`, by name.
pub fn inventory(root: &Path) -> std::io::Result<Vec<TopicInventory>> {
    lake::topic_names(root)?
        .iter()
        .map(|topic| topic_inventory(root, topic, &|file, _| data_rows(&file.path)))
        .collect()
}

/// One topic folder; `rows_of` reads a data file's row count (from its
/// footer; a reader may remember it by the file's size and modification
/// time). Symbolic links are not part of the lake and are not counted.
pub fn topic_inventory(
    root: &Path,
    topic: &str,
    rows_of: &dyn Fn(&lake::LakeFile, SystemTime) -> u64,
) -> std::io::Result<TopicInventory> {
    let dates = lake::date_partitions(&lake::topic_dir(root, topic))?;
    let mut item = TopicInventory {
        topic: topic.to_string(),
        partitions: dates.len(),
        files: 0,
        rows: 0,
        bytes: 0,
        oldest_date: dates.first().map(|d| d.date),
        newest_date: dates.last().map(|d| d.date),
        newest_file_age_secs: None,
        dead_letters: 0,
        dates: Vec::new(),
    };
    for date in &dates {
        let mut day = DateInventory {
            date: date.date,
            files: 0,
            rows: 0,
            bytes: 0,
        };
        for (file, modified) in lake::readable_files_in(&date.path, DATA_EXTENSION)? {
            let rows = rows_of(&file, modified);
            day.files += 1;
            day.bytes += file.bytes;
            day.rows += rows;
            item.files += 1;
            item.bytes += file.bytes;
            item.rows += rows;
            let age = modified.elapsed().ok().map(|d| d.as_secs());
            item.newest_file_age_secs = match (item.newest_file_age_secs, age) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        item.dates.push(day);
    }
    for date in lake::date_partitions(&lake::dlq_topic_dir(root, topic))? {
        for file in lake::files_in(&date.path, DLQ_EXTENSION)? {
            item.dead_letters += dead_letter_entries(&file.path);
        }
    }
    Ok(item)
}
