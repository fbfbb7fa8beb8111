//! The engine on Kafka: reads the source topics, writes derived topics and
//! the dead-letter topic, checkpoints state with input positions.
//!
//! Restart safety: outputs are flushed (acknowledged by the broker) before
//! the checkpoint that moves past their input is committed, and state and
//! positions are committed in one SQLite transaction. After a crash the
//! engine resumes from the last checkpoint: table values are recomputed from
//! the checkpointed state, so each key's final value is exact; records
//! between the checkpoint and the crash are emitted again, each carrying
//! its source position (`x-lakehouse-source`) so consumers drop replays.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lakehouse::kafka::{self, client_config, TopicSpec};
use md5::{Digest, Md5};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::engine::{Engine, EngineCounters, InputRecord};
use crate::plan::{Plan, Query};
use crate::SOURCE_HEADER;
use lakehouse::topics::SourcePosition;

/// Most records processed as one batch.
const MAX_BATCH: usize = 2_000;

/// Default name of the dead-letter topic.
pub const DEFAULT_DLQ_TOPIC: &str = "stream_sql_dlq";

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub bootstrap: String,
    /// Consumer group, and the name of the checkpoint file.
    pub app_id: String,
    /// Folder for the checkpoint store.
    pub state_dir: PathBuf,
    pub dlq_topic: String,
    pub checkpoint_interval: Duration,
    pub checkpoint_records: u64,
    /// Forget checkpointed state (when the statement file's tables changed).
    pub reset_state: bool,
    /// Threads for a batch: 2 (the default) or more pipeline decoding and
    /// streams on one thread with the tables on another, ~1.4x one thread in
    /// memory (BENCHMARKS.md); batches of up to 64 records, what a slow input
    /// brings, run on one thread anyway. 1 runs everything in turn.
    pub threads: usize,
}

impl RuntimeConfig {
    pub fn new(bootstrap: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            app_id: "lakehouse_stream_sql".into(),
            state_dir: state_dir.into(),
            dlq_topic: DEFAULT_DLQ_TOPIC.into(),
            checkpoint_interval: Duration::from_millis(500),
            checkpoint_records: 50_000,
            reset_state: false,
            threads: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("source topic {0} does not exist; create it first (lakectl up does)")]
    MissingSource(String),
    #[error(transparent)]
    Kafka(#[from] lakehouse::kafka::KafkaError),
    #[error(transparent)]
    Client(#[from] KafkaError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("delivery to the broker failed ({0}); stopping before the checkpoint so that nothing is lost")]
    Delivery(String),
    #[error("cannot restore the checkpoint: {0}")]
    Restore(String),
}

impl RuntimeError {
    /// Whether retrying cannot help: the checkpoint does not fit the
    /// statement file. Broker and storage trouble is worth waiting out.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            RuntimeError::Restore(_)
                | RuntimeError::Checkpoint(CheckpointError::PlanChanged { .. })
        )
    }
}

/// Live counters, readable while the engine runs.
#[derive(Debug, Default)]
pub struct RuntimeStats {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub dead_letters: AtomicU64,
    pub checkpoints: AtomicU64,
}

struct DeliveryTracker {
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().expect("lock") = Some(e.to_string());
        }
    }
}

/// Where the engine keeps its checkpoints.
pub fn checkpoint_path(config: &RuntimeConfig) -> PathBuf {
    config
        .state_dir
        .join(format!("{}.checkpoint.sqlite", config.app_id))
}

/// Refuses, before anything starts, a statement file whose tables differ
/// from the checkpointed state (unless the state is to be reset).
pub fn check_resumable(config: &RuntimeConfig, plan: &Plan) -> Result<(), CheckpointError> {
    if config.reset_state {
        return Ok(());
    }
    CheckpointStore::check(&checkpoint_path(config), &state_fingerprint(plan))
}

