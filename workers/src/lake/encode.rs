//! JSON values staged per partition, and their encoding into an Arrow
//! record batch with the lineage columns. A batch is decoded in one pass;
//! only when that fails is it decoded record by record to single out the
//! records that do not fit the schema.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray,
};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_json::ReaderBuilder;
use arrow_schema::{ArrowError, SchemaRef};

use super::schema::LandedTopic;

/// Records of one partition waiting to be encoded.
#[derive(Debug, Default)]
pub struct Staged {
    /// The JSON values, back to back (the decoder needs no separator).
    json: Vec<u8>,
    spans: Vec<(usize, usize)>,
    offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    ingestion_us: Vec<i64>,
    sources: Vec<Option<Box<str>>>,
}

/// A staged record that did not fit the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub value: Vec<u8>,
    pub reason: String,
}

impl Staged {
    pub fn push(
        &mut self,
        value: &[u8],
        offset: i64,
        timestamp_ms: Option<i64>,
        ingestion_us: i64,
        source: Option<&str>,
    ) {
        let start = self.json.len();
        self.json.extend_from_slice(value);
        self.spans.push((start, self.json.len()));
        self.offsets.push(offset);
        self.timestamps.push(timestamp_ms);
        self.ingestion_us.push(ingestion_us);
        self.sources.push(source.map(Into::into));
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Approximate memory held.
    pub fn bytes(&self) -> usize {
        self.json.capacity() + self.offsets.len() * 48
    }

    fn value(&self, i: usize) -> &[u8] {
        let (start, end) = self.spans[i];
        &self.json[start..end]
    }

    /// Encodes everything staged and empties the stage.
    pub fn encode(
        &mut self,
        topic: &LandedTopic,
        partition: i32,
    ) -> Result<(Option<RecordBatch>, Vec<Rejected>), ArrowError> {
        if self.is_empty() {
            return Ok((None, Vec::new()));
        }
        let all: Vec<usize> = (0..self.len()).collect();
        let (values, kept, rejected) = match decode(&topic.value_schema, &self.json, self.len()) {
            Ok(batch) => (batch, all, Vec::new()),
            Err(_) => self.decode_one_by_one(&topic.value_schema)?,
        };
        let batch = if kept.is_empty() {
            None
        } else {
            Some(self.with_lineage(topic, partition, values, &kept)?)
        };
        // Buffers are reused: fresh multi-megabyte allocations cost page faults.
        self.json.clear();
        self.spans.clear();
        self.offsets.clear();
        self.timestamps.clear();
        self.ingestion_us.clear();
        self.sources.clear();
        Ok((batch, rejected))
    }

    fn decode_one_by_one(
        &self,
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, Vec<usize>, Vec<Rejected>), ArrowError> {
        let mut kept = Vec::new();
        let mut rejected = Vec::new();
        let mut json = Vec::new();
        for i in 0..self.len() {
            let value = self.value(i);
            match decode(schema, value, 1) {
                Ok(_) => {
                    kept.push(i);
                    json.extend_from_slice(value);
                }
                Err(e) => rejected.push(Rejected {
                    offset: self.offsets[i],
                    timestamp_ms: self.timestamps[i],
                    value: value.to_vec(),
                    reason: format!("does not match the stream's schema: {e}"),
                }),
            }
        }
        let batch = decode(schema, &json, kept.len())?;
        Ok((batch, kept, rejected))
    }

    fn with_lineage(
        &self,
        topic: &LandedTopic,
        partition: i32,
        values: RecordBatch,
        kept: &[usize],
    ) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = values.columns().to_vec();
        let n = kept.len();
        if topic.is_source && n == self.len() {
            // Every value kept: the staged buffer is the column's data as it stands.
            let offsets: Vec<i32> = std::iter::once(0)
                .chain(self.spans.iter().map(|&(_, end)| end as i32))
                .collect();
            let raw = StringArray::try_new(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                Buffer::from_slice_ref(&self.json),
                None,
            )?;
            columns.push(Arc::new(raw));
        } else if topic.is_source {
            let raw = kept
                .iter()
                .map(|&i| std::str::from_utf8(self.value(i)).ok());
            columns.push(Arc::new(StringArray::from_iter(raw)));
        } else {
            let sources = kept.iter().map(|&i| self.sources[i].as_deref());
            columns.push(Arc::new(StringArray::from_iter(sources)));
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(topic.topic.as_str(), n),
        )));
        columns.push(Arc::new(Int32Array::from(vec![partition; n])));
        columns.push(Arc::new(Int64Array::from_iter_values(
            kept.iter().map(|&i| self.offsets[i]),
        )));
        columns.push(Arc::new(
            TimestampMillisecondArray::from_iter(kept.iter().map(|&i| self.timestamps[i]))
                .with_timezone("UTC"),
        ));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from_iter_values(kept.iter().map(|&i| self.ingestion_us[i]))
                .with_timezone("UTC"),
        ));
        RecordBatch::try_new(Arc::clone(&topic.file_schema), columns)
    }
}

