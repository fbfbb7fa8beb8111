//! The lake sink: stream topics into `data_lake/<TOPIC>/ingestion_date=…/`
//! as Parquet, exactly once (SYSTEM.md section 4).
//!
//! Per owned partition it keeps one open chunk: records staged as JSON,
//! encoded into a Parquet file under a temporary name in batches, and on
//! rotation (size, record count, idle time, age, date change, shutdown) the
//! chunk's dead letters are published, then its data file, whose name is
//! the offset range. The data file's rename is the commit point.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use lakehouse::lake::{self, OffsetRange};
use lakehouse::topics::SourcePosition;
use parquet::file::properties::WriterProperties;

use super::encode::{Origin, Rejected, Staged};
use super::files::{self, DataFile};
use super::lock::PartitionLock;
use super::recovery::recover;
use super::schema::LandedTopic;
use crate::sink::{Assigned, Position, Record, Sink, SinkError, TopicPartition};

/// How files are written and rotated.
#[derive(Debug, Clone)]
pub struct LakeSinkConfig {
    pub lake_root: PathBuf,
    pub writer_properties: WriterProperties,
    /// Rotate a file when it holds this many records...
    pub max_file_records: u64,
    /// ...or reaches this size (bytes written plus the row group in memory)...
    pub max_file_bytes: u64,
    /// ...or its partition received nothing for this long...
    pub idle_timeout: Duration,
    /// ...or it has been open this long.
    pub max_file_age: Duration,
    /// Records staged as JSON before they are encoded into the open file.
    pub encode_batch_records: usize,
    /// Memory for staged records and row groups across partitions; beyond it
    /// the runner stops consuming and files are rotated.
    pub memory_budget_bytes: usize,
    /// How long to wait for another instance to let go of a partition.
    pub lock_timeout: Duration,
    /// The wall clock giving each record its ingestion time and date folder;
    /// benchmarks and tests set an earlier one to build a lake of many days.
    pub clock: fn() -> DateTime<Utc>,
}

impl LakeSinkConfig {
    pub fn new(lake_root: impl Into<PathBuf>, writer_properties: WriterProperties) -> Self {
        Self {
            lake_root: lake_root.into(),
            writer_properties,
            max_file_records: 1_000_000,
            max_file_bytes: 128 << 20,
            idle_timeout: Duration::from_secs(2),
            max_file_age: Duration::from_secs(10),
            encode_batch_records: 8192,
            memory_budget_bytes: 512 << 20,
            // Below the runner's poll interval limit (30 s by default): the wait happens
            // inside a rebalance callback.
            lock_timeout: Duration::from_secs(20),
            clock: Utc::now,
        }
    }
}

/// Live counters of the lake sink.
#[derive(Debug, Default)]
pub struct LakeSinkStats {
    pub landed_rows: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub replays_dropped: AtomicU64,
    pub files_written: AtomicU64,
    pub bytes_written: AtomicU64,
}

struct Chunk {
    first_offset: i64,
    last_offset: i64,
    date: NaiveDate,
    opened_at: Instant,
    last_record_at: Instant,
    staged: Staged,
    file: Option<DataFile>,
    dead_letters: Vec<Vec<u8>>,
    replays_dropped: u64,
}

struct OwnedPartition {
    topic: usize,
    partition: i32,
    _lock: PartitionLock,
    /// Highest source offset seen per source partition, including the open chunk.
    source_high_water_marks: BTreeMap<String, i64>,
    chunk: Option<Chunk>,
}

pub struct LakeSink {
    config: LakeSinkConfig,
    topics: Vec<LandedTopic>,
    topic_index: HashMap<String, usize>,
    owned: HashMap<(usize, i32), OwnedPartition>,
    stats: Arc<LakeSinkStats>,
}