/// Identifies the table definitions whose state a checkpoint holds.
pub fn state_fingerprint(plan: &Plan) -> String {
    let mut hasher = Md5::new();
    for q in &plan.queries {
        if let Query::Table(t) = q {
            let r = &plan.relations[t.output];
            hasher.update(
                format!(
                    "{}|{:?}|{:?}|{:?}|{:?};",
                    r.name, t.group_by, t.aggregates, t.window, t.filter
                )
                .as_bytes(),
            );
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Partition count of each relation's topic: its own PARTITIONS, else the
/// partition count of the source topic it derives from.
fn output_topics(plan: &Plan, source_partitions: &HashMap<String, i32>) -> Vec<TopicSpec> {
    let mut root: Vec<Option<String>> = plan
        .relations
        .iter()
        .map(|r| r.is_source.then(|| r.topic.clone()))
        .collect();
    for q in &plan.queries {
        let (input, output) = match q {
            Query::Stream(s) => (s.input, s.output),
            Query::Table(t) => (t.input, t.output),
        };
        root[output] = root[input].clone();
    }
    plan.relations
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_source)
        .map(|(i, r)| {
            let inherited = root[i]
                .as_ref()
                .and_then(|t| source_partitions.get(t))
                .copied()
                .unwrap_or(1);
            TopicSpec::new(&r.topic, r.partitions.unwrap_or(inherited))
        })
        .collect()
}

/// Runs until `stop` is set; a final checkpoint is taken before returning.
pub fn run(
    plan: Arc<Plan>,
    config: &RuntimeConfig,
    stop: &AtomicBool,
    stats: &RuntimeStats,
) -> Result<EngineCounters, RuntimeError> {
    let bootstrap = &config.bootstrap;
    let mut source_partitions = HashMap::new();
    for topic in plan.source_topics() {
        let n = kafka::partition_count(bootstrap, &topic)?
            .ok_or_else(|| RuntimeError::MissingSource(topic.clone()))?;
        source_partitions.insert(topic, n);
    }
    let mut topics = output_topics(&plan, &source_partitions);
    topics.push(TopicSpec::new(&config.dlq_topic, 1));
    block_on(kafka::ensure_topics(bootstrap, &topics))?;
    let partitions_of: HashMap<String, i32> = topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions))
        .collect();

    let store_path = checkpoint_path(config);
    let mut store =
        CheckpointStore::open(&store_path, &state_fingerprint(&plan), config.reset_state)?;
    let restored = store.load()?;
    let mut engine = Engine::new(Arc::clone(&plan));
    engine
        .restore(restored.state.into_iter(), &restored.stream_times)
        .map_err(RuntimeError::Restore)?;
    let mut positions = restored.offsets;
    tracing::info!(
        groups = engine.state_size(),
        positions = positions.len(),
        "stream SQL resumed from {}",
        store_path.display()
    );

    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", &config.app_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for (topic, n) in &source_partitions {
        for p in 0..*n {
            let offset = positions
                .get(&(topic.clone(), p))
                .map(|o| Offset::Offset(*o))
                .unwrap_or(Offset::Beginning);
            assignment.add_partition_offset(topic, p, offset)?;
        }
    }
    consumer.assign(&assignment)?;

    let tracker = DeliveryTracker {
        failures: AtomicU64::new(0),
        last_error: Mutex::new(None),
    };
    let producer: ThreadedProducer<DeliveryTracker> = client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        // Large batches: the output fans out to many topics, and fewer,
        // bigger produce requests are what the broker handles best.
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "600000")
        .create_with_context(tracker)?;

    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0u64;
    let checkpoint = |engine: &mut Engine,
                      store: &mut CheckpointStore,
                      positions: &HashMap<(String, i32), i64>|
     -> Result<(), RuntimeError> {
        producer
            .flush(Duration::from_secs(120))
            .map_err(|e| RuntimeError::Delivery(e.to_string()))?;
        if producer.context().failures.load(Ordering::Relaxed) > 0 {
            let e = producer
                .context()
                .last_error
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_default();
            return Err(RuntimeError::Delivery(e));
        }
        engine.expire_windows();
        let changes = engine.take_changes();
        store.commit(positions, &changes, &engine.stream_times())?;
        stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        // Committed to the group too, so that lag is visible to lakectl.
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in positions {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        let _ = consumer.commit(&tpl, CommitMode::Async);
        Ok(())
    };

    let threads = config.threads.max(1);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while !stop.load(Ordering::Relaxed) {
        // A batch: what arrives within a few milliseconds, up to MAX_BATCH records.
        batch.clear();
        let mut wait = Duration::from_millis(100);
        while batch.len() < MAX_BATCH {
            match consumer.poll(wait) {
                Some(message) => batch.push(message?),
                None => break,
            }
            wait = Duration::from_millis(2);
        }
        let inputs: Vec<InputRecord<'_>> = batch
            .iter()
            .map(|m| InputRecord {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp().to_millis().unwrap_or(0),
                key: m.key(),
                value: m.payload(),
            })
            .collect();
        let results = engine.process_batch(&inputs, threads);
        for (i, (input, message)) in inputs.iter().zip(&batch).enumerate() {
            let source =
                SourcePosition::new(input.topic, input.partition, input.offset).to_string();
            for out in results.outputs(i) {
                let relation = &plan.relations[out.relation];
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&relation.topic)
                    .timestamp(out.timestamp)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: SOURCE_HEADER,
                        value: Some(&source),
                    }));
                if let Some(k) = &out.key {
                    record = record.key(k.as_slice());
                }
                if let Some(v) = &out.value {
                    record = record.payload(v.as_slice());
                }
                if let Some(p) = out.partition {
                    let n = partitions_of.get(&relation.topic).copied().unwrap_or(1);
                    record = record.partition(p.rem_euclid(n));
                }
                send(&producer, record)?;
            }
            for d in results.dead(i) {
                let mut headers = OwnedHeaders::new()
                    .insert(Header {
                        key: SOURCE_HEADER,
                        value: Some(&source),
                    })
                    .insert(Header {
                        key: "x-lakehouse-dlq-stream",
                        value: Some(&d.stream),
                    })
                    .insert(Header {
                        key: "x-lakehouse-dlq-reason",
                        value: Some(&d.reason),
                    });
                if let Some(h) = message.headers() {
                    for h in h.iter() {
                        headers = headers.insert(Header {
                            key: h.key,
                            value: h.value,
                        });
                    }
                }
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&config.dlq_topic)
                    .headers(headers)
                    .timestamp(input.timestamp);
                if let Some(k) = input.key {
                    record = record.key(k);
                }
                if let Some(v) = input.value {
                    record = record.payload(v);
                }
                send(&producer, record)?;
            }
            stats.records_in.fetch_add(1, Ordering::Relaxed);
            stats
                .records_out
                .fetch_add(results.output_count(i) as u64, Ordering::Relaxed);
            stats
                .dead_letters
                .fetch_add(results.dead(i).len() as u64, Ordering::Relaxed);
            positions.insert((input.topic.to_string(), input.partition), input.offset + 1);
            since_checkpoint += 1;
        }
        // Also reached with an empty batch, so that a quiet input still checkpoints.
        if since_checkpoint > 0
            && (since_checkpoint >= config.checkpoint_records
                || last_checkpoint.elapsed() >= config.checkpoint_interval)
        {
            checkpoint(&mut engine, &mut store, &positions)?;
            since_checkpoint = 0;
            last_checkpoint = Instant::now();
        }
    }
    checkpoint(&mut engine, &mut store, &positions)?;
    Ok(engine.counters())
}

fn send<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), RuntimeError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(RuntimeError::Client(e)),
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
