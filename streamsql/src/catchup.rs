//! Building new and rebuilt statements on their own: when the statement
//! file changed under a checkpoint, the statements that must start from
//! the beginning (new ones, tables whose definition changed) run over the
//! input from its start up to the checkpoint's positions, while unchanged
//! statements keep their state. Then the whole file carries on together
//! from the checkpoint.
//!
//! Only the rebuilt statements' records are written (plus the dead letters
//! of new source streams); the statements they read from run too, silent.
//! A rebuilt table's keys that the new definition no longer produces are
//! deleted from its topic with tombstones, read from the topic before the
//! rebuild starts writing. A crash during catch-up leaves the checkpoint as
//! it was, so the next start does it again; the records it writes again
//! carry the same source positions, which the sinks recognise as replays.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lakehouse::kafka::client_config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::emit::{self, Emitter};
use crate::engine::{Engine, StateChange};
use crate::plan::{Plan, Query};
use crate::runtime::{RuntimeConfig, RuntimeError};
use crate::statements::{table_names, Change, StatementChange, StatementKind};

/// Most records processed as one batch.
const MAX_BATCH: usize = 2_000;

/// What the catch-up computed, for the checkpoint.
#[derive(Debug, Default)]
pub struct CaughtUp {
    /// State of the rebuilt tables, numbered as the whole file's engine
    /// numbers its tables.
    pub state: Vec<StateChange>,
    pub stream_times: Vec<(String, i64)>,
    /// Input records read.
    pub records: u64,
    pub tombstones: u64,
}

/// The relations that start from the beginning of their input.
pub fn rebuilt_relations(plan: &Plan, changes: &[StatementChange]) -> HashSet<usize> {
    changes
        .iter()
        .filter(|c| matches!(c.change, Change::New | Change::Rebuilt))
        .filter(|c| c.kind != StatementKind::Source)
        .filter_map(|c| plan.relations.iter().position(|r| r.name == c.name))
        .collect()
}

