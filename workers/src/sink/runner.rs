//! Runs a [`Sink`]: one consumer in a group, records handed to the sink in
//! order, periodic flushes, offsets committed after each durable flush, and
//! partitions opened and closed through the sink on every rebalance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use lakehouse_streamsql::SOURCE_HEADER;

use super::group_watch::GroupWatch;
use super::latency::{LatencyWindow, PendingLatencies};
use super::{Assigned, Position, Record, Sink, SinkError, TopicPartition};

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub bootstrap: String,
    pub group_id: String,
    /// How often the sink is asked to flush what is due.
    pub flush_check: Duration,
    /// Offsets are committed to the group at most this often (they are
    /// advisory: lag monitoring and a head start; the sink's storage decides).
    pub commit_interval: Duration,
    /// How partitions are shared between instances.
    pub assignment: Assignment,
    /// How long a silent member keeps its partitions; heartbeats go at a quarter of it.
    pub session_timeout: Duration,
    /// Extra librdkafka settings (e.g. a shorter session timeout in tests).
    pub client_overrides: Vec<(String, String)>,
}

impl RunnerConfig {
    pub fn new(bootstrap: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            flush_check: Duration::from_millis(200),
            commit_interval: Duration::from_secs(1),
            assignment: Assignment::Group,
            session_timeout: Duration::from_secs(10),
            client_overrides: Vec::new(),
        }
    }
}

/// How a sink instance gets its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Assignment {
    /// Join the consumer group and take the share it assigns; instances scale out.
    Group,
    /// Read every partition of the sink's topics, without group membership:
    /// no rebalance pauses when an instance restarts. One instance per group.
    AllPartitions,
}

/// Live counters, readable from another thread (status, console, benchmarks).
#[derive(Debug, Default)]
pub struct RunnerStats {
    pub consumed: AtomicU64,
    pub flushes: AtomicU64,
    pub committed_positions: AtomicU64,
    pub rebalances: AtomicU64,
    pub owned_partitions: AtomicU64,
    /// Records in the assigned partitions not yet landed and committed
    /// (from the client's statistics); -1 until known.
    pub lag: AtomicI64,
    /// Record timestamp to durable, of the newest record of the last
    /// flush, in milliseconds; -1 until a flush wrote something.
    pub latency_ms: AtomicI64,
    /// Every record's timestamp to durable, over the last minute.
    pub latencies: LatencyWindow,
}

impl RunnerStats {
    pub fn new() -> Self {
        Self {
            lag: AtomicI64::new(-1),
            latency_ms: AtomicI64::new(-1),
            ..Self::default()
        }
    }

    /// The lag, if known.
    pub fn lag(&self) -> Option<i64> {
        Some(self.lag.load(Ordering::Relaxed)).filter(|l| *l >= 0)
    }

    /// The landing latency, if known.
    pub fn latency_ms(&self) -> Option<i64> {
        Some(self.latency_ms.load(Ordering::Relaxed)).filter(|l| *l >= 0)
    }

    /// The 95th percentile of the last minute's landing latencies, if any landed.
    pub fn latency_p95_ms(&self) -> Option<i64> {
        self.latencies.quantile_ms(0.95)
    }
}

struct SinkContext<S> {
    sink: Arc<Mutex<S>>,
    /// Outlives the consumer: a failure while leaving the group still reaches the loop.
    failure: Arc<Mutex<Option<SinkError>>>,
    stats: Arc<RunnerStats>,
}

impl<S> SinkContext<S> {
    fn fail(&self, error: SinkError) {
        tracing::error!(%error, "sink failed during a rebalance");
        let mut failure = lock(&self.failure);
        failure.get_or_insert(error);
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock aborts the worker anyway; keep going with the data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: Sink> ClientContext for SinkContext<S> {
    /// The client's statistics (every `statistics.interval.ms`): the lag
    /// of the partitions it fetches, summed: the high watermark minus the
    /// committed offset (minus the position before a first commit, the
    /// low watermark before a first read; an empty partition has none).
    fn stats(&self, statistics: Statistics) {
        let lags: Vec<i64> = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.desired && p.hi_offset >= 0)
            .filter_map(|p| {
                let from = [p.committed_offset, p.app_offset, p.lo_offset]
                    .into_iter()
                    .find(|o| *o >= 0)?;
                Some((p.hi_offset - from).max(0))
            })
            .collect();
        if !lags.is_empty() {
            self.stats.lag.store(lags.iter().sum(), Ordering::Relaxed);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "{facility}: {message}")
            }
        }
    }
}

