//! The broker side of a re-push: sending marked records, and finding the
//! job's records the broker holds (what a crash left unrecorded). Sends are
//! never retried by the client (a retried send that had landed would be a
//! duplicate, the idempotent producer not being relied on, BROKER.md): a
//! failed send is settled by looking at the topic before sending again.

use std::collections::BTreeMap;
use std::time::Duration;

use lakehouse::kafka::client_config;
use lakehouse::kafka::KafkaError;
use lakehouse::topics::{SourcePosition, REPUSH_HEADER, REPUSH_SOURCE_HEADER};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::store::PartitionOffsets;

/// How long one send may take before it counts as failed (and is settled
/// by looking at the topic).
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Sender {
    producer: FutureProducer,
    bootstrap: String,
}

/// A record the broker holds for a job: where it was read, where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub source: (i32, i64),
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub value: Option<Vec<u8>>,
}

impl Sender {
    pub fn new(bootstrap: &str) -> Result<Self, ClientError> {
        let producer = client_config(bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("message.send.max.retries", "0")
            .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
            .set("linger.ms", "5")
            .create()?;
        Ok(Self {
            producer,
            bootstrap: bootstrap.to_string(),
        })
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Sends one record marked with the job and its origin; where it landed.
    pub async fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        payload: &[u8],
        job: &str,
        source: (i32, i64),
    ) -> Result<(i32, i64), ClientError> {
        let origin = SourcePosition::new(topic, source.0, source.1).to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: REPUSH_HEADER,
                value: Some(job),
            })
            .insert(Header {
                key: REPUSH_SOURCE_HEADER,
                value: Some(origin.as_str()),
            });
        let mut record: FutureRecord<'_, (), [u8]> =
            FutureRecord::to(topic).payload(payload).headers(headers);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.producer
            .send(record, SEND_TIMEOUT)
            .await
            .map_err(|(e, _)| e)
    }

    pub fn flush(&self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

/// The topic's partition count and high watermarks (blocking).
pub fn high_watermarks(bootstrap: &str, topic: &str) -> Result<PartitionOffsets, KafkaError> {
    Ok(lakehouse::kafka::watermarks(bootstrap, topic)?
        .into_iter()
        .map(|(partition, _, high)| (partition, high))
        .collect())
}

/// The job's records in `topic` from `from` (per partition) to the high
/// watermarks as they are now (blocking).
pub fn find_sent(
    bootstrap: &str,
    topic: &str,
    job: &str,
    from: &PartitionOffsets,
) -> Result<Vec<Found>, KafkaError> {
    let ends = high_watermarks(bootstrap, topic)?;
    let todo: BTreeMap<i32, (i64, i64)> = from
        .iter()
        .filter_map(|(p, start)| {
            let end = *ends.get(p)?;
            (end > *start).then_some((*p, (*start, end)))
        })
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "lakehouse-api-repush-scan")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for (partition, (start, _)) in &todo {
        assignment.add_partition_offset(topic, *partition, Offset::Offset(*start))?;
    }
    consumer.assign(&assignment)?;
    let mut reached: BTreeMap<i32, i64> = todo.iter().map(|(p, (s, _))| (*p, *s)).collect();
    let mut found = Vec::new();
    let started = std::time::Instant::now();
    while todo.iter().any(|(p, (_, end))| reached[p] < *end) {
        if started.elapsed() > Duration::from_secs(300) {
            return Err(ClientError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            )
            .into());
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        reached.insert(message.partition(), message.offset() + 1);
        let Some(headers) = message.headers() else {
            continue;
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        if header(REPUSH_HEADER) != Some(job) {
            continue;
        }
        let Some(source) = header(REPUSH_SOURCE_HEADER).and_then(SourcePosition::parse) else {
            continue;
        };
        found.push(Found {
            source: (source.partition, source.offset),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            value: message.payload().map(<[u8]>::to_vec),
        });
    }
    Ok(found)
}