impl LakeSink {
    pub fn new(
        config: LakeSinkConfig,
        topics: Vec<LandedTopic>,
        stats: Arc<LakeSinkStats>,
    ) -> Self {
        let topic_index = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.topic.clone(), i))
            .collect();
        Self {
            config,
            topics,
            topic_index,
            owned: HashMap::new(),
            stats,
        }
    }

    fn buffered_bytes(&self) -> usize {
        self.owned
            .values()
            .filter_map(|p| p.chunk.as_ref())
            .map(|c| c.staged.bytes() + c.file.as_ref().map_or(0, DataFile::buffered_bytes))
            .sum()
    }

    /// Encodes a chunk's staged records into its data file.
    fn encode_staged(
        topic: &LandedTopic,
        partition: i32,
        chunk: &mut Chunk,
        config: &LakeSinkConfig,
    ) -> Result<(), SinkError> {
        let batch = chunk.staged.encode(topic, partition).map_err(|e| {
            SinkError::Storage(format!("cannot encode {}[{partition}]: {e}", topic.topic))
        })?;
        if let Some(batch) = batch {
            match &mut chunk.file {
                Some(file) => file.write(&batch)?,
                None => {
                    let dir = lake::topic_dir(&config.lake_root, &topic.topic)
                        .join(lake::partition_dir_name(chunk.date));
                    chunk.file = Some(DataFile::create(
                        &dir,
                        partition,
                        chunk.first_offset,
                        &batch,
                        &config.writer_properties,
                    )?);
                }
            }
        }
        Ok(())
    }

    /// Publishes a partition's chunk and returns its new position.
    fn rotate(&mut self, key: (usize, i32)) -> Result<Option<Position>, SinkError> {
        let owned = self
            .owned
            .get_mut(&key)
            .expect("rotating an owned partition");
        let Some(mut chunk) = owned.chunk.take() else {
            return Ok(None);
        };
        let topic = &self.topics[owned.topic];
        Self::encode_staged(topic, owned.partition, &mut chunk, &self.config)?;
        let range = OffsetRange {
            partition: owned.partition,
            first: chunk.first_offset,
            last: chunk.last_offset,
        };
        let date_dir = lake::partition_dir_name(chunk.date);
        // Dead letters first: the data file's rename is the commit point, and
        // recovery removes dead-letter files beyond the last data file.
        if !chunk.dead_letters.is_empty() {
            let dir = lake::dlq_topic_dir(&self.config.lake_root, &topic.topic).join(&date_dir);
            files::write_dlq_file(&dir, range, &chunk.dead_letters)?;
        }
        if let Some(file) = chunk.file {
            let rows = file.rows();
            let high_water_marks = serde_json::to_string(&owned.source_high_water_marks)
                .expect("a map of numbers serialises");
            let metadata = vec![
                (files::META_SOURCE_HWM.to_string(), high_water_marks),
                (
                    files::META_FIRST_OFFSET.to_string(),
                    range.first.to_string(),
                ),
                (files::META_LAST_OFFSET.to_string(), range.last.to_string()),
                (
                    files::META_DEAD_LETTERED.to_string(),
                    chunk.dead_letters.len().to_string(),
                ),
                (
                    files::META_REPLAYS_DROPPED.to_string(),
                    chunk.replays_dropped.to_string(),
                ),
            ];
            let path = file.finish(range, metadata)?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            self.stats.landed_rows.fetch_add(rows, Ordering::Relaxed);
            self.stats.files_written.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes_written.fetch_add(bytes, Ordering::Relaxed);
            tracing::debug!("landed {rows} rows in {}", path.display());
        }
        Ok(Some(Position {
            partition: TopicPartition::new(&topic.topic, owned.partition),
            next_offset: range.last + 1,
        }))
    }

    fn is_due(&self, chunk: &Chunk, now: Instant) -> bool {
        let records = chunk.file.as_ref().map_or(0, DataFile::rows) + chunk.staged.len() as u64;
        records >= self.config.max_file_records
            || chunk
                .file
                .as_ref()
                .is_some_and(|f| f.bytes() as u64 >= self.config.max_file_bytes)
            || now.duration_since(chunk.last_record_at) >= self.config.idle_timeout
            || now.duration_since(chunk.opened_at) >= self.config.max_file_age
    }
}

impl Sink for LakeSink {
    fn topics(&self) -> Vec<String> {
        self.topics.iter().map(|t| t.topic.clone()).collect()
    }

