//! What a re-push job sends: the records of a source dataset (one the lake
//! lands with `raw_json`) in the lake's order, partition then offset, up to
//! the history's end when the job began, read file by file with only the
//! columns a re-push needs.

use std::collections::VecDeque;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use chrono::NaiveDate;
use datafusion::catalog::TableProvider;
use datafusion::prelude::{col, lit};
use lakehouse::lake::{COL_OFFSET, COL_PARTITION, COL_RAW_JSON, COL_TIMESTAMP};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::error::ApiError;
use crate::lake::data_files::{data_files, DataFile};
use crate::lake::Lake;

use super::store::PartitionOffsets;

/// The column that names a transaction, in any case.
pub const TRANSACTION_ID: &str = "transaction_id";

const BATCH_ROWS: usize = 2048;

/// One record to send again.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub partition: i32,
    pub offset: i64,
    pub transaction_id: Option<String>,
    pub raw_json: String,
}

/// The history a dataset job covers, as it stands now: the last offset of
/// each partition among the files between `since` and `until`, and the
/// number of records in them (from the files' footers).
pub fn history(
    lake: &Lake,
    dataset: &str,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> Result<(PartitionOffsets, i64), ApiError> {
    let files = data_files(&lake.dataset_dir(dataset), since, until).map_err(ApiError::internal)?;
    let mut bounds = PartitionOffsets::new();
    let mut total = 0;
    for file in &files {
        let last = bounds.entry(file.file.range.partition).or_insert(i64::MIN);
        *last = (*last).max(file.file.range.last);
        total += lake.counts().footer_rows(&file.file, file.modified) as i64;
    }
    Ok((bounds, total))
}

/// Where the newest copy of a transaction sits in a source dataset (by its
/// record timestamp; the lake holds a transaction again once re-pushed).
pub async fn find_transaction(
    lake: &Lake,
    dataset: &str,
    transaction_id: &str,
) -> Result<Option<(i32, i64)>, ApiError> {
    let Some(table) = lake.table(dataset).await? else {
        return Ok(None);
    };
    let schema = table.schema();
    let Some(id_column) = schema
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(TRANSACTION_ID))
        .map(|f| f.name().clone())
    else {
        return Ok(None);
    };
    let found = lake
        .context()
        .read_table(table)?
        .filter(datafusion::prelude::ident(&id_column).eq(lit(transaction_id)))?
        .sort(vec![
            col(COL_TIMESTAMP).sort(false, false),
            col(COL_OFFSET).sort(false, false),
        ])?
        .limit(0, Some(1))?
        .select(vec![col(COL_PARTITION), col(COL_OFFSET)])?
        .collect()
        .await?;
    Ok(found.iter().find(|b| b.num_rows() > 0).map(|b| {
        (
            b.column(0).as_primitive::<Int32Type>().value(0),
            b.column(1).as_primitive::<Int64Type>().value(0),
        )
    }))
}

/// Reads a job's records after its cursor, a batch at a time, holding one
/// file open at most.
pub struct SourceReader {
    files: VecDeque<DataFile>,
    bounds: PartitionOffsets,
    cursor: Option<(i32, i64)>,
    current: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    pending: VecDeque<SourceRecord>,
}

impl SourceReader {
    pub fn open(
        dataset_dir: &Path,
        since: Option<NaiveDate>,
        until: Option<NaiveDate>,
        bounds: PartitionOffsets,
        cursor: Option<(i32, i64)>,
    ) -> std::io::Result<Self> {
        let files = data_files(dataset_dir, since, until)?
            .into_iter()
            .filter(|f| {
                let range = f.file.range;
                bounds
                    .get(&range.partition)
                    .is_some_and(|last| range.first <= *last)
                    && cursor.is_none_or(|c| (range.partition, range.last) > c)
            })
            .collect();
        Ok(Self {
            files,
            bounds,
            cursor,
            current: None,
            pending: VecDeque::new(),
        })
    }

    /// Up to `max` records after the cursor; empty once the history is sent.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, String> {
        while self.pending.len() < max {
            if !self.fill()? {
                break;
            }
        }
        let take = self.pending.len().min(max);
        let batch: Vec<SourceRecord> = self.pending.drain(..take).collect();
        if let Some(last) = batch.last() {
            self.cursor = Some((last.partition, last.offset));
        }
        Ok(batch)
    }

    /// Reads more rows into `pending`; false when no file is left.
    fn fill(&mut self) -> Result<bool, String> {
        loop {
            if let Some(reader) = self.current.as_mut() {
                match reader.next() {
                    Some(batch) => {
                        let batch = batch.map_err(|e| e.to_string())?;
                        self.take_rows(&batch)?;
                        return Ok(true);
                    }
                    None => self.current = None,
                }
            }
            let Some(file) = self.files.pop_front() else {
                return Ok(false);
            };
            // A file purged since the job began is no longer there to send.
            self.current = open_projected(
                &file.file.path,
                &[COL_PARTITION, COL_OFFSET, COL_RAW_JSON],
                Some(TRANSACTION_ID),
            )?;
        }
    }

    fn take_rows(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let column = |name: &str| column_named(batch, name);
        let partitions = column(COL_PARTITION)?;
        let offsets = column(COL_OFFSET)?;
        let raw = column(COL_RAW_JSON)?;
        let ids = batch
            .schema()
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(TRANSACTION_ID))
            .map(|i| batch.column(i).clone());
        let partitions = partitions.as_primitive::<Int32Type>();
        let offsets = offsets.as_primitive::<Int64Type>();
        let raw = raw.as_string::<i32>();
        let ids = ids.as_ref().and_then(|c| c.as_string_opt::<i32>());
        for row in 0..batch.num_rows() {
            let position = (partitions.value(row), offsets.value(row));
            let in_history = self
                .bounds
                .get(&position.0)
                .is_some_and(|last| position.1 <= *last);
            if !in_history || self.cursor.is_some_and(|c| position <= c) {
                continue;
            }
            self.pending.push_back(SourceRecord {
                partition: position.0,
                offset: position.1,
                transaction_id: ids
                    .filter(|c| c.is_valid(row))
                    .map(|c| c.value(row).to_string()),
                raw_json: raw.value(row).to_string(),
            });
        }
        Ok(())
    }
}

/// A column of a projected batch by name: projected columns come in the
/// file's order, not the order they were asked for.
pub fn column_named(batch: &RecordBatch, name: &str) -> Result<arrow_array::ArrayRef, String> {
    batch
        .schema()
        .index_of(name)
        .map(|i| batch.column(i).clone())
        .map_err(|_| format!("the file has no {name} column"))
}

/// [`projected_reader`], with a file purged since it was listed read as
/// no file (`None`).
pub fn open_projected(
    path: &Path,
    columns: &[&str],
    optional: Option<&str>,
) -> Result<Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>, String> {
    match projected_reader(path, columns, optional) {
        Ok(reader) => Ok(Some(reader)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A file's rows with only the named columns (and `optional`, matched in
/// any case, when the file has it).
pub fn projected_reader(
    path: &Path,
    columns: &[&str],
    optional: Option<&str>,
) -> std::io::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let handle = std::fs::File::open(path)?;
    let invalid =
        |e: parquet::errors::ParquetError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let builder = ParquetRecordBatchReaderBuilder::try_new(handle).map_err(invalid)?;
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            columns.contains(&f.name().as_str())
                || optional.is_some_and(|o| f.name().eq_ignore_ascii_case(o))
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(invalid)
}
