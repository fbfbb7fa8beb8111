//! Each statement of the file on its own, as ksqlDB treats each persistent
//! query: a definition hash per stream and table, and what a new file does
//! to the state a checkpoint holds (keep, build, rebuild, drop).
//!
//! A statement's hash covers what its output depends on: its columns,
//! topic, key format, window, its query (filter, projection, grouping,
//! aggregates, HAVING) and, through its input's hash, every statement
//! upstream. Line numbers and comments do not count, so moving a statement
//! or editing a comment keeps its state.

use std::collections::{HashMap, HashSet};

use md5::{Digest, Md5};
use serde::Serialize;

use crate::ast::RelationKind;
use crate::plan::{Plan, Query};

/// A statement's identity in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementHash {
    pub name: String,
    pub kind: StatementKind,
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// A stream declared over an existing topic: it is read, not written.
    Source,
    Stream,
    Table,
}

impl StatementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Source => "source",
            StatementKind::Stream => "stream",
            StatementKind::Table => "table",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "source" => Some(StatementKind::Source),
            "stream" => Some(StatementKind::Stream),
            "table" => Some(StatementKind::Table),
            _ => None,
        }
    }
}

/// The hash of every relation of the plan, in the plan's order.
pub fn statement_hashes(plan: &Plan) -> Vec<StatementHash> {
    let mut hashes: Vec<Option<String>> = vec![None; plan.relations.len()];
    // Sources first, then queries in file order: an input is always hashed
    // before the statements that read it.
    for (i, r) in plan.relations.iter().enumerate() {
        if r.is_source {
            hashes[i] = Some(digest(&relation_shape(plan, i)));
        }
    }
    for q in &plan.queries {
        let (input, output, query) = match q {
            Query::Stream(s) => (
                s.input,
                s.output,
                format!("stream|{:?}|{:?}", s.filter, s.projection),
            ),
            Query::Table(t) => (
                t.input,
                t.output,
                format!(
                    "table|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
                    t.filter,
                    t.group_by,
                    t.aggregates,
                    t.projection,
                    t.having,
                    t.window,
                    t.grace_ms
                ),
            ),
        };
        let upstream = hashes[input].clone().unwrap_or_default();
        hashes[output] = Some(digest(&format!(
            "{}#{query}#{upstream}",
            relation_shape(plan, output)
        )));
    }
    plan.relations
        .iter()
        .enumerate()
        .map(|(i, r)| StatementHash {
            name: r.name.clone(),
            kind: kind_of(plan, i),
            hash: hashes[i]
                .clone()
                .unwrap_or_else(|| digest(&relation_shape(plan, i))),
        })
        .collect()
}

/// Names of the plan's tables in the engine's order (file order of the
/// table queries): the engine numbers table state this way.
pub fn table_names(plan: &Plan) -> Vec<String> {
    plan.queries
        .iter()
        .filter_map(|q| match q {
            Query::Table(t) => Some(plan.relations[t.output].name.clone()),
            Query::Stream(_) => None,
        })
        .collect()
}

fn kind_of(plan: &Plan, i: usize) -> StatementKind {
    let r = &plan.relations[i];
    match r.kind {
        RelationKind::Stream if r.is_source => StatementKind::Source,
        RelationKind::Stream => StatementKind::Stream,
        RelationKind::Table => StatementKind::Table,
    }
}

fn relation_shape(plan: &Plan, i: usize) -> String {
    let r = &plan.relations[i];
    format!(
        "{}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        r.name,
        r.kind,
        r.is_source,
        r.topic,
        r.columns,
        r.key_format,
        r.window,
        r.partitions,
        r.timestamp_column
    )
}

fn digest(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a new statement file does to one statement's checkpointed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Same definition: keeps its state and position.
    Unchanged,
    /// Not in the checkpoint: built from the start of its input.
    New,
    /// A table whose definition changed: its state is dropped and it is
    /// rebuilt from the start of its input; keys it no longer produces are
    /// deleted (tombstoned) from its topic.
    Rebuilt,
    /// A stream whose definition changed: records from the checkpoint on
    /// follow the new definition; what the old one wrote stays (as
    /// ksqlDB's `CREATE OR REPLACE` does). Renaming the stream builds it
    /// from the start instead.
    Replaced,
    /// In the checkpoint, not in the file: it stops and its state is dropped.
    Removed,
}

/// One statement's line in the diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementChange {
    pub name: String,
    pub kind: StatementKind,
    pub change: Change,
}

/// Compares the statements a checkpoint holds with the file's.
/// `stored` is empty for a checkpoint that holds no position yet: then
/// nothing is kept and everything starts from the beginning anyway.
pub fn diff(stored: &[StatementHash], current: &[StatementHash]) -> Vec<StatementChange> {
    let by_name: HashMap<&str, &StatementHash> =
        stored.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut out: Vec<StatementChange> = current
        .iter()
        .map(|c| {
            let change = match by_name.get(c.name.as_str()) {
                None => Change::New,
                Some(s) if s.hash == c.hash && s.kind == c.kind => Change::Unchanged,
                // A table that became a stream (or back) is a new statement
                // under an old name: built from the start.
                Some(s) if s.kind != c.kind => Change::New,
                Some(_) if c.kind == StatementKind::Table => Change::Rebuilt,
                Some(_) => Change::Replaced,
            };
            StatementChange {
                name: c.name.clone(),
                kind: c.kind,
                change,
            }
        })
        .collect();
    let current_names: HashSet<&str> = current.iter().map(|c| c.name.as_str()).collect();
    out.extend(
        stored
            .iter()
            .filter(|s| !current_names.contains(s.name.as_str()))
            .map(|s| StatementChange {
                name: s.name.clone(),
                kind: s.kind,
                change: Change::Removed,
            }),
    );
    out
}