impl<S: Sink> ConsumerContext for SinkContext<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = self.assign(consumer, tpl) {
                    self.fail(e);
                    // Own nothing rather than write from unknown positions.
                    let _ = consumer.unassign();
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions = partitions_of(tpl);
                match lock(&self.sink).close(&partitions) {
                    Ok(positions) => {
                        let mut pending = PendingCommits::new();
                        record(&mut pending, positions);
                        commit(consumer, &pending, CommitMode::Sync)
                    }
                    Err(e) => self.fail(e),
                }
                self.stats.owned_partitions.store(0, Ordering::Relaxed);
                let _ = consumer.unassign();
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error; releasing partitions");
                let partitions = partitions_of(tpl);
                if let Err(e) = lock(&self.sink).close(&partitions) {
                    self.fail(e);
                }
                let _ = consumer.unassign();
            }
        }
    }
}

impl<S: Sink> SinkContext<S> {
    fn assign(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) -> Result<(), SinkError> {
        let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(30))?;
        let assigned: Vec<Assigned> = committed
            .elements()
            .iter()
            .map(|e| Assigned {
                partition: TopicPartition::new(e.topic(), e.partition()),
                committed: match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                },
            })
            .collect();
        let resume = lock(&self.sink).open(&assigned)?;
        for (partition, next) in &resume {
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            tpl.set_partition_offset(&partition.topic, partition.partition, offset)?;
            tracing::debug!(%partition, ?offset, "resuming");
        }
        self.stats
            .owned_partitions
            .store(resume.len() as u64, Ordering::Relaxed);
        consumer.assign(tpl)?;
        Ok(())
    }
}

pub(super) fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

/// The latest durable position per partition, not yet committed to the group.
type PendingCommits = BTreeMap<TopicPartition, i64>;

fn record(pending: &mut PendingCommits, positions: Vec<Position>) {
    for p in positions {
        pending.insert(p.partition, p.next_offset);
    }
}

fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    pending: &PendingCommits,
    mode: CommitMode,
) {
    if pending.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, next_offset) in pending {
        let _ = tpl.add_partition_offset(
            &partition.topic,
            partition.partition,
            Offset::Offset(*next_offset),
        );
    }
    // Advisory only: the sink's storage is the truth, so a failed commit costs a re-read, not data.
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::debug!("offset commit failed (positions stay durable in the sink): {e}");
    }
}

/// Waits until every topic exists (stream SQL creates its output topics when
/// it starts); a subscription to a missing topic would only notice it at the
/// next metadata refresh, minutes later. `false` when stopped while waiting.
fn wait_for_topics(
    bootstrap: &str,
    topics: &[String],
    stop: &AtomicBool,
) -> Result<bool, SinkError> {
    let mut last_report: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let existing = match lakehouse::kafka::existing_topics(bootstrap) {
            Ok(existing) => existing,
            Err(lakehouse::kafka::KafkaError::Client(e)) => {
                tracing::warn!(error = %e, "cannot list topics (retrying)");
                Vec::new()
            }
            Err(e) => return Err(SinkError::Storage(e.to_string())),
        };
        let missing: Vec<&String> = topics.iter().filter(|t| !existing.contains(t)).collect();
        if missing.is_empty() {
            return Ok(true);
        }
        if last_report.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
            tracing::info!(?missing, "waiting for topics to be created");
            last_report = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(false)
}

/// A consumer of the sink's topics, subscribed to the group or assigned every partition.
fn connect<S: Sink>(
    config: &RunnerConfig,
    topics: &[String],
    context: SinkContext<S>,
) -> Result<BaseConsumer<SinkContext<S>>, SinkError> {
    let mut client = lakehouse::kafka::client_config(&config.bootstrap);
    client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        // A quiet topic's fetch returns after this long: part of the
        // produce-to-queryable latency (librdkafka's default is 500 ms).
        .set("fetch.wait.max.ms", "100")
        // Statistics carry the consumer lag (see SinkContext::stats).
        .set("statistics.interval.ms", "2000")
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout.as_millis() / 4).max(1).to_string(),
        )
        // Also the rebalance timeout: how long a rebalance waits for members that
        // died without leaving. The loop polls continuously, so it can be short.
        .set(
            "max.poll.interval.ms",
            (config.session_timeout.as_millis() * 3)
                .max(10_000)
                .to_string(),
        );
    // librdkafka's own diagnostics (e.g. `cgrp` for group membership), into the worker's log.
    if let Ok(contexts) = std::env::var("LAKEHOUSE_KAFKA_DEBUG") {
        client.set("debug", contexts).set("log_level", "7");
    }
    for (k, v) in &config.client_overrides {
        client.set(k, v);
    }
    let consumer: BaseConsumer<SinkContext<S>> = client.create_with_context(context)?;
    match config.assignment {
        Assignment::Group => {
            let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer.subscribe(&topic_refs)?;
        }
        Assignment::AllPartitions => {
            let mut tpl = TopicPartitionList::new();
            for topic in topics {
                let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
                for t in metadata.topics() {
                    for p in t.partitions() {
                        tpl.add_partition(t.name(), p.id());
                    }
                }
            }
            // The same path as a group assignment, without a group to join.
            consumer.context().assign(&consumer, &mut tpl)?;
        }
    }
    Ok(consumer)
}

