//! Complete-or-absent files: everything is written under a hidden temporary
//! name in the target folder, synced, then renamed to its final name (which
//! says which offsets it holds), and the folder is synced so that the
//! rename survives a power cut.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use lakehouse::lake::{OffsetRange, DATA_EXTENSION, DLQ_EXTENSION, TEMP_PREFIX};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;

use crate::sink::SinkError;

/// Key-value metadata in each data file's footer.
pub const META_SOURCE_HWM: &str = "lakehouse.source_high_water_marks";
pub const META_FIRST_OFFSET: &str = "lakehouse.first_offset";
pub const META_LAST_OFFSET: &str = "lakehouse.last_offset";
pub const META_DEAD_LETTERED: &str = "lakehouse.dead_lettered";
pub const META_REPLAYS_DROPPED: &str = "lakehouse.replays_dropped";

/// The temporary name of a partition's file that starts at `first`.
pub fn temp_name(partition: i32, first: i64, extension: &str) -> String {
    format!("{TEMP_PREFIX}part-{partition:05}-{first:019}.{extension}.tmp")
}

/// Whether `file_name` is a temporary file of `partition`.
pub fn is_temp_of(file_name: &str, partition: i32) -> bool {
    file_name.starts_with(&format!("{TEMP_PREFIX}part-{partition:05}-"))
}

/// A Parquet file being written.
pub struct DataFile {
    dir: PathBuf,
    temp_path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
    /// The writer's in-progress size after the last write: it changes only on
    /// writes, and the sink asks for it after every record.
    buffered_bytes: usize,
}

impl DataFile {
    pub fn create(
        dir: &Path,
        partition: i32,
        first_offset: i64,
        batch: &RecordBatch,
        properties: &WriterProperties,
    ) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir)
            .map_err(SinkError::io(format!("cannot create {}", dir.display())))?;
        let temp_path = dir.join(temp_name(partition, first_offset, DATA_EXTENSION));
        let file = create_file(&temp_path)?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            batch.schema(),
            Some(properties.clone()),
        )
        .map_err(parquet_error(&temp_path))?;
        let mut data_file = Self {
            dir: dir.to_path_buf(),
            temp_path,
            writer,
            rows: 0,
            buffered_bytes: 0,
        };
        data_file.write(batch)?;
        Ok(data_file)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.writer
            .write(batch)
            .map_err(parquet_error(&self.temp_path))?;
        self.rows += batch.num_rows() as u64;
        self.buffered_bytes = self.writer.in_progress_size();
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written so far plus the row group still in memory.
    pub fn bytes(&self) -> usize {
        self.writer.bytes_written() + self.buffered_bytes
    }

    /// Memory held by the row group being built.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Writes the footer, syncs, and renames the file to the name of `range`.
    pub fn finish(
        mut self,
        range: OffsetRange,
        metadata: Vec<(String, String)>,
    ) -> Result<PathBuf, SinkError> {
        for (key, value) in metadata {
            self.writer
                .append_key_value_metadata(KeyValue::new(key, value));
        }
        let buffered = self
            .writer
            .into_inner()
            .map_err(parquet_error(&self.temp_path))?;
        let file = buffered.into_inner().map_err(|e| {
            SinkError::Storage(format!(
                "cannot write {}: {}",
                self.temp_path.display(),
                e.error()
            ))
        })?;
        publish(
            file,
            &self.temp_path,
            &self.dir.join(range.file_name(DATA_EXTENSION)),
        )
    }
}

/// Writes a dead-letter file of JSON lines for `range` in one go.
pub fn write_dlq_file(
    dir: &Path,
    range: OffsetRange,
    lines: &[Vec<u8>],
) -> Result<PathBuf, SinkError> {
    std::fs::create_dir_all(dir)
        .map_err(SinkError::io(format!("cannot create {}", dir.display())))?;
    let temp_path = dir.join(temp_name(range.partition, range.first, DLQ_EXTENSION));
    let mut out = BufWriter::new(create_file(&temp_path)?);
    for line in lines {
        out.write_all(line)
            .and_then(|_| out.write_all(b"\n"))
            .map_err(SinkError::io(format!(
                "cannot write {}",
                temp_path.display()
            )))?;
    }
    let file = out.into_inner().map_err(|e| {
        SinkError::Storage(format!(
            "cannot write {}: {}",
            temp_path.display(),
            e.error()
        ))
    })?;
    publish(file, &temp_path, &dir.join(range.file_name(DLQ_EXTENSION)))
}

fn create_file(path: &Path) -> Result<File, SinkError> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(SinkError::io(format!("cannot create {}", path.display())))
}

/// Syncs `file`, renames it into place and syncs the folder.
fn publish(file: File, temp_path: &Path, final_path: &Path) -> Result<PathBuf, SinkError> {
    file.sync_all().map_err(SinkError::io(format!(
        "cannot sync {}",
        temp_path.display()
    )))?;
    drop(file);
    std::fs::rename(temp_path, final_path).map_err(SinkError::io(format!(
        "cannot rename {} into place",
        temp_path.display()
    )))?;
    sync_dir(final_path.parent().expect("a file has a folder"))?;
    Ok(final_path.to_path_buf())
}

pub fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SinkError::io(format!("cannot sync {}", dir.display())))
}

fn parquet_error(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> SinkError + '_ {
    move |e| SinkError::Storage(format!("cannot write {}: {e}", path.display()))
}

/// Reads a data file's footer.
pub fn read_footer(path: &Path) -> Result<ParquetMetaData, SinkError> {
    let file =
        File::open(path).map_err(SinkError::io(format!("cannot open {}", path.display())))?;
    ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| {
            SinkError::Storage(format!("cannot read the footer of {}: {e}", path.display()))
        })
}

/// Rows of a data file, from its footer (0 when it cannot be read, e.g. purged meanwhile).
pub fn data_rows(path: &Path) -> u64 {
    read_footer(path).map_or(0, |f| f.file_metadata().num_rows().max(0) as u64)
}

/// Entries of a dead-letter file (one JSON object per line).
pub fn dead_letter_entries(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |bytes| {
        bytes.iter().filter(|b| **b == b'\n').count() as u64
    })
}

/// The key-value metadata of a footer.
pub fn footer_metadata(footer: &ParquetMetaData) -> Vec<(String, String)> {
    footer
        .file_metadata()
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}
