//! The executor: turns one input record into the output records of every
//! query, keeping table state in memory. Pure: no I/O, so it is tested with
//! golden records and benchmarked without a broker; `runtime` wires it to Kafka.
//! Its parts: the aggregate accumulators, table state, event time and
//! windows, and the two-thread pipeline of a batch.

mod accumulators;
mod pipeline;
mod tables;
mod windows;

pub use pipeline::Balance;
pub use tables::StateChange;
pub use windows::window_bounds;

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::ast::{RelationKind, WindowDef};
use crate::codec::ObjectLayout;
use crate::decode::{RowDecoder, TopicFields};
use crate::expr::Ctx;
use crate::plan::{Plan, Query};
use crate::value::Value;
use accumulators::Acc;
use tables::{
    decode_group, encode_group, group_id, key_columns_in_group_order, split_group_id,
    update_tables, TableRunner, TableState,
};
use windows::event_time;

/// One record read from a source topic.
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Kafka record timestamp (ms).
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// One record for an output topic.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    /// Index of the relation in the plan.
    pub relation: usize,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone (the key left the table).
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    /// Streams keep the source partition; tables are partitioned by key.
    pub partition: Option<i32>,
}

/// A record one source stream could not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub stream: String,
    pub reason: String,
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineCounters {
    pub records_in: u64,
    pub records_out: u64,
    pub dead_letters: u64,
    /// Table updates dropped because their window had closed (past the grace period).
    pub late_dropped: u64,
    /// Table updates dropped because a GROUP BY value was NULL (as ksqlDB does).
    pub null_key_dropped: u64,
}

/// The stateless part of one record's processing: decoded rows, stream
/// outputs and dead letters. Computed in parallel over a batch.
#[derive(Debug, Default)]
pub struct Prepared {
    pub outputs: Vec<OutputRecord>,
    pub dead: Vec<DeadLetter>,
    /// Rows of the relations that tables read, by relation index.
    rows: Vec<Option<Vec<Value>>>,
    rowtime: i64,
}

pub struct Engine {
    plan: Arc<Plan>,
    decoders: Vec<Option<RowDecoder>>,
    /// Per source topic, the fields its source streams read.
    topic_fields: FxHashMap<String, TopicFields>,
    /// JSON layout of each relation's record value.
    layouts: Vec<ObjectLayout>,
    /// Relations whose rows a stream query reads.
    read_by_stream: Vec<bool>,
    /// Relations whose rows a table query reads.
    read_by_table: Vec<bool>,
    /// Stream relations that are `SELECT *` of their input (same columns):
    /// their JSON is the input's, copied instead of encoded again.
    identity: Vec<bool>,
    /// One per table query, in file order.
    tables: Vec<TableRunner>,
    /// How a pipelined batch shares its work between the two threads.
    balance: Balance,
    records_in: u64,
    records_out: u64,
    dead_letters: u64,
}

/// What a batch produced, per input record: its stream outputs and dead
/// letters, then its table outputs.
#[derive(Debug, Default)]
pub struct BatchOutput {
    prepared: Vec<Prepared>,
    /// When the tables ran on a thread of their own: their outputs in input
    /// order, and where each input's outputs start.
    tables: Option<(Vec<OutputRecord>, Vec<usize>)>,
}

impl BatchOutput {
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// The outputs of input `i`. Per relation, in the order a record-by-record run gives.
    pub fn outputs(&self, i: usize) -> impl Iterator<Item = &OutputRecord> {
        self.prepared[i].outputs.iter().chain(
            self.tables
                .iter()
                .flat_map(move |(outputs, starts)| &outputs[starts[i]..starts[i + 1]]),
        )
    }

    pub fn output_count(&self, i: usize) -> usize {
        self.prepared[i].outputs.len()
            + self
                .tables
                .iter()
                .map(|(_, starts)| starts[i + 1] - starts[i])
                .sum::<usize>()
    }

    pub fn dead(&self, i: usize) -> &[DeadLetter] {
        &self.prepared[i].dead
    }
}

