//! Checkpoints: table state and input positions committed together in one
//! SQLite transaction, so a restart resumes exactly where the state was saved.
//!
//! State is kept per statement: each table's groups under its name, and the
//! definition hash of every statement the state was computed for, so that a
//! changed statement file keeps what still fits (see [`crate::statements`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use md5::{Digest, Md5};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::engine::StateChange;
use crate::plan::{Plan, Query};
use crate::statements::{statement_hashes, table_names, StatementHash, StatementKind};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// What a restart resumes from.
#[derive(Debug, Default)]
pub struct Restored {
    /// Next offset to read, per (topic, partition).
    pub offsets: HashMap<(String, i32), i64>,
    /// Table state, numbered as the engine numbers its tables.
    pub state: Vec<StateChange>,
    pub stream_times: Vec<i64>,
}

/// What a checkpoint holds, read without changing it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The statements its state was computed for.
    pub statements: Vec<StatementHash>,
    /// Whether it holds any input position (else everything starts afresh).
    pub has_positions: bool,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));
    CREATE TABLE IF NOT EXISTS statements (name TEXT PRIMARY KEY, kind TEXT NOT NULL,
        hash TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS table_state (tbl TEXT NOT NULL, grp BLOB NOT NULL,
        window_start INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (tbl, grp, window_start));
    CREATE TABLE IF NOT EXISTS table_time (tbl TEXT PRIMARY KEY, t INTEGER NOT NULL);";

pub struct CheckpointStore {
    conn: Connection,
    /// The engine's tables by number.
    tables: Vec<String>,
}

impl CheckpointStore {
    /// What the store at `path` holds, if there is one, as `plan` would
    /// see it; reads only and creates nothing.
    pub fn peek(path: &Path, plan: &Plan) -> Result<Snapshot, CheckpointError> {
        if !path.exists() {
            return Ok(Snapshot::default());
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        if !has_table(&conn, "offsets")? {
            return Ok(Snapshot::default());
        }
        let has_positions = has_positions(&conn)?;
        let statements = if has_table(&conn, "state")? {
            legacy_statements(&conn, plan)?
        } else if has_table(&conn, "statements")? {
            stored_statements(&conn)?
        } else {
            Vec::new()
        };
        Ok(Snapshot {
            statements,
            has_positions,
        })
    }

    /// Opens (or creates) the store for `plan`'s engine; `reset` forgets
    /// everything it held.
    pub fn open(path: &Path, plan: &Plan, reset: bool) -> Result<Self, CheckpointError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        migrate_legacy(&mut conn, plan)?;
        if reset {
            conn.execute_batch(
                "DELETE FROM offsets; DELETE FROM statements; DELETE FROM table_state;
                 DELETE FROM table_time;",
            )?;
        }
        Ok(Self {
            conn,
            tables: table_names(plan),
        })
    }

    /// The statements the state was computed for, and whether the store
    /// holds any position.
    pub fn snapshot(&self) -> Result<Snapshot, CheckpointError> {
        Ok(Snapshot {
            statements: stored_statements(&self.conn)?,
            has_positions: has_positions(&self.conn)?,
        })
    }

    /// Next offset to read, per (topic, partition).
    pub fn offsets(&self) -> Result<HashMap<(String, i32), i64>, CheckpointError> {
        let mut stmt = self
            .conn
            .prepare("SELECT topic, partition, next_offset FROM offsets")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, i32>(1)?),
                r.get::<_, i64>(2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes the store hold the state of `current`'s statements: the
    /// state of tables in `kept` stays, every other table's is replaced by
    /// `rebuilt` (numbered as the engine numbers its tables, with their
    /// stream times), and statements no longer in the file are forgotten.
    /// One transaction: a crash leaves the old or the new, never a mix.
    pub fn adopt(
        &mut self,
        current: &[StatementHash],
        kept: &HashSet<String>,
        rebuilt: &[StateChange],
        rebuilt_times: &[(String, i64)],
    ) -> Result<(), CheckpointError> {
        let tx = self.conn.transaction()?;
        {
            let stored: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT tbl FROM table_state UNION SELECT tbl FROM table_time")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for name in stored.iter().filter(|n| !kept.contains(*n)) {
                tx.execute("DELETE FROM table_state WHERE tbl = ?1", [name])?;
                tx.execute("DELETE FROM table_time WHERE tbl = ?1", [name])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT INTO table_state (tbl, grp, window_start, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tbl, grp, window_start) DO UPDATE SET value = excluded.value",
            )?;
            for c in rebuilt {
                if let (Some(name), Some(v)) = (self.tables.get(c.table), &c.value) {
                    put.execute(params![name, c.group, c.window_start, v])?;
                }
            }
            let mut put_time = tx.prepare_cached(
                "INSERT INTO table_time (tbl, t) VALUES (?1, ?2)
                 ON CONFLICT (tbl) DO UPDATE SET t = excluded.t",
            )?;
            for (name, t) in rebuilt_times {
                put_time.execute(params![name, t])?;
            }
            tx.execute("DELETE FROM statements", [])?;
            let mut put_statement =
                tx.prepare_cached("INSERT INTO statements (name, kind, hash) VALUES (?1, ?2, ?3)")?;
            for s in current {
                put_statement.execute(params![s.name, s.kind.as_str(), s.hash])?;
            }
            tx.execute(
                "DELETE FROM table_time WHERE tbl NOT IN (SELECT name FROM statements)",
                [],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn load(&self) -> Result<Restored, CheckpointError> {
        let mut restored = Restored {
            offsets: self.offsets()?,
            ..Restored::default()
        };
        let number: HashMap<&str, usize> = self
            .tables
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut stmt = self
            .conn
            .prepare("SELECT tbl, grp, window_start, value FROM table_state")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        for row in rows {
            let (name, group, window_start, value) = row?;
            // State of a table the file no longer has is dropped by adopt;
            // until then it is not the engine's concern.
            if let Some(&table) = number.get(name.as_str()) {
                restored.state.push(StateChange {
                    table,
                    group,
                    window_start,
                    value: Some(value),
                });
            }
        }
        restored.stream_times = vec![0; self.tables.len()];
        let mut stmt = self.conn.prepare("SELECT tbl, t FROM table_time")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (name, t) = row?;
            if let Some(&i) = number.get(name.as_str()) {
                restored.stream_times[i] = t;
            }
        }
        Ok(restored)
    }

    /// Commits positions and state changes atomically.
    pub fn commit(
        &mut self,
        offsets: &HashMap<(String, i32), i64>,
        changes: &[StateChange],
        stream_times: &[i64],
    ) -> Result<(), CheckpointError> {
        let tx = self.conn.transaction()?;
        {
            let mut put_offset = tx.prepare_cached(
                "INSERT INTO offsets (topic, partition, next_offset) VALUES (?1, ?2, ?3)
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            )?;
            for ((topic, partition), offset) in offsets {
                put_offset.execute(params![topic, partition, offset])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT INTO table_state (tbl, grp, window_start, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tbl, grp, window_start) DO UPDATE SET value = excluded.value",
            )?;
            let mut delete = tx.prepare_cached(
                "DELETE FROM table_state WHERE tbl = ?1 AND grp = ?2 AND window_start = ?3",
            )?;
            for c in changes {
                let name = &self.tables[c.table];
                match &c.value {
                    Some(v) => put.execute(params![name, c.group, c.window_start, v])?,
                    None => delete.execute(params![name, c.group, c.window_start])?,
                };
            }
            let mut put_time = tx.prepare_cached(
                "INSERT INTO table_time (tbl, t) VALUES (?1, ?2)
                 ON CONFLICT (tbl) DO UPDATE SET t = excluded.t",
            )?;
            for (name, t) in self.tables.iter().zip(stream_times) {
                put_time.execute(params![name, t])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn has_positions(conn: &Connection) -> Result<bool, CheckpointError> {
    Ok(conn
        .query_row("SELECT 1 FROM offsets LIMIT 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, CheckpointError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn stored_statements(conn: &Connection) -> Result<Vec<StatementHash>, CheckpointError> {
    let mut stmt = conn.prepare("SELECT name, kind, hash FROM statements ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, kind, hash) = row?;
        if let Some(kind) = StatementKind::parse(&kind) {
            out.push(StatementHash { name, kind, hash });
        }
    }
    Ok(out)
}

/// Stores written before state was kept per statement held one
/// fingerprint of the file's tables, and state numbered by table. When the
/// fingerprint matches `plan`, its tables are `plan`'s (in order) and every
/// statement keeps its state; otherwise the streams carry on and the tables
/// are rebuilt (the old layout only ever refused table changes).
fn legacy_statements(
    conn: &Connection,
    plan: &Plan,
) -> Result<Vec<StatementHash>, CheckpointError> {
    let fingerprint: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'fingerprint'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let current = statement_hashes(plan);
    if fingerprint.as_deref() == Some(legacy_fingerprint(plan).as_str()) {
        Ok(current)
    } else {
        Ok(current
            .into_iter()
            .filter(|s| s.kind != StatementKind::Table)
            .collect())
    }
}

fn migrate_legacy(conn: &mut Connection, plan: &Plan) -> Result<(), CheckpointError> {
    if !has_table(conn, "state")? {
        return Ok(());
    }
    let statements = legacy_statements(conn, plan)?;
    let tables = table_names(plan);
    let matches = statements.iter().any(|s| s.kind == StatementKind::Table) || tables.is_empty();
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM statements", [])?;
    for s in &statements {
        tx.execute(
            "INSERT INTO statements (name, kind, hash) VALUES (?1, ?2, ?3)",
            params![s.name, s.kind.as_str(), s.hash],
        )?;
    }
    if matches {
        for (i, name) in tables.iter().enumerate() {
            tx.execute(
                "INSERT OR REPLACE INTO table_state (tbl, grp, window_start, value)
                 SELECT ?1, grp, window_start, value FROM state WHERE tbl = ?2",
                params![name, i as i64],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO table_time (tbl, t)
                 SELECT ?1, t FROM stream_time WHERE tbl = ?2",
                params![name, i as i64],
            )?;
        }
    }
    tx.execute_batch(
        "DROP TABLE state; DROP TABLE IF EXISTS stream_time;
         DELETE FROM meta WHERE key = 'fingerprint';",
    )?;
    tx.commit()?;
    tracing::info!(
        tables_kept = matches,
        "checkpoint converted to per-statement state"
    );
    Ok(())
}

/// The single fingerprint of the file's tables that stores kept before
/// state was per statement.
fn legacy_fingerprint(plan: &Plan) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statements::{diff, Change};

    const FILE: &str = "
        CREATE STREAM t (id VARCHAR, amount DOUBLE, kind VARCHAR) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');
        CREATE TABLE per_kind AS SELECT kind, SUM(amount) AS total FROM t GROUP BY kind;
        CREATE TABLE n_per_kind AS SELECT kind, COUNT(*) AS n FROM t GROUP BY kind;
    ";

    /// A store as written before state was kept per statement.
    fn legacy_store(path: &Path, fingerprint: &str) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));
             CREATE TABLE state (tbl INTEGER NOT NULL, grp BLOB NOT NULL,
                 window_start INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (tbl, grp, window_start));
             CREATE TABLE stream_time (tbl INTEGER PRIMARY KEY, t INTEGER NOT NULL);
             INSERT INTO offsets VALUES ('t', 0, 42);
             INSERT INTO state VALUES (1, x'01', 0, x'02');
             INSERT INTO stream_time VALUES (1, 7);",
        )
        .unwrap();
        conn.execute("INSERT INTO meta VALUES ('fingerprint', ?1)", [fingerprint])
            .unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lakehouse-checkpoint-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("store.sqlite")
    }

    #[test]
    fn a_legacy_store_of_the_same_tables_keeps_every_table_by_name() {
        let plan = crate::load(FILE).unwrap();
        let path = scratch("legacy-same");
        legacy_store(&path, &legacy_fingerprint(&plan));
        let peeked = CheckpointStore::peek(&path, &plan).unwrap();
        assert!(peeked.has_positions);
        let store = CheckpointStore::open(&path, &plan, false).unwrap();
        let snapshot = store.snapshot().unwrap();
        assert_eq!(peeked.statements, snapshot.statements);
        let changes = diff(&snapshot.statements, &statement_hashes(&plan));
        assert!(
            changes.iter().all(|c| c.change == Change::Unchanged),
            "{changes:?}"
        );
        let restored = store.load().unwrap();
        assert_eq!(restored.offsets[&("t".to_string(), 0)], 42);
        assert_eq!(restored.state.len(), 1);
        assert_eq!(restored.state[0].table, 1, "N_PER_KIND, the second table");
        assert_eq!(restored.stream_times, vec![0, 7]);
    }

    #[test]
    fn a_legacy_store_of_other_tables_rebuilds_the_tables_and_keeps_the_streams() {
        let plan = crate::load(FILE).unwrap();
        let path = scratch("legacy-other");
        legacy_store(&path, "another file");
        let store = CheckpointStore::open(&path, &plan, false).unwrap();
        let changes = diff(
            &store.snapshot().unwrap().statements,
            &statement_hashes(&plan),
        );
        for c in changes {
            let expected = if c.kind == StatementKind::Table {
                Change::New
            } else {
                Change::Unchanged
            };
            assert_eq!(c.change, expected, "{}", c.name);
        }
        assert!(store.load().unwrap().state.is_empty());
    }

    #[test]
    fn adopt_drops_the_state_of_removed_and_rebuilt_tables_only() {
        let plan = crate::load(FILE).unwrap();
        let path = scratch("adopt");
        let mut store = CheckpointStore::open(&path, &plan, false).unwrap();
        let change = |table: usize, group: u8| StateChange {
            table,
            group: vec![group],
            window_start: 0,
            value: Some(vec![group]),
        };
        let offsets = HashMap::from([(("t".to_string(), 0), 10)]);
        store
            .commit(&offsets, &[change(0, 1), change(1, 2)], &[3, 4])
            .unwrap();
        let kept = HashSet::from(["PER_KIND".to_string()]);
        store
            .adopt(
                &statement_hashes(&plan),
                &kept,
                &[change(1, 9)],
                &[("N_PER_KIND".to_string(), 5)],
            )
            .unwrap();
        let restored = store.load().unwrap();
        let mut groups: Vec<(usize, Vec<u8>)> = restored
            .state
            .iter()
            .map(|c| (c.table, c.group.clone()))
            .collect();
        groups.sort();
        assert_eq!(groups, vec![(0, vec![1]), (1, vec![9])]);
        assert_eq!(restored.stream_times, vec![3, 5]);
        assert_eq!(restored.offsets[&("t".to_string(), 0)], 10);
    }
}
