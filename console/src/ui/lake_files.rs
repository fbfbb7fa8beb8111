//! The files of one lake stream's date folder, for the lake view's last
//! drill-in: each file's Kafka partition and offsets (from its name), rows
//! (from its footer) and bytes.

use std::path::Path;

use chrono::NaiveDate;
use lakehouse::lake::{self, DATA_EXTENSION};
use lakehouse_workers::lake::files::data_rows;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeFileRow {
    pub name: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub rows: u64,
    pub bytes: u64,
}

/// The complete data files of `stream` on `date`, in partition and offset order.
pub fn list(root: &Path, stream: &str, date: NaiveDate) -> Vec<LakeFileRow> {
    let dir = lake::topic_dir(root, stream).join(lake::partition_dir_name(date));
    let mut rows: Vec<LakeFileRow> = lake::files_in(&dir, DATA_EXTENSION)
        .unwrap_or_default()
        .into_iter()
        .map(|file| LakeFileRow {
            name: file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            partition: file.range.partition,
            first_offset: file.range.first,
            last_offset: file.range.last,
            rows: data_rows(&file.path),
            bytes: file.bytes,
        })
        .collect();
    rows.sort_by_key(|r| (r.partition, r.first_offset));
    rows
}