impl Engine {
    pub fn new(plan: Arc<Plan>) -> Self {
        let mut topic_fields: FxHashMap<String, TopicFields> = FxHashMap::default();
        let decoders = plan
            .relations
            .iter()
            .map(|r| {
                r.is_source.then(|| {
                    RowDecoder::new(&r.columns, topic_fields.entry(r.topic.clone()).or_default())
                })
            })
            .collect();
        let layouts: Vec<ObjectLayout> = plan
            .relations
            .iter()
            .map(|r| ObjectLayout::new(&r.columns, |c| r.kind == RelationKind::Stream || !c.key))
            .collect();
        let mut read_by_stream = vec![false; plan.relations.len()];
        let mut read_by_table = vec![false; plan.relations.len()];
        let mut tables = Vec::new();
        let mut identity = vec![false; plan.relations.len()];
        for q in &plan.queries {
            match q {
                Query::Stream(s) => {
                    read_by_stream[s.input] = true;
                    let (input, output) = (&plan.relations[s.input], &plan.relations[s.output]);
                    identity[s.output] = input.columns == output.columns
                        && s.projection
                            .iter()
                            .enumerate()
                            .all(|(i, e)| *e == crate::expr::CExpr::Column(i));
                }
                Query::Table(t) => {
                    read_by_table[t.input] = true;
                    let relation = &plan.relations[t.output];
                    tables.push(TableRunner {
                        query: t.clone(),
                        state: TableState::default(),
                        key_columns: key_columns_in_group_order(relation, t),
                        key_format: relation.key_format,
                        layout: layouts[t.output].clone(),
                        late_dropped: 0,
                        null_key_dropped: 0,
                        grouped: Vec::new(),
                        projected: Vec::new(),
                        key_values: Vec::new(),
                        windows: Vec::new(),
                        id: Vec::new(),
                    });
                }
            }
        }
        Self {
            plan,
            decoders,
            topic_fields,
            layouts,
            read_by_stream,
            read_by_table,
            identity,
            tables,
            balance: Balance::default(),
            records_in: 0,
            records_out: 0,
            dead_letters: 0,
        }
    }

