//! Rows out of Arrow in the format the client asked for by `Accept`: JSON
//! (the page object), NDJSON or CSV.

use arrow_array::RecordBatch;
use axum::http::{header, HeaderMap};
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};

use crate::error::ApiError;

pub const NDJSON: &str = "application/x-ndjson";
pub const CSV: &str = "text/csv";
pub const JSON: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    /// From the `Accept` header: the first of NDJSON or CSV it names, else JSON.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for item in accept.split(',') {
            let media = item.split(';').next().unwrap_or("").trim();
            if media.eq_ignore_ascii_case(NDJSON) {
                return Self::Ndjson;
            }
            if media.eq_ignore_ascii_case(CSV) {
                return Self::Csv;
            }
        }
        Self::Json
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => JSON,
            Self::Ndjson => NDJSON,
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// `header` (a JSON object) with the encoded rows added under `key`, spliced
/// in as Arrow wrote them rather than parsed again.
pub fn object_with_rows(
    header: serde_json::Value,
    key: &str,
    rows: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let mut text = serde_json::to_vec(&header).map_err(ApiError::internal)?;
    if text.pop() != Some(b'}') {
        return Err(ApiError::internal("the header is not a JSON object"));
    }
    if text.len() > 1 {
        text.push(b',');
    }
    text.extend_from_slice(
        serde_json::to_string(key)
            .map_err(ApiError::internal)?
            .as_bytes(),
    );
    text.push(b':');
    text.extend_from_slice(rows);
    text.push(b'}');
    Ok(text)
}

/// A JSON array of row objects, nulls written out.
pub fn json_array(batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(ApiError::internal)?;
    writer.finish().map_err(ApiError::internal)?;
    let bytes = writer.into_inner();
    // An empty result writes nothing at all.
    Ok(if bytes.is_empty() {
        b"[]".to_vec()
    } else {
        bytes
    })
}

pub fn ndjson(batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(ApiError::internal)?;
    writer.finish().map_err(ApiError::internal)?;
    Ok(writer.into_inner())
}

/// CSV with a header line, also for an empty result when the columns are known.
pub fn csv(batches: &[RecordBatch], columns: &[String]) -> Result<Vec<u8>, ApiError> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        let mut header = columns.join(",");
        header.push('\n');
        return Ok(header.into_bytes());
    }
    let mut out = Vec::new();
    {
        let mut writer = CsvWriterBuilder::new().with_header(true).build(&mut out);
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            writer.write(batch).map_err(ApiError::internal)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use axum::http::HeaderValue;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("a"), Some("b,c")])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_three_formats_carry_the_same_rows() {
        let b = [batch()];
        assert_eq!(
            String::from_utf8(json_array(&b).unwrap()).unwrap(),
            r#"[{"id":"a","amount":1.5},{"id":"b,c","amount":null}]"#
        );
        assert_eq!(
            String::from_utf8(ndjson(&b).unwrap()).unwrap(),
            "{\"id\":\"a\",\"amount\":1.5}\n{\"id\":\"b,c\",\"amount\":null}\n"
        );
        assert_eq!(
            String::from_utf8(csv(&b, &[]).unwrap()).unwrap(),
            "id,amount\na,1.5\n\"b,c\",\n"
        );
        assert_eq!(json_array(&[]).unwrap(), b"[]");
        assert_eq!(
            csv(&[], &["id".into(), "amount".into()]).unwrap(),
            b"id,amount\n"
        );
    }

    #[test]
    fn the_format_follows_accept() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::from_headers(&h), Format::Json);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/csv;q=0.9, */*"),
        );
        assert_eq!(Format::from_headers(&h), Format::Csv);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert_eq!(Format::from_headers(&h), Format::Ndjson);
    }
}
