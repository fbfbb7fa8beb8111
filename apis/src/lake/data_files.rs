//! A dataset's files in row order, and how many rows of each match a page's
//! filters. The lake sink names every file after the one Kafka partition and
//! the offsets it holds and writes its rows in offset order, so sorting the
//! files by (partition, first offset) puts every row of the dataset in the
//! API's page order without reading any of them. A page then reads only
//! the files it falls in, found from per-file row counts: the footer's for
//! an unfiltered page, else counts remembered per file and filter set
//! (landed files never change; a file that is purged or rewritten has a new
//! identity), so paging through a filter reads the filter columns once.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::NaiveDate;
use lakehouse::lake::{date_partitions, readable_files_in, LakeFile, DATA_EXTENSION};

/// One complete data file of a dataset.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub date: NaiveDate,
    pub file: LakeFile,
    pub modified: SystemTime,
}

/// The dataset's files in row order (partition, then offset), from the
/// `ingestion_date=` folders between `since` and `until` (inclusive).
/// Symbolic links are not files of the lake.
pub fn data_files(
    dataset_dir: &Path,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> io::Result<Vec<DataFile>> {
    let mut files = Vec::new();
    for partition in date_partitions(dataset_dir)? {
        if since.is_some_and(|s| partition.date < s) || until.is_some_and(|u| partition.date > u) {
            continue;
        }
        for (file, modified) in readable_files_in(&partition.path, DATA_EXTENSION)? {
            files.push(DataFile {
                date: partition.date,
                modified,
                file,
            });
        }
    }
    files.sort_by_key(|f| (f.file.range.partition, f.file.range.first, f.date));
    Ok(files)
}

/// Entries kept before the cache starts over (each is a path and a number).
const MAX_REMEMBERED: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileIdentity {
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
}

impl FileIdentity {
    fn of(file: &LakeFile, modified: SystemTime) -> Self {
        Self {
            path: file.path.clone(),
            bytes: file.bytes,
            modified,
        }
    }
}

/// Numbers known about files, keyed by the file's identity and a text
/// (empty for the footer's row count, else the filter set).
#[derive(Default)]
pub struct FileCounts {
    known: Mutex<HashMap<(FileIdentity, String), u64>>,
}

impl FileCounts {
    pub fn get(&self, file: &DataFile, key: &str) -> Option<u64> {
        let identity = FileIdentity::of(&file.file, file.modified);
        self.known
            .lock()
            .expect("file counts")
            .get(&(identity, key.to_string()))
            .copied()
    }

    pub fn put(&self, file: &DataFile, key: &str, count: u64) {
        self.put_file(&file.file, file.modified, key, count)
    }

    pub fn put_file(&self, file: &LakeFile, modified: SystemTime, key: &str, count: u64) {
        let mut known = self.known.lock().expect("file counts");
        if known.len() >= MAX_REMEMBERED {
            known.clear();
        }
        known.insert((FileIdentity::of(file, modified), key.to_string()), count);
    }

    /// Rows of a data file from its footer, read once per file.
    pub fn footer_rows(&self, file: &LakeFile, modified: SystemTime) -> u64 {
        let identity = FileIdentity::of(file, modified);
        if let Some(rows) = self
            .known
            .lock()
            .expect("file counts")
            .get(&(identity, String::new()))
        {
            return *rows;
        }
        let rows = lakehouse_workers::lake::files::data_rows(&file.path);
        self.put_file(file, modified, "", rows);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse::lake::{partition_dir_name, OffsetRange};

    #[test]
    fn files_come_in_partition_then_offset_order_within_the_dates_asked() {
        let dir = tempfile::tempdir().unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        for (date, partition, first, last) in [
            (day(2), 1, 50, 59),
            (day(1), 1, 0, 49),
            (day(2), 0, 30, 39),
            (day(1), 0, 0, 29),
            (day(3), 0, 40, 49),
        ] {
            let folder = dir.path().join(partition_dir_name(date));
            std::fs::create_dir_all(&folder).unwrap();
            let name = OffsetRange {
                partition,
                first,
                last,
            }
            .file_name(DATA_EXTENSION);
            std::fs::write(folder.join(name), b"x").unwrap();
        }
        // A link and a file being written are not data files.
        let folder = dir.path().join(partition_dir_name(day(1)));
        std::os::unix::fs::symlink(
            "/etc/passwd",
            folder.join("part-00002-0000000000000000000-0000000000000000001.parquet"),
        )
        .unwrap();
        std::fs::write(folder.join(".part-00003-x.parquet"), b"x").unwrap();

        let order = |since, until| -> Vec<(i32, i64)> {
            data_files(dir.path(), since, until)
                .unwrap()
                .iter()
                .map(|f| (f.file.range.partition, f.file.range.first))
                .collect()
        };
        assert_eq!(
            order(None, None),
            vec![(0, 0), (0, 30), (0, 40), (1, 0), (1, 50)]
        );
        assert_eq!(order(Some(day(2)), Some(day(2))), vec![(0, 30), (1, 50)]);
    }

    #[test]
    fn a_count_belongs_to_one_file_identity_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let file = DataFile {
            date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            file: LakeFile {
                path,
                range: OffsetRange {
                    partition: 0,
                    first: 0,
                    last: 9,
                },
                bytes: 1,
            },
            modified: SystemTime::UNIX_EPOCH,
        };
        let counts = FileCounts::default();
        counts.put(&file, "status=a", 4);
        assert_eq!(counts.get(&file, "status=a"), Some(4));
        assert_eq!(counts.get(&file, "status=b"), None);
        let mut rewritten = file.clone();
        rewritten.file.bytes = 2;
        assert_eq!(counts.get(&rewritten, "status=a"), None);
    }
}