/// Decodes newline-separated JSON objects into exactly `expected` rows.
fn decode(schema: &SchemaRef, json: &[u8], expected: usize) -> Result<RecordBatch, ArrowError> {
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(expected.max(1))
        .build_decoder()?;
    let mut rest = json;
    while !rest.is_empty() {
        let read = decoder.decode(rest)?;
        if read == 0 {
            return Err(ArrowError::JsonError(format!(
                "more than {expected} JSON values"
            )));
        }
        rest = &rest[read..];
    }
    let batch = decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema)));
    if batch.num_rows() != expected {
        return Err(ArrowError::JsonError(format!(
            "{} JSON values where {expected} were expected",
            batch.num_rows()
        )));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::schema::landed_topics;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_array::Array;

    fn derived_topic() -> LandedTopic {
        let plan = lakehouse_streamsql::load(
            "CREATE STREAM s (id VARCHAR, amount DOUBLE, n INT) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');
             CREATE STREAM d AS SELECT id, amount, n FROM s EMIT CHANGES;",
        )
        .unwrap();
        landed_topics(&plan).remove(1)
    }

    #[test]
    fn a_batch_encodes_values_and_lineage() {
        let topic = derived_topic();
        let mut staged = Staged::default();
        staged.push(
            br#"{"ID":"a","AMOUNT":1.5,"N":1}"#,
            10,
            Some(1_000),
            5,
            Some("src:0:3"),
        );
        staged.push(br#"{"ID":"b","AMOUNT":null,"N":2}"#, 11, None, 6, None);
        let (batch, rejected) = staged.encode(&topic, 2).unwrap();
        let batch = batch.unwrap();
        assert!(rejected.is_empty());
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), topic.file_schema);
        let amount = batch
            .column_by_name("AMOUNT")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(amount.value(0), 1.5);
        assert!(amount.is_null(1));
        let source = batch
            .column_by_name("source_position")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(source.value(0), "src:0:3");
        assert!(source.is_null(1));
        assert!(staged.is_empty());
    }

    #[test]
    fn records_that_do_not_fit_are_singled_out() {
        let topic = derived_topic();
        let mut staged = Staged::default();
        staged.push(br#"{"ID":"a","AMOUNT":1.5,"N":1}"#, 1, None, 0, None);
        staged.push(br#"{"ID":"b","AMOUNT":"lots","N":2}"#, 2, None, 0, None);
        staged.push(br#"{"ID":"c","AMOU"#, 3, None, 0, None);
        staged.push(b"42", 4, None, 0, None);
        staged.push(
            br#"{"ID":"e","AMOUNT":2.0,"N":99999999999}"#,
            5,
            None,
            0,
            None,
        );
        staged.push(br#"{"ID":"f","AMOUNT":3.0,"N":3}"#, 6, None, 0, None);
        let (batch, rejected) = staged.encode(&topic, 0).unwrap();
        let offsets: Vec<i64> = rejected.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [2, 3, 4, 5]);
        let batch = batch.unwrap();
        let kept = batch
            .column_by_name("kafka_offset")
            .unwrap()
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(kept.values().to_vec(), [1, 6]);
    }
}
