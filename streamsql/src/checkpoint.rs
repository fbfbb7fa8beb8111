//! Checkpoints: table state and input positions committed together in one
//! SQLite transaction, so a restart resumes exactly where the state was saved.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::StateChange;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the statement file changed since the last checkpoint in {path}; \
         its table state no longer matches. Start over with --reset-state \
         (derived topics are then recomputed from the start of the input)"
    )]
    PlanChanged { path: String },
}

/// What a restart resumes from.
#[derive(Debug, Default)]
pub struct Restored {
    /// Next offset to read, per (topic, partition).
    pub offsets: HashMap<(String, i32), i64>,
    pub state: Vec<StateChange>,
    pub stream_times: Vec<i64>,
}

pub struct CheckpointStore {
    conn: Connection,
}

impl CheckpointStore {
    /// Whether a store (if there is one) holds the state of `fingerprint`'s
    /// tables: what a restart would refuse, said before anything starts.
    /// Reads only; creates nothing.
    pub fn check(path: &Path, fingerprint: &str) -> Result<(), CheckpointError> {
        if !path.exists() {
            return Ok(());
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let stored: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'fingerprint'",
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // A store created but never written holds nothing to keep.
                rusqlite::Error::SqliteFailure(..) => Ok(None),
                e => Err(e),
            })?;
        match stored {
            Some(f) if f != fingerprint => Err(CheckpointError::PlanChanged {
                path: path.display().to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Opens (or creates) the store; `fingerprint` identifies the statement
    /// file whose state it holds.
    pub fn open(path: &Path, fingerprint: &str, reset: bool) -> Result<Self, CheckpointError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));
             CREATE TABLE IF NOT EXISTS state (tbl INTEGER NOT NULL, grp BLOB NOT NULL,
                 window_start INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (tbl, grp, window_start));
             CREATE TABLE IF NOT EXISTS stream_time (tbl INTEGER PRIMARY KEY, t INTEGER NOT NULL);",
        )?;
        let stored: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'fingerprint'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match stored {
            Some(f) if f == fingerprint => {}
            Some(_) if !reset => {
                return Err(CheckpointError::PlanChanged {
                    path: path.display().to_string(),
                })
            }
            _ => {
                conn.execute_batch(
                    "DELETE FROM offsets; DELETE FROM state; DELETE FROM stream_time;",
                )?;
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('fingerprint', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [fingerprint],
                )?;
            }
        }
        Ok(Self { conn })
    }

    pub fn load(&self) -> Result<Restored, CheckpointError> {
        let mut restored = Restored::default();
        let mut stmt = self
            .conn
            .prepare("SELECT topic, partition, next_offset FROM offsets")?;
        for row in stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, i32>(1)?),
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (k, v) = row?;
            restored.offsets.insert(k, v);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT tbl, grp, window_start, value FROM state")?;
        for row in stmt.query_map([], |r| {
            Ok(StateChange {
                table: r.get::<_, i64>(0)? as usize,
                group: r.get(1)?,
                window_start: r.get(2)?,
                value: Some(r.get(3)?),
            })
        })? {
            restored.state.push(row?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT tbl, t FROM stream_time ORDER BY tbl")?;
        for row in stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)?))
        })? {
            let (i, t) = row?;
            if restored.stream_times.len() <= i {
                restored.stream_times.resize(i + 1, 0);
            }
            restored.stream_times[i] = t;
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
                "INSERT INTO state (tbl, grp, window_start, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tbl, grp, window_start) DO UPDATE SET value = excluded.value",
            )?;
            let mut delete = tx.prepare_cached(
                "DELETE FROM state WHERE tbl = ?1 AND grp = ?2 AND window_start = ?3",
            )?;
            for c in changes {
                match &c.value {
                    Some(v) => put.execute(params![c.table as i64, c.group, c.window_start, v])?,
                    None => delete.execute(params![c.table as i64, c.group, c.window_start])?,
                };
            }
            let mut put_time = tx.prepare_cached(
                "INSERT INTO stream_time (tbl, t) VALUES (?1, ?2) ON CONFLICT (tbl) DO UPDATE SET t = excluded.t",
            )?;
            for (i, t) in stream_times.iter().enumerate() {
                put_time.execute(params![i as i64, t])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
