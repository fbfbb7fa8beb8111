//! Landing records in the lake without a broker: the sink's own write path
//! (files, lineage columns, footers, rotation) driven from memory. The
//! API's tests and benchmark build lakes of known content with it, and of
//! many days by setting the sink's clock back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use super::schema::LandedTopic;
use super::sink::{LakeSink, LakeSinkConfig, LakeSinkStats};
use crate::sink::{Assigned, Record, Sink, SinkError, TopicPartition};

/// One record as a consumer would have read it.
#[derive(Debug, Clone)]
pub struct OfflineRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub value: Vec<u8>,
    /// `x-lakehouse-source` of a derived record.
    pub source: Option<String>,
}

/// Lands `records` (each partition's offsets increasing, past what the lake
/// already holds) and closes every file; returns the sink's counters.
pub fn land(
    config: LakeSinkConfig,
    topics: Vec<LandedTopic>,
    records: &[OfflineRecord],
) -> Result<Arc<LakeSinkStats>, SinkError> {
    let stats = Arc::new(LakeSinkStats::default());
    let mut sink = LakeSink::new(config, topics, Arc::clone(&stats));
    let partitions: BTreeSet<(&str, i32)> = records
        .iter()
        .map(|r| (r.topic.as_str(), r.partition))
        .collect();
    let assigned: Vec<Assigned> = partitions
        .into_iter()
        .map(|(topic, partition)| Assigned {
            partition: TopicPartition::new(topic, partition),
            committed: None,
        })
        .collect();
    sink.open(&assigned)?;
    for record in records {
        sink.write(&Record {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: Some(record.timestamp_ms),
            key: None,
            value: Some(&record.value),
            source: record.source.as_deref(),
        })?;
        if sink.is_full() {
            sink.flush(Instant::now(), true)?;
        }
    }
    sink.flush(Instant::now(), true)?;
    let all: Vec<TopicPartition> = assigned.into_iter().map(|a| a.partition).collect();
    sink.close(&all)?;
    Ok(stats)
}