/// The group watch looks at most this often (it asks the broker for metadata).
const MIN_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Consumes the sink's topics until `stop` is set, then flushes everything
/// and commits. Returns on the first storage error.
pub fn run<S: Sink + 'static>(
    sink: S,
    config: &RunnerConfig,
    stop: &AtomicBool,
    stats: Arc<RunnerStats>,
) -> Result<(), SinkError> {
    let topics = sink.topics();
    if !wait_for_topics(&config.bootstrap, &topics, stop)? {
        return Ok(());
    }
    let sink = Arc::new(Mutex::new(sink));
    let failure = Arc::new(Mutex::new(None));
    let new_consumer = || {
        let context = SinkContext {
            sink: Arc::clone(&sink),
            failure: Arc::clone(&failure),
            stats: Arc::clone(&stats),
        };
        connect(config, &topics, context)
    };
    let mut consumer = new_consumer()?;
    tracing::info!(
        "consuming {} topics as group {}",
        topics.len(),
        config.group_id
    );
    let mut watch = (config.assignment == Assignment::Group)
        .then(|| GroupWatch::new(&topics, config.session_timeout.max(MIN_WATCH_INTERVAL)));

    let mut last_flush_check = Instant::now();
    // The newest record timestamp written since the last durable flush.
    let mut newest_written: Option<i64> = None;
    let mut not_yet_durable = PendingLatencies::default();
    let mut pending_commit = PendingCommits::new();
    let mut last_commit = Instant::now();
    let mut paused = false;
    let result = loop {
        if let Some(e) = lock(&failure).take() {
            break Err(e);
        }
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if watch
            .as_mut()
            .is_some_and(|w| w.should_rejoin(&consumer, &sink))
        {
            tracing::warn!(
                "group {} left partitions without a live owner; leaving and rejoining",
                config.group_id
            );
            if let Err(e) = flush_and_commit(&consumer, &sink, &mut pending_commit) {
                break Err(e);
            }
            // Dropping the consumer leaves the group (its partitions are revoked first).
            drop(consumer);
            consumer = new_consumer()?;
            paused = false;
            continue;
        }
        let full = lock(&sink).is_full();
        if full || last_flush_check.elapsed() >= config.flush_check {
            last_flush_check = Instant::now();
            match lock(&sink).flush(Instant::now(), full) {
                Ok(positions) => {
                    if !positions.is_empty() {
                        let now = chrono::Utc::now().timestamp_millis();
                        not_yet_durable.durable(&positions, now, &stats.latencies);
                        if let Some(newest) = newest_written.take() {
                            stats
                                .latency_ms
                                .store((now - newest).max(0), Ordering::Relaxed);
                        }
                        stats.flushes.fetch_add(1, Ordering::Relaxed);
                        stats
                            .committed_positions
                            .fetch_add(positions.len() as u64, Ordering::Relaxed);
                    }
                    record(&mut pending_commit, positions);
                    if !pending_commit.is_empty() && last_commit.elapsed() >= config.commit_interval
                    {
                        commit(
                            &consumer,
                            &std::mem::take(&mut pending_commit),
                            CommitMode::Async,
                        );
                        last_commit = Instant::now();
                    }
                }
                Err(e) => break Err(e),
            }
            // Backpressure: while the sink cannot take more, fetching pauses but
            // polling goes on, so that the group still sees this member alive.
            let still_full = lock(&sink).is_full();
            if still_full != paused {
                if let Ok(assignment) = consumer.assignment() {
                    let _ = if still_full {
                        consumer.pause(&assignment)
                    } else {
                        consumer.resume(&assignment)
                    };
                }
                paused = still_full;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => tracing::warn!(error = %e, "consume error (retrying)"),
            Some(Ok(message)) => {
                let source = message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|h| h.key == SOURCE_HEADER)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                });
                let record = Record {
                    topic: message.topic(),
                    partition: message.partition(),
                    offset: message.offset(),
                    timestamp_ms: message.timestamp().to_millis(),
                    key: message.key(),
                    value: message.payload(),
                    source,
                };
                if let Err(e) = lock(&sink).write(&record) {
                    break Err(e);
                }
                if let Some(ts) = record.timestamp_ms {
                    newest_written = Some(newest_written.map_or(ts, |n| n.max(ts)));
                    not_yet_durable.taken(record.topic, record.partition, record.offset, ts);
                }
                stats.consumed.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    if result.is_ok() {
        // Graceful stop: everything staged becomes durable before leaving the group.
        flush_and_commit(&consumer, &sink, &mut pending_commit)?;
    }
    drop(consumer);
    result.and_then(|()| lock(&failure).take().map_or(Ok(()), Err))
}

/// Makes everything staged durable and commits every durable position.
fn flush_and_commit<S: Sink, C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    sink: &Mutex<S>,
    pending: &mut PendingCommits,
) -> Result<(), SinkError> {
    record(pending, lock(sink).flush(Instant::now(), true)?);
    commit(consumer, &std::mem::take(pending), CommitMode::Sync);
    Ok(())
}
