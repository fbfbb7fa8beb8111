//! The executor: turns one input record into the output records of every
//! query, keeping table state in memory. Pure: no I/O, so it is tested with
//! golden records and benchmarked without a broker; `runtime` wires it to Kafka.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::ast::{RelationKind, WindowDef};
use crate::codec::{encode_key, ObjectLayout};
use crate::decode::{RowDecoder, TopicFields};
use crate::expr::{AggFunc, Ctx};
use crate::plan::{AggregateCall, Column, Plan, Query, Relation, TableQuery};
use crate::value::{decode_values, encode_values, Value};

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

#[derive(Debug, Clone, PartialEq)]
enum Acc {
    Count(i64),
    SumInt(i64),
    SumDouble(f64),
    Avg(f64, i64),
    Extreme(Value),
    Latest(Value),
    Earliest(Value, bool),
}

impl Acc {
    fn new(call: &AggregateCall) -> Acc {
        match call.func {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum if call.arg_type == Some(crate::types::SqlType::Double) => {
                Acc::SumDouble(0.0)
            }
            AggFunc::Sum => Acc::SumInt(0),
            AggFunc::Avg => Acc::Avg(0.0, 0),
            AggFunc::Min | AggFunc::Max => Acc::Extreme(Value::Null),
            AggFunc::LatestByOffset => Acc::Latest(Value::Null),
            AggFunc::EarliestByOffset => Acc::Earliest(Value::Null, false),
        }
    }

    /// Adds one input value; NULLs are ignored except by COUNT(*).
    fn update(&mut self, func: AggFunc, v: Value) {
        if func == AggFunc::CountStar {
            if let Acc::Count(n) = self {
                *n += 1;
            }
            return;
        }
        if v.is_null() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::SumInt(s) => {
                *s = s.saturating_add(match v {
                    Value::Int(i) => i,
                    _ => 0,
                })
            }
            Acc::SumDouble(s) => *s += v.as_f64().unwrap_or(0.0),
            Acc::Avg(s, n) => {
                *s += v.as_f64().unwrap_or(0.0);
                *n += 1;
            }
            Acc::Extreme(current) => {
                let better = current.is_null()
                    || v.sql_cmp(current).is_some_and(|o| {
                        if func == AggFunc::Min {
                            o.is_lt()
                        } else {
                            o.is_gt()
                        }
                    });
                if better {
                    *current = v;
                }
            }
            Acc::Latest(current) => *current = v,
            Acc::Earliest(current, set) => {
                if !*set {
                    *current = v;
                    *set = true;
                }
            }
        }
    }

    fn result(&self) -> Value {
        match self {
            Acc::Count(n) | Acc::SumInt(n) => Value::Int(*n),
            Acc::SumDouble(s) => Value::Double(*s),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(s, n) => Value::Double(s / *n as f64),
            Acc::Extreme(v) | Acc::Latest(v) | Acc::Earliest(v, _) => v.clone(),
        }
    }

    fn to_values(&self) -> [Value; 2] {
        match self {
            Acc::Count(n) | Acc::SumInt(n) => [Value::Int(*n), Value::Null],
            Acc::SumDouble(s) => [Value::Double(*s), Value::Null],
            Acc::Avg(s, n) => [Value::Double(*s), Value::Int(*n)],
            Acc::Extreme(v) | Acc::Latest(v) => [v.clone(), Value::Null],
            Acc::Earliest(v, set) => [v.clone(), Value::Bool(*set)],
        }
    }

    fn from_values(template: &Acc, a: Value, b: Value) -> Option<Acc> {
        Some(match (template, a, b) {
            (Acc::Count(_), Value::Int(n), _) => Acc::Count(n),
            (Acc::SumInt(_), Value::Int(n), _) => Acc::SumInt(n),
            (Acc::SumDouble(_), Value::Double(s), _) => Acc::SumDouble(s),
            (Acc::Avg(..), Value::Double(s), Value::Int(n)) => Acc::Avg(s, n),
            (Acc::Extreme(_), v, _) => Acc::Extreme(v),
            (Acc::Latest(_), v, _) => Acc::Latest(v),
            (Acc::Earliest(..), v, Value::Bool(set)) => Acc::Earliest(v, set),
            _ => return None,
        })
    }
}

