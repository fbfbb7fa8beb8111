//! A table query's state and its update: groups by key (and window), their
//! accumulators, the output record of each change, the dropped updates
//! (late, NULL key), and the encoding the checkpoint keeps groups in.

use rustc_hash::{FxHashMap, FxHashSet};

use super::accumulators::Acc;
use super::windows::window_bounds_into;
use super::OutputRecord;
use crate::codec::{encode_key, ObjectLayout};
use crate::expr::Ctx;
use crate::plan::{Column, Relation, TableQuery};
use crate::value::{decode_values, encode_values, Value};

/// One group of a table (one key, and one window for windowed tables).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Group {
    pub(super) key_values: Vec<Value>,
    pub(super) accs: Vec<Acc>,
    /// A row for this key is in the output (so failing HAVING sends a tombstone).
    pub(super) emitted: bool,
}

/// A group's id: the encoded key values followed by the window start (8
/// bytes, big-endian; 0 for unwindowed tables). One flat byte string, so
/// lookups borrow it instead of allocating.
pub(super) fn group_id(key: &[u8], window_start: i64) -> Vec<u8> {
    let mut id = Vec::with_capacity(key.len() + 8);
    id.extend_from_slice(key);
    id.extend_from_slice(&window_start.to_be_bytes());
    id
}

pub(super) fn split_group_id(id: &[u8]) -> (&[u8], i64) {
    let (key, start) = id.split_at(id.len() - 8);
    (key, i64::from_be_bytes(start.try_into().expect("8 bytes")))
}

#[derive(Debug, Default)]
pub(super) struct TableState {
    pub(super) groups: FxHashMap<Vec<u8>, Group>,
    /// Changed since the last checkpoint (present: updated; absent: removed).
    pub(super) dirty: FxHashSet<Vec<u8>>,
    /// Highest event time seen (windowed tables).
    pub(super) stream_time: i64,
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

/// Updates `tables` with one input's rows (by relation), in file order.
pub(super) fn update_tables(
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

/// One table query with its state.
pub(super) struct TableRunner {
    pub(super) query: TableQuery,
    pub(super) state: TableState,
    /// The output relation's key columns in GROUP BY order.
    pub(super) key_columns: Vec<Column>,
    pub(super) key_format: crate::plan::KeyFormat,
    pub(super) layout: ObjectLayout,
    pub(super) late_dropped: u64,
    pub(super) null_key_dropped: u64,
    pub(super) grouped: Vec<Value>,
    pub(super) projected: Vec<Value>,
    /// Scratch buffers reused across updates.
    pub(super) key_values: Vec<Value>,
    pub(super) windows: Vec<(i64, i64)>,
    pub(super) id: Vec<u8>,
}

impl TableRunner {
    pub(super) fn update(&mut self, row: &[Value], ctx: &Ctx, out: &mut Vec<OutputRecord>) {
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
pub(super) fn key_columns_in_group_order(relation: &Relation, q: &TableQuery) -> Vec<Column> {
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

pub(super) fn encode_group(g: &Group) -> Vec<u8> {
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

pub(super) fn decode_group(bytes: &[u8], template: &[Acc]) -> Option<Group> {
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