/// Whether the diff changes anything.
pub fn is_noop(changes: &[StatementChange]) -> bool {
    changes.iter().all(|c| c.change == Change::Unchanged)
}

/// The diff as `stream-sql check` prints it, for new statements starting
/// `from` the start or the end of their input.
pub fn describe_changes(changes: &[StatementChange], from: crate::runtime::StartFrom) -> String {
    let latest = from == crate::runtime::StartFrom::Latest;
    if is_noop(changes) {
        return "against the checkpoint: no change; every statement keeps its state\n".into();
    }
    let mut out = String::from("against the checkpoint:\n");
    for c in changes {
        let what = match (c.change, c.kind) {
            (Change::Unchanged, _) => "unchanged, keeps its state and position",
            (Change::New, StatementKind::Source) if latest => {
                "new source, read from its end (--new-statements-from latest)"
            }
            (Change::New, StatementKind::Source) => "new source, read from its beginning",
            (Change::New, _) if latest => {
                "new, starts empty on what arrives from now on (--new-statements-from latest)"
            }
            (Change::New, _) => "new, built from the start of its input",
            (Change::Rebuilt, _) => {
                "changed, rebuilt from the start of its input (state dropped, keys it no longer produces deleted)"
            }
            (Change::Replaced, StatementKind::Source) => {
                "changed source, read with its new columns from the checkpoint on"
            }
            (Change::Replaced, _) => {
                "changed, follows the new definition from the checkpoint on (what it wrote stays; rename it to rebuild it)"
            }
            (Change::Removed, StatementKind::Table) => "removed, stops and its state is dropped",
            (Change::Removed, _) => "removed, stops",
        };
        out.push_str(&format!("  {:<6} {:<34} {what}\n", c.kind.as_str(), c.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "
        CREATE STREAM t (id VARCHAR, amount DOUBLE, kind VARCHAR) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');
        CREATE STREAM big AS SELECT * FROM t WHERE amount > 10;
        CREATE TABLE per_kind AS SELECT kind, SUM(amount) AS total FROM t GROUP BY kind;
        CREATE TABLE big_per_kind AS SELECT kind, COUNT(*) AS n FROM big GROUP BY kind;
    ";

    fn hashes(src: &str) -> Vec<StatementHash> {
        statement_hashes(&crate::load(src).unwrap_or_else(|e| panic!("{e}")))
    }

    fn change_of(changes: &[StatementChange], name: &str) -> Change {
        changes
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("{name} in {changes:?}"))
            .change
    }

    #[test]
    fn the_same_file_with_moved_lines_and_comments_changes_nothing() {
        let moved = format!("-- a comment\n\n\n{BASE}");
        let changes = diff(&hashes(BASE), &hashes(&moved));
        assert!(is_noop(&changes), "{changes:?}");
    }

    #[test]
    fn an_added_table_is_new_and_the_others_keep_their_state() {
        let added = format!(
            "{BASE} CREATE TABLE n_per_kind AS SELECT kind, COUNT(*) AS n FROM t GROUP BY kind;"
        );
        let changes = diff(&hashes(BASE), &hashes(&added));
        assert_eq!(change_of(&changes, "n_per_kind"), Change::New);
        for name in ["t", "big", "per_kind", "big_per_kind"] {
            assert_eq!(change_of(&changes, name), Change::Unchanged, "{name}");
        }
    }

    #[test]
    fn a_changed_table_is_rebuilt_and_a_removed_one_dropped() {
        let changed = BASE
            .replace(
                "SUM(amount) AS total",
                "SUM(amount) AS total, MAX(amount) AS top",
            )
            .replace(
                "CREATE TABLE big_per_kind AS SELECT kind, COUNT(*) AS n FROM big GROUP BY kind;",
                "",
            );
        let changes = diff(&hashes(BASE), &hashes(&changed));
        assert_eq!(change_of(&changes, "per_kind"), Change::Rebuilt);
        assert_eq!(change_of(&changes, "big_per_kind"), Change::Removed);
        assert_eq!(change_of(&changes, "big"), Change::Unchanged);
    }

    #[test]
    fn a_changed_stream_changes_the_tables_downstream_of_it_only() {
        let changed = BASE.replace("WHERE amount > 10", "WHERE amount > 20");
        let changes = diff(&hashes(BASE), &hashes(&changed));
        assert_eq!(change_of(&changes, "big"), Change::Replaced);
        assert_eq!(change_of(&changes, "big_per_kind"), Change::Rebuilt);
        assert_eq!(change_of(&changes, "per_kind"), Change::Unchanged);
        let text = describe_changes(&changes, crate::runtime::StartFrom::Earliest);
        assert!(
            text.contains("BIG_PER_KIND") && text.contains("rebuilt"),
            "{text}"
        );
    }
}
