//! Records of one partition staged for the open file: their values decoded
//! into Arrow columns as they arrive, their lineage beside them, and on a
//! source topic their JSON as received. A value that does not fit the schema
//! is refused on arrival with the reason, so a batch always encodes whole.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray,
};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::ArrowError;

use super::json_columns::JsonColumns;
use super::schema::{LandedTopic, Validation};

/// Records of one partition waiting to be encoded.
#[derive(Debug)]
pub struct Staged {
    values: JsonColumns,
    /// A source topic: each value is also kept as received.
    keeps_raw_json: bool,
    /// Source topics only: the values as received, back to back, and where each ends.
    raw_json: Vec<u8>,
    raw_ends: Vec<i32>,
    offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    ingestion_us: Vec<i64>,
    sources: Vec<Option<Box<str>>>,
    /// Bytes of JSON staged since the last encode: a measure of the memory held.
    json_bytes: usize,
}

/// Where a staged record came from: its lineage columns.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub offset: i64,
    /// Kafka record timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// When the sink read it, microseconds since the epoch.
    pub ingestion_us: i64,
    /// A derived stream's source position (`topic:partition:offset`); a
    /// source topic keeps its JSON instead.
    pub source: Option<&'a str>,
}

/// A record that did not fit the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub value: Vec<u8>,
    pub reason: String,
}

impl Staged {
    pub fn new(topic: &LandedTopic) -> Result<Self, ArrowError> {
        let mut values = JsonColumns::new(&topic.value_schema)?;
        if topic.validation == Validation::Transaction {
            values.require(&lakehouse::transaction::REQUIRED_FIELDS);
        }
        Ok(Self {
            values,
            keeps_raw_json: topic.is_source,
            raw_json: Vec::new(),
            raw_ends: Vec::new(),
            offsets: Vec::new(),
            timestamps: Vec::new(),
            ingestion_us: Vec::new(),
            sources: Vec::new(),
            json_bytes: 0,
        })
    }

    /// Stages a record, or refuses it when its value does not fit the schema.
    pub fn push(&mut self, value: &[u8], origin: Origin<'_>) -> Result<(), Rejected> {
        let fitted = self.values.push(value);
        self.stage(fitted, value, origin)
    }

