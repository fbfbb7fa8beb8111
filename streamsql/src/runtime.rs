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
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse::kafka::{self, client_config, TopicSpec};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::catchup;
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::emit::{self, Emitter};
use crate::engine::{Engine, EngineCounters};
use crate::plan::{Plan, Query};
use crate::statements::{self, Change, StatementChange, StatementKind};

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
    /// Where a statement new to the checkpoint starts (a changed table is
    /// rebuilt from the start of its input either way).
    pub new_statements_from: StartFrom,
}

/// Where a statement new to the checkpoint starts reading its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From the start of its input: built over everything the topics hold.
    #[default]
    Earliest,
    /// From the end: only records that arrive from now on (ksqlDB's
    /// `auto.offset.reset=latest`); with no checkpoint at all, the whole
    /// file starts from the end of the input.
    Latest,
}

impl std::str::FromStr for StartFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "earliest" => Ok(StartFrom::Earliest),
            "latest" => Ok(StartFrom::Latest),
            other => Err(format!("{other:?} is neither earliest nor latest")),
        }
    }
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
            new_statements_from: StartFrom::Earliest,
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
        matches!(self, RuntimeError::Restore(_))
    }
}

/// Live counters, readable while the engine runs.
#[derive(Debug, Default)]
pub struct RuntimeStats {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub dead_letters: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Set once a run asked to reset the state has reset it.
    pub state_reset: AtomicBool,
}

/// Where the engine keeps its checkpoints.
pub fn checkpoint_path(config: &RuntimeConfig) -> PathBuf {
    config
        .state_dir
        .join(format!("{}.checkpoint.sqlite", config.app_id))
}

/// What starting on `plan` would do to each statement's checkpointed
/// state (empty when there is nothing to keep: no checkpoint, or a reset).
/// Reads only; creates nothing.
pub fn pending_changes(
    config: &RuntimeConfig,
    plan: &Plan,
) -> Result<Vec<StatementChange>, CheckpointError> {
    if config.reset_state {
        return Ok(Vec::new());
    }
    let snapshot = CheckpointStore::peek(&checkpoint_path(config), plan)?;
    Ok(changes_against(&snapshot, plan))
}

fn changes_against(snapshot: &crate::checkpoint::Snapshot, plan: &Plan) -> Vec<StatementChange> {
    if !snapshot.has_positions {
        return Vec::new();
    }
    statements::diff(&snapshot.statements, &statements::statement_hashes(plan))
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
    let producer = emit::producer(bootstrap)?;
    let emitter = Emitter {
        producer: &producer,
        plan: &plan,
        partitions_of: &partitions_of,
        dlq_topic: &config.dlq_topic,
    };

    let store_path = checkpoint_path(config);
    let mut store = CheckpointStore::open(&store_path, &plan, config.reset_state)?;
    if config.reset_state {
        stats.state_reset.store(true, Ordering::Relaxed);
    }
    let changes = changes_against(&store.snapshot()?, &plan);
    for c in changes.iter().filter(|c| c.change != Change::Unchanged) {
        tracing::info!(
            statement = %c.name,
            kind = c.kind.as_str(),
            change = ?c.change,
            "statement file changed since the checkpoint"
        );
    }
    let current = statements::statement_hashes(&plan);
    if changes.is_empty() {
        // Nothing to keep: the whole file starts from the beginning.
        store.adopt(&current, &HashSet::new(), &[], &[])?;
    } else if !statements::is_noop(&changes) {
        let kept: HashSet<String> = changes
            .iter()
            .filter(|c| c.kind == StatementKind::Table && c.change == Change::Unchanged)
            .map(|c| c.name.clone())
            .collect();
        let until = store.offsets()?;
        // From the latest offset a new statement has nothing to catch up:
        // it starts empty at the checkpoint with the rest of the file.
        let to_build: Vec<StatementChange> = changes
            .iter()
            .filter(|c| {
                !(config.new_statements_from == StartFrom::Latest && c.change == Change::New)
            })
            .cloned()
            .collect();
        let Some(caught_up) = catchup::catch_up(&plan, &to_build, &until, config, &emitter, stop)?
        else {
            return Ok(EngineCounters::default());
        };
        store.adopt(&current, &kept, &caught_up.state, &caught_up.stream_times)?;
    }
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
    if config.new_statements_from == StartFrom::Latest {
        // A partition without a checkpointed position starts at its end now,
        // kept in the first checkpoint, so that a restart does not skip
        // what arrived in between.
        for (topic, n) in &source_partitions {
            for p in 0..*n {
                if let std::collections::hash_map::Entry::Vacant(position) =
                    positions.entry((topic.clone(), p))
                {
                    let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30))?;
                    position.insert(high);
                }
            }
        }
        store.commit(&positions, &[], &engine.stream_times())?;
    }
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

    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0u64;
    let checkpoint = |engine: &mut Engine,
                      store: &mut CheckpointStore,
                      positions: &HashMap<(String, i32), i64>|
     -> Result<(), RuntimeError> {
        emit::flush(&producer)?;
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
        let inputs = emit::inputs(&batch);
        let results = engine.process_batch(&inputs, threads);
        for (i, (input, message)) in inputs.iter().zip(&batch).enumerate() {
            let sent = emitter.send_results(input, message, &results, i, |_| true, |_| true)?;
            stats.records_in.fetch_add(1, Ordering::Relaxed);
            stats
                .records_out
                .fetch_add(sent.outputs as u64, Ordering::Relaxed);
            stats
                .dead_letters
                .fetch_add(sent.dead as u64, Ordering::Relaxed);
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

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