    /// Where the next pipelined batch starts sharing its work; it moves by
    /// itself from there. Tests set it to cover every split.
    pub fn set_balance(&mut self, balance: Balance) {
        self.balance = balance;
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    pub fn counters(&self) -> EngineCounters {
        EngineCounters {
            records_in: self.records_in,
            records_out: self.records_out,
            dead_letters: self.dead_letters,
            late_dropped: self.tables.iter().map(|t| t.late_dropped).sum(),
            null_key_dropped: self.tables.iter().map(|t| t.null_key_dropped).sum(),
        }
    }

    /// Runs every query over one input record.
    pub fn process(
        &mut self,
        input: &InputRecord<'_>,
        out: &mut Vec<OutputRecord>,
        dead: &mut Vec<DeadLetter>,
    ) {
        let mut prepared = self.prepare(input);
        self.apply(&mut prepared);
        out.append(&mut prepared.outputs);
        dead.append(&mut prepared.dead);
    }

    /// Decoding and stream queries: no state, so any number run in parallel.
    pub fn prepare(&self, input: &InputRecord<'_>) -> Prepared {
        let plan = &*self.plan;
        let mut rows: Vec<Option<Vec<Value>>> = vec![None; plan.relations.len()];
        let mut prepared = Prepared {
            rowtime: input.timestamp,
            ..Prepared::default()
        };
        let mut parsed = None;
        for (i, relation) in plan.relations.iter().enumerate() {
            let Some(decoder) = &self.decoders[i] else {
                continue;
            };
            if relation.topic != input.topic {
                continue;
            }
            let object =
                parsed.get_or_insert_with(|| self.topic_fields[&relation.topic].parse(input.value));
            let decoded = match object {
                Ok(map) => decoder.decode(map, input.key),
                Err(reason) => Err(reason.clone()),
            };
            match decoded {
                Ok(row) => {
                    if let Some(ts_col) = &relation.timestamp_column {
                        match event_time(&row[relation.column_index(ts_col).expect("planned")]) {
                            Some(ts) => prepared.rowtime = ts,
                            None => {
                                prepared.dead.push(DeadLetter {
                                    stream: relation.name.clone(),
                                    reason: format!(
                                        "TIMESTAMP column {ts_col} is NULL or not a time"
                                    ),
                                });
                                continue;
                            }
                        }
                    }
                    rows[i] = Some(row);
                }
                Err(reason) => prepared.dead.push(DeadLetter {
                    stream: relation.name.clone(),
                    reason,
                }),
            }
        }
        let ctx = Ctx {
            rowtime: prepared.rowtime,
        };
        // Output index of each stream relation's record for this input.
        let mut encoded: Vec<Option<usize>> = vec![None; plan.relations.len()];
        for query in &plan.queries {
            let Query::Stream(q) = query else { continue };
            let Some(row) = &rows[q.input] else { continue };
            if let Some(f) = &q.filter {
                if f.eval(row, &ctx) != Value::Bool(true) {
                    continue;
                }
            }
            let reused = encoded[q.input].filter(|_| self.identity[q.output]);
            let needs_row = self.read_by_stream[q.output] || self.read_by_table[q.output];
            let (value, projected) = match reused {
                Some(at) => (
                    prepared.outputs[at]
                        .value
                        .clone()
                        .expect("streams have values"),
                    needs_row.then(|| row.clone()),
                ),
                None => {
                    let projected: Vec<Value> =
                        q.projection.iter().map(|e| e.eval(row, &ctx)).collect();
                    let mut value = Vec::with_capacity(384);
                    self.layouts[q.output].write(&mut value, &projected);
                    (value, Some(projected))
                }
            };
            encoded[q.output] = Some(prepared.outputs.len());
            prepared.outputs.push(OutputRecord {
                relation: q.output,
                key: None,
                value: Some(value),
                timestamp: ctx.rowtime,
                partition: Some(input.partition),
            });
            if needs_row {
                rows[q.output] = projected;
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            if !self.read_by_table[i] {
                *row = None;
            }
        }
        prepared.rows = rows;
        prepared
    }

    /// The tables: state updates in input order.
    pub fn apply(&mut self, prepared: &mut Prepared) {
        self.records_in += 1;
        self.dead_letters += prepared.dead.len() as u64;
        update_tables(
            &mut self.tables,
            &prepared.rows,
            prepared.rowtime,
            &mut prepared.outputs,
        );
        prepared.rows.clear();
        self.records_out += prepared.outputs.len() as u64;
    }

    /// Drops windows that closed more than the grace period ago; memory stays
    /// bounded by the number of open windows.
    pub fn expire_windows(&mut self) {
        for runner in self.tables.iter_mut() {
            let Some(w) = runner.query.window else {
                continue;
            };
            let size = match w {
                WindowDef::Tumbling { size_ms, .. } | WindowDef::Hopping { size_ms, .. } => size_ms,
            };
            let state = &mut runner.state;
            let horizon = state.stream_time - runner.query.grace_ms - size;
            let expired: Vec<Vec<u8>> = state
                .groups
                .keys()
                .filter(|id| split_group_id(id).1 < horizon)
                .cloned()
                .collect();
            for id in expired {
                state.groups.remove(&id);
                state.dirty.insert(id);
            }
        }
    }

    /// Number of groups held in memory over all tables.
    pub fn state_size(&self) -> usize {
        self.tables.iter().map(|t| t.state.groups.len()).sum()
    }

    /// State changes since the last call, for a checkpoint.
    pub fn take_changes(&mut self) -> Vec<StateChange> {
        let mut changes = Vec::new();
        for (table, runner) in self.tables.iter_mut().enumerate() {
            let state = &mut runner.state;
            for id in state.dirty.drain() {
                let value = state.groups.get(&id).map(encode_group);
                let (group, window_start) = split_group_id(&id);
                changes.push(StateChange {
                    table,
                    group: group.to_vec(),
                    window_start,
                    value,
                });
            }
        }
        changes
    }

    /// Stream time of each table (checkpointed so window expiry survives restarts).
    pub fn stream_times(&self) -> Vec<i64> {
        self.tables.iter().map(|t| t.state.stream_time).collect()
    }

    /// Restores state saved by checkpoints.
    pub fn restore(
        &mut self,
        entries: impl Iterator<Item = StateChange>,
        stream_times: &[i64],
    ) -> Result<(), String> {
        for e in entries {
            let Some(bytes) = e.value else { continue };
            let runner = self
                .tables
                .get_mut(e.table)
                .ok_or("checkpoint names a table the file no longer has")?;
            let template: Vec<Acc> = runner.query.aggregates.iter().map(Acc::new).collect();
            let group = decode_group(&bytes, &template)
                .ok_or("checkpoint entry does not match the table's aggregates")?;
            runner
                .state
                .groups
                .insert(group_id(&e.group, e.window_start), group);
        }
        for (runner, t) in self.tables.iter_mut().zip(stream_times) {
            runner.state.stream_time = *t;
        }
        Ok(())
    }
}