/// Runs the rebuilt statements from the start of the input to `until`.
/// `None`: `stop` was set before it finished.
pub fn catch_up(
    plan: &Arc<Plan>,
    changes: &[StatementChange],
    until: &HashMap<(String, i32), i64>,
    config: &RuntimeConfig,
    emitter: &Emitter<'_>,
    stop: &AtomicBool,
) -> Result<Option<CaughtUp>, RuntimeError> {
    let rebuilt = rebuilt_relations(plan, changes);
    let new_sources: HashSet<&str> = changes
        .iter()
        .filter(|c| c.kind == StatementKind::Source && c.change == Change::New)
        .map(|c| c.name.as_str())
        .collect();
    if rebuilt.is_empty() && new_sources.is_empty() {
        return Ok(Some(CaughtUp::default()));
    }
    let subplan = Arc::new(restricted_to(plan, &rebuilt));
    let rebuilt_tables: Vec<usize> = changes
        .iter()
        .filter(|c| c.kind == StatementKind::Table && c.change == Change::Rebuilt)
        .filter_map(|c| plan.relations.iter().position(|r| r.name == c.name))
        .collect();
    let mut stale = HashMap::new();
    for &t in &rebuilt_tables {
        stale.insert(t, live_keys(config, &plan.relations[t].topic, stop)?);
    }

    let consumer: BaseConsumer = client_config(&config.bootstrap)
        .set("group.id", format!("{}-catch-up", config.app_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0usize;
    for ((topic, partition), &next) in until {
        // Nothing to read where the checkpoint is at the start, or where
        // the records before it are no longer kept.
        let (low, _) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
        if next > low {
            assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
            remaining += 1;
        }
    }
    consumer.assign(&assignment)?;
    let mut done: HashSet<(String, i32)> = HashSet::new();
    let mut engine = Engine::new(Arc::clone(&subplan));
    let mut emitted_keys: HashMap<usize, HashSet<Vec<u8>>> = HashMap::new();
    let mut records = 0u64;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    tracing::info!(
        statements = rebuilt.len(),
        partitions = remaining,
        "catching up new and rebuilt statements from the start of the input"
    );
    while done.len() < remaining {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        batch.clear();
        let mut wait = Duration::from_millis(200);
        while batch.len() < MAX_BATCH {
            match consumer.poll(wait) {
                Some(message) => {
                    let message = message?;
                    let key = (message.topic().to_string(), message.partition());
                    let end = until.get(&key).copied().unwrap_or(0);
                    if message.offset() + 1 >= end {
                        if done.insert(key.clone()) {
                            let mut tpl = TopicPartitionList::new();
                            tpl.add_partition(&key.0, key.1);
                            let _ = consumer.pause(&tpl);
                        }
                        if message.offset() >= end {
                            continue;
                        }
                    }
                    batch.push(message);
                }
                None => break,
            }
            wait = Duration::from_millis(2);
        }
        let inputs = emit::inputs(&batch);
        let results = engine.process_batch(&inputs, config.threads.max(1));
        for (i, (input, message)) in inputs.iter().zip(&batch).enumerate() {
            for out in results.outputs(i) {
                if rebuilt_tables.contains(&out.relation) {
                    if let Some(k) = &out.key {
                        emitted_keys
                            .entry(out.relation)
                            .or_default()
                            .insert(k.clone());
                    }
                }
            }
            emitter.send_results(
                input,
                message,
                &results,
                i,
                |relation| rebuilt.contains(&relation),
                |stream| new_sources.contains(stream),
            )?;
            records += 1;
        }
    }
    let mut tombstones = 0u64;
    for (table, keys) in stale {
        let emitted = emitted_keys.remove(&table).unwrap_or_default();
        for key in keys.difference(&emitted) {
            emitter.send_tombstone(&plan.relations[table].topic, key)?;
            tombstones += 1;
        }
    }
    emit::flush(emitter.producer)?;
    engine.expire_windows();
    let names = table_names(&subplan);
    let full: HashMap<String, usize> = table_names(plan)
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    let rebuilt_names: HashSet<&str> = rebuilt
        .iter()
        .map(|&r| plan.relations[r].name.as_str())
        .collect();
    let state = engine
        .take_changes()
        .into_iter()
        .filter(|c| rebuilt_names.contains(names[c.table].as_str()))
        .map(|mut c| {
            c.table = full[&names[c.table]];
            c
        })
        .collect();
    let stream_times = names
        .iter()
        .zip(engine.stream_times())
        .filter(|(n, _)| rebuilt_names.contains(n.as_str()))
        .map(|(n, t)| (n.clone(), t))
        .collect();
    tracing::info!(
        records,
        tombstones,
        "caught up; the whole file carries on from the checkpoint"
    );
    Ok(Some(CaughtUp {
        state,
        stream_times,
        records,
        tombstones,
    }))
}

/// The plan with only the queries the rebuilt relations need: theirs and,
/// transitively, those of the streams they read.
fn restricted_to(plan: &Plan, rebuilt: &HashSet<usize>) -> Plan {
    let ends = |q: &Query| match q {
        Query::Stream(s) => (s.input, s.output),
        Query::Table(t) => (t.input, t.output),
    };
    let mut needed: HashSet<usize> = rebuilt.clone();
    // Queries are in file order (inputs before readers): walking back once
    // collects every upstream relation.
    for q in plan.queries.iter().rev() {
        let (input, output) = ends(q);
        if needed.contains(&output) {
            needed.insert(input);
        }
    }
    Plan {
        relations: plan.relations.clone(),
        queries: plan
            .queries
            .iter()
            .filter(|q| needed.contains(&ends(q).1))
            .cloned()
            .collect(),
    }
}

/// The keys a table's topic holds a value for (its last record per key is
/// not a tombstone), read up to the end as it is now.
fn live_keys(
    config: &RuntimeConfig,
    topic: &str,
    stop: &AtomicBool,
) -> Result<HashSet<Vec<u8>>, RuntimeError> {
    let consumer: BaseConsumer = client_config(&config.bootstrap)
        .set("group.id", format!("{}-catch-up-keys", config.app_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let partitions = lakehouse::kafka::partition_count(&config.bootstrap, topic)?.unwrap_or(0);
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if high > low {
            ends.insert(p, high);
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    let mut live = HashSet::new();
    if ends.is_empty() {
        return Ok(live);
    }
    consumer.assign(&assignment)?;
    let mut done = HashSet::new();
    while done.len() < ends.len() && !stop.load(Ordering::Relaxed) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        let end = ends[&message.partition()];
        if message.offset() >= end {
            done.insert(message.partition());
            continue;
        }
        if let Some(key) = message.key() {
            match message.payload() {
                Some(_) => live.insert(key.to_vec()),
                None => live.remove(key),
            };
        }
        if message.offset() + 1 >= end {
            done.insert(message.partition());
        }
    }
    Ok(live)
}
