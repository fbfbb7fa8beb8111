//! What each dataset holds on disk, for `GET /api/v2/resources`: the lake
//! inventory `lakectl status` also reads (`lakehouse_workers::lake::inventory`),
//! with each file's row count remembered (`Lake::counts`) so that a listing
//! does not re-read every footer.

use chrono::NaiveDate;
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

pub fn dataset_inventory(lake: &Lake, dataset: &str) -> Result<DatasetInventory, ApiError> {
    topic_inventory(lake.root(), dataset, &|file, modified| {
        lake.counts().footer_rows(file, modified)
    })
    .map(DatasetInventory::from)
    .map_err(ApiError::internal)
}
