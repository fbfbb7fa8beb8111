//! What each dataset holds on disk, for `GET /api/v2/resources`: the lake
//! inventory `lakectl status` also reads (`lakehouse_workers::lake::inventory`),
//! with each file's row count remembered by path, size and modification
//! time so that a listing does not re-read every footer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::NaiveDate;
use lakehouse::lake::LakeFile;
use lakehouse_workers::lake::files::data_rows;
use lakehouse_workers::lake::inventory::{topic_inventory, TopicInventory};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::lake::Lake;

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetInventory {
    pub partitions: usize,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    #[schema(value_type = Option<String>, format = Date)]
    pub oldest_partition: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub newest_partition: Option<NaiveDate>,
    /// Seconds since the newest file landed.
    pub newest_file_age_secs: Option<u64>,
    /// Dead-lettered records of this stream.
    pub dead_letters: u64,
}

impl From<TopicInventory> for DatasetInventory {
    fn from(t: TopicInventory) -> Self {
        Self {
            partitions: t.partitions,
            files: t.files,
            rows: t.rows,
            bytes: t.bytes,
            oldest_partition: t.oldest_date,
            newest_partition: t.newest_date,
            newest_file_age_secs: t.newest_file_age_secs,
            dead_letters: t.dead_letters,
        }
    }
}

/// Row counts of data files already read.
#[derive(Default)]
pub struct FooterRows {
    known: Mutex<HashMap<PathBuf, (u64, SystemTime, u64)>>,
}

impl FooterRows {
    fn rows(&self, file: &LakeFile, modified: SystemTime) -> u64 {
        let known = self
            .known
            .lock()
            .expect("footer rows")
            .get(&file.path)
            .copied();
        if let Some((bytes, at, rows)) = known {
            if bytes == file.bytes && at == modified {
                return rows;
            }
        }
        let rows = data_rows(&file.path);
        self.known
            .lock()
            .expect("footer rows")
            .insert(file.path.clone(), (file.bytes, modified, rows));
        rows
    }
}

pub fn dataset_inventory(
    lake: &Lake,
    footers: &FooterRows,
    dataset: &str,
) -> Result<DatasetInventory, ApiError> {
    topic_inventory(lake.root(), dataset, &|file, modified| {
        footers.rows(file, modified)
    })
    .map(DatasetInventory::from)
    .map_err(ApiError::internal)
}
