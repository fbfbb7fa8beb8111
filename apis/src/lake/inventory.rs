//! What each dataset holds on disk, for `GET /api/v2/resources`: date
//! partitions, files, rows (from Parquet footers, each read once and
//! remembered by path, size and modification time), bytes, newest data.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};
use lakehouse::lake::{date_partitions, files_in, DATA_EXTENSION, DLQ_EXTENSION};
use parquet::file::metadata::ParquetMetaDataReader;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::lake::Lake;

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetInventory {
    pub partitions: usize,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    #[schema(value_type = Option<String>, format = Date)]
    pub oldest_partition: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub newest_partition: Option<NaiveDate>,
    /// When the newest file landed.
    pub newest_file_at: Option<DateTime<Utc>>,
    /// Files of dead-lettered records for this stream.
    pub dead_letter_files: usize,
}

#[derive(Default)]
pub struct FooterRows {
    known: Mutex<HashMap<PathBuf, (u64, SystemTime, u64)>>,
}

impl FooterRows {
    fn rows(&self, path: &PathBuf, bytes: u64, modified: SystemTime) -> u64 {
        if let Some((b, m, rows)) = self.known.lock().expect("footer rows").get(path) {
            if *b == bytes && *m == modified {
                return *rows;
            }
        }
        let rows = std::fs::File::open(path)
            .ok()
            .and_then(|file| ParquetMetaDataReader::new().parse_and_finish(&file).ok())
            .map(|meta| meta.file_metadata().num_rows().max(0) as u64)
            .unwrap_or(0);
        self.known
            .lock()
            .expect("footer rows")
            .insert(path.clone(), (bytes, modified, rows));
        rows
    }
}

pub fn dataset_inventory(
    lake: &Lake,
    footers: &FooterRows,
    dataset: &str,
) -> Result<DatasetInventory, ApiError> {
    let partitions = date_partitions(&lake.dataset_dir(dataset)).map_err(ApiError::internal)?;
    let mut inventory = DatasetInventory {
        partitions: partitions.len(),
        files: 0,
        rows: 0,
        bytes: 0,
        oldest_partition: partitions.first().map(|p| p.date),
        newest_partition: partitions.last().map(|p| p.date),
        newest_file_at: None,
        dead_letter_files: 0,
    };
    let mut newest: Option<SystemTime> = None;
    for partition in &partitions {
        for file in files_in(&partition.path, DATA_EXTENSION).map_err(ApiError::internal)? {
            // Symlinks are not part of the lake.
            let Ok(meta) = std::fs::symlink_metadata(&file.path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            inventory.files += 1;
            inventory.bytes += file.bytes;
            inventory.rows += footers.rows(&file.path, file.bytes, modified);
            newest = newest.max(Some(modified));
        }
    }
    inventory.newest_file_at = newest.map(DateTime::<Utc>::from);
    let dlq = lakehouse::lake::dlq_topic_dir(lake.root(), dataset);
    for partition in date_partitions(&dlq).map_err(ApiError::internal)? {
        inventory.dead_letter_files += files_in(&partition.path, DLQ_EXTENSION)
            .map_err(ApiError::internal)?
            .len();
    }
    Ok(inventory)
}