/// One group of a table (one key, and one window for windowed tables).
#[derive(Debug, Clone, PartialEq)]
struct Group {
    key_values: Vec<Value>,
    accs: Vec<Acc>,
    /// A row for this key is in the output (so failing HAVING sends a tombstone).
    emitted: bool,
}

/// A group's id: the encoded key values followed by the window start (8
/// bytes, big-endian; 0 for unwindowed tables). One flat byte string, so
/// lookups borrow it instead of allocating.
fn group_id(key: &[u8], window_start: i64) -> Vec<u8> {
    let mut id = Vec::with_capacity(key.len() + 8);
    id.extend_from_slice(key);
    id.extend_from_slice(&window_start.to_be_bytes());
    id
}

fn split_group_id(id: &[u8]) -> (&[u8], i64) {
    let (key, start) = id.split_at(id.len() - 8);
    (key, i64::from_be_bytes(start.try_into().expect("8 bytes")))
}

#[derive(Debug, Default)]
struct TableState {
    groups: FxHashMap<Vec<u8>, Group>,
    /// Changed since the last checkpoint (present: updated; absent: removed).
    dirty: FxHashSet<Vec<u8>>,
    /// Highest event time seen (windowed tables).
    stream_time: i64,
}

/// A change of table state, for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub table: usize,
    pub group: Vec<u8>,
    pub window_start: i64,
    /// `None`: the group was removed (its window expired).
    pub value: Option<Vec<u8>>,
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

/// Updates `tables` with one input's rows (by relation), in file order.
fn update_tables(
    tables: &mut [TableRunner],
    rows: &[Option<Vec<Value>>],
    rowtime: i64,
    outputs: &mut Vec<OutputRecord>,
) {
    let ctx = Ctx { rowtime };
    for runner in tables {
        if let Some(row) = &rows[runner.query.input] {
            runner.update(row, &ctx, outputs);
        }
    }
}

/// How a pipelined batch shares its work, on one scale. At 0 the calling
/// thread decodes and runs the streams, the table thread runs every table.
/// Above 0, the first `n` tables run on the calling thread too. Below 0, the
/// table thread also decodes `-n` slices in every [`Balance::STEPS`]. Only one
/// side of the scale at a time: a table must see every record, so the
/// calling thread keeps tables only while it decodes every slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance(i32);

impl Balance {
    pub const STEPS: i32 = 16;

    /// `n` on the scale; out-of-range values are clamped when a batch runs.
    pub fn new(n: i32) -> Self {
        Balance(n)
    }

    fn clamped(self, tables: usize) -> Self {
        let most = i32::try_from(tables).unwrap_or(i32::MAX);
        Balance(self.0.clamp(-Self::STEPS / 2, most))
    }

    fn tables_on_caller(self) -> usize {
        usize::try_from(self.0).unwrap_or(0)
    }

    /// Whether slice `index` is decoded on the table thread: `-n` of every
    /// STEPS slices, spread evenly.
    fn table_thread_prepares(self, index: usize) -> bool {
        let share = i64::from((-self.0).max(0));
        let steps = i64::from(Self::STEPS);
        let i = (index as i64) % steps;
        (i + 1) * share / steps > i * share / steps
    }

    /// One step toward the thread that was idle longer, when the other was
    /// busier by more than a tenth.
    fn toward_idle(self, busy_here: Duration, busy_there: Duration, tables: usize) -> Self {
        let margin = |d: Duration| d + d / 10;
        let next = if busy_there > margin(busy_here) {
            self.0 + 1
        } else if busy_here > margin(busy_there) {
            self.0 - 1
        } else {
            self.0
        };
        Balance(next).clamped(tables)
    }
}

/// One table query with its state.
struct TableRunner {
    query: TableQuery,
    state: TableState,
    /// The output relation's key columns in GROUP BY order.
    key_columns: Vec<Column>,
    key_format: crate::plan::KeyFormat,
    layout: ObjectLayout,
    late_dropped: u64,
    null_key_dropped: u64,
    grouped: Vec<Value>,
    projected: Vec<Value>,
    /// Scratch buffers reused across updates.
    key_values: Vec<Value>,
    windows: Vec<(i64, i64)>,
    id: Vec<u8>,
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

