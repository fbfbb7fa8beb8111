//! A lake file's records as search documents: every text column's values
//! (words and whole values), the record as JSON, and where it came from.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use lakehouse::lake::{COL_OFFSET, COL_PARTITION, COL_RAW_JSON, COL_SOURCE, COL_TOPIC};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tantivy::TantivyDocument;

use super::{day_number, Fields, SearchError, KIND_FILE, KIND_RECORD};

/// Columns that are text but say nothing of the record: the topic (the
/// dataset's own name), the lineage position, and the raw message (whose
/// values are the record's other columns).
const NOT_SEARCHED: [&str; 3] = [COL_TOPIC, COL_SOURCE, COL_RAW_JSON];

const BATCH_ROWS: usize = 4096;

/// A file of the lake, named by its place in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LakeFile {
    pub dataset: String,
    pub date: chrono::NaiveDate,
    /// `STREAM/ingestion_date=D/NAME.parquet`.
    pub relative: String,
}

impl LakeFile {
    pub fn folder(&self) -> String {
        folder_of(&self.dataset, self.date)
    }
}

/// A dataset's date folder as the index names it: `STREAM/ingestion_date=D`.
pub fn folder_of(dataset: &str, date: chrono::NaiveDate) -> String {
    format!("{dataset}/{}", lakehouse::lake::partition_dir_name(date))
}

/// Calls `add` with each record's document of `file`, then its marker;
/// the number of records.
pub fn file_documents(
    root: &Path,
    file: &LakeFile,
    fields: &Fields,
    mut add: impl FnMut(TantivyDocument) -> Result<(), SearchError>,
) -> Result<u64, SearchError> {
    let failed = |message: String| SearchError::File {
        file: file.relative.clone(),
        message,
    };
    let handle =
        std::fs::File::open(root.join(&file.relative)).map_err(|source| SearchError::Io {
            context: format!("cannot open {}", file.relative),
            source,
        })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(handle)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| failed(e.to_string()))?;
    let date = day_number(file.date);
    let mut records = 0;
    for batch in reader {
        let batch = batch.map_err(|e| failed(e.to_string()))?;
        records += batch_documents(&batch, file, date, fields, &mut add)?;
    }
    let mut marker = TantivyDocument::default();
    marker.add_text(fields.kind, KIND_FILE);
    marker.add_text(fields.resource, &file.dataset);
    marker.add_text(fields.file, &file.relative);
    marker.add_text(fields.folder, file.folder());
    marker.add_i64(fields.date, date);
    add(marker)?;
    Ok(records)
}

fn batch_documents(
    batch: &RecordBatch,
    file: &LakeFile,
    date: i64,
    fields: &Fields,
    add: &mut impl FnMut(TantivyDocument) -> Result<(), SearchError>,
) -> Result<u64, SearchError> {
    let schema = batch.schema();
    let text_columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| !NOT_SEARCHED.contains(&f.name().as_str()))
        .filter(|(f, _)| {
            matches!(
                f.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        })
        .map(|(_, c)| c.clone())
        .collect();
    let partitions = integer_column(batch, COL_PARTITION);
    let offsets = integer_column(batch, COL_OFFSET);
    let shown = match schema.index_of(COL_RAW_JSON) {
        Ok(i) => {
            let mut shown = batch.clone();
            shown.remove_column(i);
            shown
        }
        Err(_) => batch.clone(),
    };
    let records = json_lines(&shown).map_err(|message| SearchError::File {
        file: file.relative.clone(),
        message,
    })?;
    for (row, record) in records.into_iter().enumerate() {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.kind, KIND_RECORD);
        doc.add_text(fields.resource, &file.dataset);
        doc.add_text(fields.file, &file.relative);
        doc.add_i64(fields.date, date);
        doc.add_i64(fields.partition, partitions(row));
        doc.add_i64(fields.offset, offsets(row));
        for column in &text_columns {
            if let Some(value) = text_value(column, row) {
                doc.add_text(fields.text, value);
                doc.add_text(fields.exact, value);
            }
        }
        doc.add_text(fields.record, record);
        add(doc)?;
    }
    Ok(batch.num_rows() as u64)
}

fn text_value(column: &ArrayRef, row: usize) -> Option<&str> {
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(column.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(column.as_string_view().value(row)),
        _ => None,
    }
    .filter(|v| !v.is_empty())
}

/// A row's value of an integer column (−1 when the file has none).
fn integer_column(batch: &RecordBatch, name: &str) -> impl Fn(usize) -> i64 {
    let column = batch.column_by_name(name).cloned();
    move |row| {
        let Some(column) = &column else { return -1 };
        if column.is_null(row) {
            return -1;
        }
        match column.data_type() {
            DataType::Int32 => column
                .as_primitive::<arrow_array::types::Int32Type>()
                .value(row) as i64,
            DataType::Int64 => column
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(row),
            _ => -1,
        }
    }
}

/// Each row of `batch` as a JSON object, by the API's own JSON rules.
fn json_lines(batch: &RecordBatch) -> Result<Vec<String>, String> {
    let lines = crate::lake::encode::ndjson(std::slice::from_ref(batch))
        .map_err(|e| e.body().error.message)?;
    let text = String::from_utf8(lines).map_err(|e| e.to_string())?;
    Ok(text.lines().map(str::to_string).collect())
}