    fn open(
        &mut self,
        partitions: &[Assigned],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, SinkError> {
        let mut resume = Vec::new();
        for assigned in partitions {
            let tp = &assigned.partition;
            let Some(&topic) = self.topic_index.get(&tp.topic) else {
                continue;
            };
            let lock =
                PartitionLock::acquire(&self.config.lake_root, tp, self.config.lock_timeout)?;
            let recovered = recover(
                &self.config.lake_root,
                &tp.topic,
                tp.partition,
                assigned.committed,
            )?;
            for path in &recovered.removed {
                tracing::info!(path = %path.display(), "removed a file left by an interrupted writer");
            }
            self.owned.insert(
                (topic, tp.partition),
                OwnedPartition {
                    topic,
                    partition: tp.partition,
                    _lock: lock,
                    source_high_water_marks: recovered
                        .source_high_water_marks
                        .into_iter()
                        .collect(),
                    chunk: None,
                },
            );
            resume.push((tp.clone(), recovered.next_offset));
        }
        Ok(resume)
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        let Some(&topic_index) = self.topic_index.get(record.topic) else {
            return Ok(());
        };
        let key = (topic_index, record.partition);
        let Some(owned) = self.owned.get_mut(&key) else {
            // A record fetched before its partition was revoked.
            return Ok(());
        };
        let now = Instant::now();
        // One clock read per record gives both the lineage time and the date folder.
        let ingested = (self.config.clock)();
        let ingestion_us = ingested.timestamp_micros();
        let today = ingested.date_naive();
        if owned.chunk.as_ref().is_some_and(|c| c.date != today) {
            self.rotate(key)?;
        }
        let owned = self.owned.get_mut(&key).expect("still owned");
        let topic = &self.topics[topic_index];
        let chunk = match &mut owned.chunk {
            Some(chunk) => chunk,
            empty => empty.insert(Chunk {
                first_offset: record.offset,
                last_offset: record.offset,
                date: today,
                opened_at: now,
                last_record_at: now,
                staged: Staged::new(topic)
                    .map_err(|e| SinkError::Storage(format!("cannot land {}: {e}", topic.topic)))?,
                file: None,
                dead_letters: Vec::new(),
                replays_dropped: 0,
            }),
        };
        chunk.last_offset = record.offset;
        chunk.last_record_at = now;

        if let Some((source_partition, source_offset)) =
            record.source.and_then(SourcePosition::partition_and_offset)
        {
            let marks = &mut owned.source_high_water_marks;
            // Looked up before inserting: the key is allocated once per source partition.
            let mark = match marks.get_mut(source_partition) {
                Some(mark) => mark,
                None => marks.entry(source_partition.to_string()).or_insert(-1),
            };
            if source_offset <= *mark {
                // A replay from a restarted stream SQL engine: its original already landed.
                chunk.replays_dropped += 1;
                self.stats.replays_dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            *mark = source_offset;
        }
        let refuse = |reason| Rejected {
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            value: record.value.unwrap_or_default().to_vec(),
            reason,
        };
        let origin = Origin {
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            ingestion_us,
            source: record.source,
        };
        let staged = match (record.value, topic.validation) {
            (None, _) => Err(refuse(
                "null value (a tombstone) in a stream topic".to_string(),
            )),
            (Some(value), _) => chunk.staged.push(value, origin),
        };
        match staged {
            Ok(()) => {
                if chunk.staged.len() >= self.config.encode_batch_records {
                    Self::encode_staged(topic, record.partition, chunk, &self.config)?;
                }
            }
            Err(rejected) => {
                chunk.dead_letters.push(dead_letter_line(
                    &topic.topic,
                    record.partition,
                    &rejected,
                ));
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn flush(&mut self, now: Instant, force: bool) -> Result<Vec<Position>, SinkError> {
        let due: Vec<(usize, i32)> = self
            .owned
            .iter()
            .filter(|(_, p)| {
                p.chunk
                    .as_ref()
                    .is_some_and(|c| force || self.is_due(c, now))
            })
            .map(|(k, _)| *k)
            .collect();
        let mut positions = Vec::new();
        for key in due {
            positions.extend(self.rotate(key)?);
        }
        Ok(positions)
    }

    fn close(&mut self, partitions: &[TopicPartition]) -> Result<Vec<Position>, SinkError> {
        let mut positions = Vec::new();
        for tp in partitions {
            let Some(&topic) = self.topic_index.get(&tp.topic) else {
                continue;
            };
            let key = (topic, tp.partition);
            if self.owned.contains_key(&key) {
                positions.extend(self.rotate(key)?);
                self.owned.remove(&key);
            }
        }
        Ok(positions)
    }

    fn is_full(&self) -> bool {
        self.buffered_bytes() >= self.config.memory_budget_bytes
    }

    fn is_owned_elsewhere(&self, partition: &TopicPartition) -> Option<bool> {
        super::lock::is_owned(&self.config.lake_root, partition)
            .inspect_err(|e| tracing::debug!("cannot probe the owner of {partition}: {e}"))
            .ok()
    }
}

/// One line of a dead-letter file: the origin, the reason and the raw bytes.
fn dead_letter_line(topic: &str, partition: i32, rejected: &Rejected) -> Vec<u8> {
    let line = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": rejected.offset,
        "timestamp_ms": rejected.timestamp_ms,
        "dead_lettered_at": Utc::now().to_rfc3339(),
        "reason": rejected.reason,
        "value_base64": base64::engine::general_purpose::STANDARD.encode(&rejected.value),
        "value_utf8": std::str::from_utf8(&rejected.value).ok(),
    });
    serde_json::to_vec(&line).expect("a JSON value serialises")
}