    /// Runs every query over a batch. With `threads` above 1 it is a
    /// pipeline of two threads: this one decodes records and runs the stream
    /// queries on a slice of the batch while the other updates the tables
    /// with the slice before it. Work moves between them batch by batch,
    /// toward whichever thread was idle longer (see [`Balance`]); each
    /// table's state stays on one thread within a batch.
    /// Per relation, the output equals what [`Engine::process`] gives.
    pub fn process_batch(&mut self, inputs: &[InputRecord<'_>], threads: usize) -> BatchOutput {
        /// Records per slice: small, so that the pipeline fills and drains quickly.
        const SLICE: usize = 64;
        if threads <= 1 || inputs.len() <= SLICE {
            let mut prepared: Vec<Prepared> = inputs.iter().map(|i| self.prepare(i)).collect();
            for p in prepared.iter_mut() {
                self.apply(p);
            }
            return BatchOutput {
                prepared,
                tables: None,
            };
        }
        let mut tables = std::mem::take(&mut self.tables);
        let balance = self.balance.clamped(tables.len());
        let (here, there) = tables.split_at_mut(balance.tables_on_caller());
        let this = &*self;
        let (slices, table_outputs, busy_here, busy_there) = std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::channel::<Vec<Prepared>>();
            let table_thread = std::thread::Builder::new()
                .name("stream-sql-tables".into())
                .spawn_scoped(scope, move || {
                    let mut outputs = Vec::with_capacity(inputs.len() * 12);
                    let mut starts = Vec::with_capacity(inputs.len() + 1);
                    let mut slices = Vec::new();
                    let mut busy = Duration::ZERO;
                    for (index, slice) in inputs.chunks(SLICE).enumerate() {
                        let mut prepared = if balance.table_thread_prepares(index) {
                            let started = Instant::now();
                            let prepared = slice.iter().map(|i| this.prepare(i)).collect();
                            busy += started.elapsed();
                            prepared
                        } else {
                            match receiver.recv() {
                                Ok(prepared) => prepared,
                                Err(_) => break,
                            }
                        };
                        let started = Instant::now();
                        for p in prepared.iter_mut() {
                            starts.push(outputs.len());
                            update_tables(there, &p.rows, p.rowtime, &mut outputs);
                        }
                        busy += started.elapsed();
                        slices.push(prepared);
                    }
                    starts.push(outputs.len());
                    (slices, (outputs, starts), busy)
                })
                .expect("a thread can be started");
            let mut busy_here = Duration::ZERO;
            for (index, slice) in inputs.chunks(SLICE).enumerate() {
                if balance.table_thread_prepares(index) {
                    continue;
                }
                let started = Instant::now();
                let mut prepared: Vec<Prepared> = slice.iter().map(|i| this.prepare(i)).collect();
                for p in prepared.iter_mut() {
                    update_tables(here, &p.rows, p.rowtime, &mut p.outputs);
                }
                busy_here += started.elapsed();
                if sender.send(prepared).is_err() {
                    break;
                }
            }
            drop(sender);
            let (slices, outputs, busy_there) =
                table_thread.join().expect("the table thread panicked");
            (slices, outputs, busy_here, busy_there)
        });
        self.balance = balance.toward_idle(busy_here, busy_there, tables.len());
        self.tables = tables;
        let mut prepared: Vec<Prepared> = slices.into_iter().flatten().collect();
        for p in &mut prepared {
            // Freed by the thread that allocated them: cheaper than from the other.
            p.rows = Vec::new();
            self.records_in += 1;
            self.dead_letters += p.dead.len() as u64;
            self.records_out += p.outputs.len() as u64;
        }
        self.records_out += table_outputs.0.len() as u64;
        BatchOutput {
            prepared,
            tables: Some(table_outputs),
        }
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

impl TableRunner {
    fn update(&mut self, row: &[Value], ctx: &Ctx, out: &mut Vec<OutputRecord>) {
        let q = &self.query;
        if let Some(f) = &q.filter {
            if f.eval(row, ctx) != Value::Bool(true) {
                return;
            }
        }
        self.key_values.clear();
        self.key_values
            .extend(q.group_by.iter().map(|e| e.eval(row, ctx)));
        if self.key_values.iter().any(Value::is_null) {
            self.null_key_dropped += 1;
            return;
        }
        let state = &mut self.state;
        self.windows.clear();
        match q.window {
            None => self.windows.push((0, 0)),
            Some(w) => {
                state.stream_time = state.stream_time.max(ctx.rowtime);
                window_bounds_into(w, ctx.rowtime, &mut self.windows);
            }
        }
        // The group id: encoded key values, then the window start.
        let id = &mut self.id;
        id.clear();
        for v in &self.key_values {
            v.encode(id);
        }
        let key_len = id.len();
        id.extend_from_slice(&0i64.to_be_bytes());
        let key_values = &self.key_values;
        for &(start, end) in &self.windows {
            if q.window.is_some() && end + q.grace_ms <= state.stream_time {
                self.late_dropped += 1;
                continue;
            }
            id[key_len..].copy_from_slice(&start.to_be_bytes());
            if !state.groups.contains_key(id.as_slice()) {
                state.groups.insert(
                    id.clone(),
                    Group {
                        key_values: key_values.clone(),
                        accs: q.aggregates.iter().map(Acc::new).collect(),
                        emitted: false,
                    },
                );
            }
            let group = state.groups.get_mut(id.as_slice()).expect("just inserted");
            for (acc, call) in group.accs.iter_mut().zip(&q.aggregates) {
                let v = call
                    .arg
                    .as_ref()
                    .map(|e| e.eval(row, ctx))
                    .unwrap_or(Value::Null);
                acc.update(call.func, v);
            }
            let grouped = &mut self.grouped;
            grouped.clear();
            grouped.push(Value::Int(start));
            grouped.push(Value::Int(end));
            grouped.extend(group.key_values.iter().cloned());
            grouped.extend(group.accs.iter().map(Acc::result));
            let passes = q
                .having
                .as_ref()
                .is_none_or(|h| h.eval(grouped, ctx) == Value::Bool(true));
            let window_start = q.window.map(|_| start);
            let key = encode_key(
                self.key_format,
                &self.key_columns,
                &group.key_values,
                window_start,
            );
            if passes {
                self.projected.clear();
                self.projected
                    .extend(q.projection.iter().map(|e| e.eval(grouped, ctx)));
                let mut value = Vec::with_capacity(128);
                self.layout.write(&mut value, &self.projected);
                group.emitted = true;
                out.push(OutputRecord {
                    relation: q.output,
                    key,
                    value: Some(value),
                    timestamp: ctx.rowtime,
                    partition: None,
                });
            } else if group.emitted {
                group.emitted = false;
                out.push(OutputRecord {
                    relation: q.output,
                    key,
                    value: None,
                    timestamp: ctx.rowtime,
                    partition: None,
                });
            }
            if !state.dirty.contains(id.as_slice()) {
                state.dirty.insert(id.clone());
            }
        }
    }
}

/// The relation's key columns, ordered as its GROUP BY lists them.
fn key_columns_in_group_order(relation: &Relation, q: &TableQuery) -> Vec<Column> {
    (0..q.group_by.len())
        .map(|k| {
            let slot = TableQuery::key_slot(k);
            let position = q
                .projection
                .iter()
                .zip(&relation.columns)
                .position(|(e, c)| c.key && *e == crate::expr::CExpr::Column(slot))
                .expect("every group key is projected");
            relation.columns[position].clone()
        })
        .collect()
}

fn encode_group(g: &Group) -> Vec<u8> {
    let mut values = vec![
        Value::Bool(g.emitted),
        Value::Int(g.key_values.len() as i64),
    ];
    values.extend(g.key_values.iter().cloned());
    for acc in &g.accs {
        values.extend(acc.to_values());
    }
    encode_values(&values)
}

fn decode_group(bytes: &[u8], template: &[Acc]) -> Option<Group> {
    let values = decode_values(bytes)?;
    let Value::Bool(emitted) = values.first()? else {
        return None;
    };
    let Value::Int(nkeys) = values.get(1)? else {
        return None;
    };
    let nkeys = *nkeys as usize;
    let key_values = values.get(2..2 + nkeys)?.to_vec();
    let acc_values = values.get(2 + nkeys..)?;
    if acc_values.len() != template.len() * 2 {
        return None;
    }
    let accs = template
        .iter()
        .zip(acc_values.chunks(2))
        .map(|(t, pair)| Acc::from_values(t, pair[0].clone(), pair[1].clone()))
        .collect::<Option<Vec<_>>>()?;
    Some(Group {
        key_values,
        accs,
        emitted: *emitted,
    })
}

/// The windows `[start, end)` that contain `ts`.
pub fn window_bounds(w: WindowDef, ts: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    window_bounds_into(w, ts, &mut out);
    out
}

/// [`window_bounds`] into a reused buffer, oldest window first.
fn window_bounds_into(w: WindowDef, ts: i64, out: &mut Vec<(i64, i64)>) {
    match w {
        WindowDef::Tumbling { size_ms, .. } => {
            let start = ts - ts.rem_euclid(size_ms);
            out.push((start, start + size_ms));
        }
        WindowDef::Hopping {
            size_ms,
            advance_ms,
            ..
        } => {
            let last = ts - ts.rem_euclid(advance_ms);
            let first = out.len();
            let mut start = last;
            while start > ts - size_ms {
                out.push((start, start + size_ms));
                start -= advance_ms;
            }
            out[first..].reverse();
        }
    }
}

fn event_time(v: &Value) -> Option<i64> {
    match v {
        Value::Int(ms) => Some(*ms),
        Value::Str(s) => chrono_like_parse(s),
        _ => None,
    }
}

/// ISO-8601 `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` to epoch milliseconds.
fn chrono_like_parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        let ms3: String = format!("{digits:0<3}").chars().take(3).collect();
        millis = ms3.parse::<i64>().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "" | "Z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 60 + o.get(4..6)?.parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + se * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balance_spreads_decoding_and_moves_toward_the_idle_thread() {
        for n in 0..=8 {
            let balance = Balance::new(-n);
            let prepared = (0..32)
                .filter(|&i| balance.table_thread_prepares(i))
                .count();
            assert_eq!(prepared, 2 * n as usize, "{n}");
            assert_eq!(balance.tables_on_caller(), 0);
        }
        let ms = Duration::from_millis;
        let even = Balance::new(0);
        assert_eq!(even.toward_idle(ms(100), ms(105), 8), even);
        assert_eq!(even.toward_idle(ms(100), ms(150), 8), Balance::new(1));
        assert_eq!(even.toward_idle(ms(150), ms(100), 8), Balance::new(-1));
        assert_eq!(
            Balance::new(8).toward_idle(ms(1), ms(9), 8),
            Balance::new(8)
        );
        assert_eq!(
            Balance::new(-8).toward_idle(ms(9), ms(1), 8),
            Balance::new(-8)
        );
        assert_eq!(Balance::new(100).clamped(3).tables_on_caller(), 3);
    }

    #[test]
    fn hopping_windows_cover_the_record() {
        let w = WindowDef::Hopping {
            size_ms: 300,
            advance_ms: 100,
            grace_ms: None,
        };
        assert_eq!(
            window_bounds(w, 250),
            vec![(0, 300), (100, 400), (200, 500)]
        );
        let t = WindowDef::Tumbling {
            size_ms: 60,
            grace_ms: None,
        };
        assert_eq!(window_bounds(t, 125), vec![(120, 180)]);
    }

    #[test]
    fn iso_timestamps_parse() {
        assert_eq!(chrono_like_parse("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            chrono_like_parse("2026-11-24T07:47:40.000Z"),
            Some(1_795_506_460_000)
        );
        assert_eq!(chrono_like_parse("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(chrono_like_parse("nope"), None);
    }
}