    /// The lineage of a record whose values went in (`fitted`), or its refusal.
    fn stage(
        &mut self,
        fitted: Result<(), String>,
        value: &[u8],
        origin: Origin<'_>,
    ) -> Result<(), Rejected> {
        let Origin {
            offset,
            timestamp_ms,
            ingestion_us,
            source,
        } = origin;
        if let Err(e) = fitted {
            return Err(Rejected {
                offset,
                timestamp_ms,
                value: value.to_vec(),
                reason: format!("does not match the stream's schema: {e}"),
            });
        }
        if self.keeps_raw_json {
            self.raw_json.extend_from_slice(value);
            self.raw_ends.push(self.raw_json.len() as i32);
        } else {
            self.sources.push(source.map(Into::into));
        }
        self.offsets.push(offset);
        self.timestamps.push(timestamp_ms);
        self.ingestion_us.push(ingestion_us);
        self.json_bytes += value.len();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Approximate memory held.
    pub fn bytes(&self) -> usize {
        self.json_bytes * 2 + self.offsets.len() * 48
    }

    /// Encodes everything staged and empties the stage.
    pub fn encode(
        &mut self,
        topic: &LandedTopic,
        partition: i32,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        if self.is_empty() {
            return Ok(None);
        }
        let rows = self.len();
        let mut columns: Vec<ArrayRef> = self.values.finish()?;
        if self.keeps_raw_json {
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0);
            offsets.append(&mut self.raw_ends);
            let capacity = self.raw_json.len();
            let json = std::mem::replace(&mut self.raw_json, Vec::with_capacity(capacity));
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            // SAFETY: the offsets rise from 0 to the end of `json`, and every value
            // was checked to be UTF-8 as a whole before it was staged
            // (`JsonColumns::push`; a test below holds it to that).
            let raw = unsafe { StringArray::new_unchecked(offsets, Buffer::from_vec(json), None) };
            columns.push(Arc::new(raw));
        } else {
            columns.push(Arc::new(StringArray::from_iter(
                self.sources.iter().map(|s| s.as_deref()),
            )));
            self.sources.clear();
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(topic.topic.as_str(), rows),
        )));
        columns.push(Arc::new(Int32Array::from(vec![partition; rows])));
        columns.push(Arc::new(Int64Array::from(std::mem::take(
            &mut self.offsets,
        ))));
        columns.push(Arc::new(
            TimestampMillisecondArray::from(std::mem::take(&mut self.timestamps))
                .with_timezone("UTC"),
        ));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(std::mem::take(&mut self.ingestion_us))
                .with_timezone("UTC"),
        ));
        self.json_bytes = 0;
        RecordBatch::try_new(Arc::clone(&topic.file_schema), columns).map(Some)
    }
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

    fn origin(offset: i64, timestamp_ms: Option<i64>, ingestion_us: i64) -> Origin<'static> {
        Origin {
            offset,
            timestamp_ms,
            ingestion_us,
            source: None,
        }
    }

    #[test]
    fn a_batch_encodes_values_and_lineage() {
        let topic = derived_topic();
        let mut staged = Staged::new(&topic).unwrap();
        staged
            .push(
                br#"{"ID":"a","AMOUNT":1.5,"N":1}"#,
                Origin {
                    source: Some("src:0:3"),
                    ..origin(10, Some(1_000), 5)
                },
            )
            .unwrap();
        staged
            .push(br#"{"ID":"b","AMOUNT":null,"N":2}"#, origin(11, None, 6))
            .unwrap();
        let batch = staged.encode(&topic, 2).unwrap().unwrap();
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
    fn records_that_do_not_fit_are_refused_on_arrival() {
        let topic = derived_topic();
        let mut staged = Staged::new(&topic).unwrap();
        let values: [&[u8]; 6] = [
            br#"{"ID":"a","AMOUNT":1.5,"N":1}"#,
            br#"{"ID":"b","AMOUNT":"lots","N":2}"#,
            br#"{"ID":"c","AMOU"#,
            b"42",
            br#"{"ID":"e","AMOUNT":2.0,"N":99999999999}"#,
            br#"{"ID":"f","AMOUNT":3.0,"N":3}"#,
        ];
        let mut refused = Vec::new();
        for (offset, value) in values.into_iter().enumerate() {
            if let Err(r) = staged.push(value, origin(offset as i64 + 1, Some(7), 0)) {
                assert_eq!(r.value, value);
                assert_eq!(r.timestamp_ms, Some(7));
                assert!(r.reason.starts_with("does not match the stream's schema: "));
                refused.push(r.offset);
            }
        }
        assert_eq!(refused, [2, 3, 4, 5]);
        let batch = staged.encode(&topic, 0).unwrap().unwrap();
        let kept = batch
            .column_by_name("kafka_offset")
            .unwrap()
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(kept.values().to_vec(), [1, 6]);
    }

    #[test]
    fn a_source_topic_keeps_each_value_as_received() {
        let plan = lakehouse_streamsql::load(
            "CREATE STREAM s (id VARCHAR) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');",
        )
        .unwrap();
        let topic = landed_topics(&plan).remove(0);
        let mut staged = Staged::new(&topic).unwrap();
        for (offset, value) in [&br#"{"id":"a","more":1}"#[..], b"{}"]
            .into_iter()
            .enumerate()
        {
            staged.push(value, origin(offset as i64, None, 0)).unwrap();
        }
        let not_utf8 = b"{\"id\":\"a\",\"skipped\":\"\xff\"}";
        let refused = staged.push(not_utf8, origin(9, None, 0)).unwrap_err();
        assert!(refused.reason.contains("UTF-8"), "{}", refused.reason);
        for _ in 0..2 {
            let batch = staged.encode(&topic, 0).unwrap().unwrap();
            let raw = batch.column_by_name("raw_json").unwrap().as_string::<i32>();
            assert_eq!(
                (raw.value(0), raw.value(1)),
                (r#"{"id":"a","more":1}"#, "{}")
            );
            staged
                .push(br#"{"id":"a","more":1}"#, origin(2, None, 0))
                .unwrap();
            staged.push(b"{}", origin(3, None, 0)).unwrap();
        }
    }
}
