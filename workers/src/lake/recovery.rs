//! Where a partition resumes, read from the lake itself: the highest offset
//! in a complete data file, the group's committed offset when that is
//! further (offsets whose records were all replays or dead letters leave no
//! data file), and the replay high-water marks from the newest footer.
//! Leftovers of a writer that died are removed: temporary files, and
//! dead-letter files of offsets that will be read again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lakehouse::lake::{self, DATA_EXTENSION, DLQ_EXTENSION};

use super::files::{footer_metadata, is_temp_of, read_footer, META_SOURCE_HWM};
use crate::sink::SinkError;

#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    /// Next offset to read; `None`: the partition has never landed anything.
    pub next_offset: Option<i64>,
    /// Highest source offset landed per source partition (`topic:partition`).
    pub source_high_water_marks: HashMap<String, i64>,
    /// Temporary and orphaned dead-letter files removed.
    pub removed: Vec<PathBuf>,
}

pub fn recover(
    root: &Path,
    topic: &str,
    partition: i32,
    committed: Option<i64>,
) -> Result<Recovered, SinkError> {
    let io = |dir: &Path| SinkError::io(format!("cannot list {}", dir.display()));
    let mut recovered = Recovered::default();
    let mut newest: Option<(i64, PathBuf)> = None;
    let topic_dir = lake::topic_dir(root, topic);
    for date in lake::date_partitions(&topic_dir).map_err(io(&topic_dir))? {
        for file in lake::files_in(&date.path, DATA_EXTENSION).map_err(io(&date.path))? {
            if file.range.partition == partition
                && newest
                    .as_ref()
                    .is_none_or(|(last, _)| file.range.last > *last)
            {
                newest = Some((file.range.last, file.path));
            }
        }
        remove_temp_files(&date.path, partition, &mut recovered.removed)?;
    }
    let landed_next = newest.as_ref().map(|(last, _)| last + 1);
    recovered.next_offset = match (landed_next, committed) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    if let Some((_, path)) = &newest {
        let footer = read_footer(path)?;
        if let Some((_, json)) = footer_metadata(&footer)
            .into_iter()
            .find(|(k, _)| k == META_SOURCE_HWM)
        {
            recovered.source_high_water_marks = serde_json::from_str(&json).map_err(|e| {
                SinkError::Storage(format!(
                    "{}: unreadable {META_SOURCE_HWM}: {e}",
                    path.display()
                ))
            })?;
        }
    }
    let dlq_dir = lake::dlq_topic_dir(root, topic);
    for date in lake::date_partitions(&dlq_dir).map_err(io(&dlq_dir))? {
        remove_temp_files(&date.path, partition, &mut recovered.removed)?;
        for file in lake::files_in(&date.path, DLQ_EXTENSION).map_err(io(&date.path))? {
            // Written just before a data file that never made it: these offsets are read again.
            let orphan = recovered
                .next_offset
                .is_none_or(|next| file.range.first >= next);
            if file.range.partition == partition && orphan {
                remove(&file.path, &mut recovered.removed)?;
            }
        }
    }
    Ok(recovered)
}

fn remove_temp_files(
    dir: &Path,
    partition: i32,
    removed: &mut Vec<PathBuf>,
) -> Result<(), SinkError> {
    for path in
        lake::temp_files_in(dir).map_err(SinkError::io(format!("cannot list {}", dir.display())))?
    {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_temp_of(&name, partition) {
            remove(&path, removed)?;
        }
    }
    Ok(())
}

fn remove(path: &Path, removed: &mut Vec<PathBuf>) -> Result<(), SinkError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            removed.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SinkError::io(format!("cannot remove {}", path.display()))(
            e,
        )),
    }
}
