//! The sink abstraction shared by the lake sink and the warehouse sink, in
//! the spirit of Kafka Connect's sink tasks: the [`runner`] consumes batches
//! from Kafka; a [`Sink`] stages records, makes them durable, and reports the
//! positions that are durable; the runner then commits those positions to
//! the consumer group.
//!
//! The sink's own storage, not the group's offsets, is the truth about what
//! has landed: on assignment the sink says where each partition resumes
//! ([`Sink::open`]), so a crash between a durable write and the offset commit
//! neither loses nor repeats a record.

pub mod group_watch;
pub mod latency;
pub mod runner;

use std::fmt;
use std::time::Instant;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// A consumed record, borrowed from the consumer for the duration of [`Sink::write`].
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Kafka record timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The `x-lakehouse-source` header (`topic:partition:offset`) of records
    /// derived by stream SQL: where the record came from, to recognise replays.
    pub source: Option<&'a str>,
}

/// Where a partition's consumption resumes: the next offset to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub partition: TopicPartition,
    pub next_offset: i64,
}

/// A partition handed to [`Sink::open`], with the group's committed offset
/// (advisory: the sink's own storage decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub partition: TopicPartition,
    pub committed: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Storage(String),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The destination cannot take the statement file's schema (a changed
    /// key or column type): no restart fixes it.
    #[error("{0}")]
    Schema(String),
}

impl SinkError {
    /// Whether retrying cannot help: the error is in the configuration or the
    /// schema, not in a slow or absent dependency.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SinkError::Schema(_))
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SinkError {
        let context = context.into();
        move |source| SinkError::Io { context, source }
    }
}

/// A destination that lands consumed records durably.
pub trait Sink: Send {
    /// The topics to consume.
    fn topics(&self) -> Vec<String>;

    /// Takes ownership of newly assigned partitions and returns where each
    /// resumes (`None`: from the beginning of the partition). The sink may
    /// block here until a previous owner has let go.
    fn open(
        &mut self,
        partitions: &[Assigned],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, SinkError>;

    /// Stages one record of an open partition. Records of a partition arrive in offset order.
    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError>;

    /// Makes durable what is due at `now` (everything when `force`), and
    /// returns the positions that became durable.
    fn flush(&mut self, now: Instant, force: bool) -> Result<Vec<Position>, SinkError>;

    /// Partitions leaving this instance: makes their staged records durable,
    /// lets go of them, and returns their final positions.
    fn close(&mut self, partitions: &[TopicPartition]) -> Result<Vec<Position>, SinkError>;

    /// True when staged data reached the sink's memory budget: the runner
    /// stops consuming and forces a flush (backpressure, not unbounded buffering).
    fn is_full(&self) -> bool;

    /// Whether a live instance of this sink owns `partition` now, when the
    /// sink's storage can tell (`None` otherwise). The runner uses it to
    /// notice partitions the group left without a live owner.
    fn is_owned_elsewhere(&self, partition: &TopicPartition) -> Option<bool> {
        let _ = partition;
        None
    }
}
