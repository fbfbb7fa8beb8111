//! Indexes the local broker's SQLite storage lacks for the queries it runs
//! on every record.
//!
//! Tansu 0.6.0 looks up each fetched record's headers with one query
//! (`header_fetch.sql`: `... where r.offset_id = $4` joined on
//! `header (topition, offset_id)`), but its schema (`ddl/040-header.sql`)
//! gives `header` no index, so every fetched record scans every header ever
//! written: fetches and produces slow down as data grows, until the broker
//! stops answering. Tansu's code and SQL stay as shipped; the stack adds the
//! index after Tansu has created its schema and before any client connects,
//! idempotently on every start (BROKER.md has the query plans and figures).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// (name, table, statement) of every index the stack adds. Each answers a
/// full scan that `EXPLAIN QUERY PLAN` showed in a query Tansu runs per
/// record or per request (BROKER.md lists them).
pub const INDEXES: &[(&str, &str, &str)] = &[
    (
        // header_fetch.sql, once per fetched record.
        "lakehouse_header_topition_offset",
        "header",
        "CREATE INDEX IF NOT EXISTS lakehouse_header_topition_offset ON header (topition, offset_id)",
    ),
    (
        // watermark_select*.sql and watermark_update.sql, per produced batch
        // and per fetched partition; list_latest_offset_*.sql per list-offsets.
        "lakehouse_watermark_topition",
        "watermark",
        "CREATE INDEX IF NOT EXISTS lakehouse_watermark_topition ON watermark (topition)",
    ),
];

/// Why the indexes could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the broker's storage {path} has no table {table} after {waited:?}")]
    NoSchema {
        path: String,
        table: &'static str,
        waited: Duration,
    },
    #[error("indexing the broker's storage {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
}

/// Creates every missing index of [`INDEXES`] in the SQLite file `db`,
/// waiting up to `timeout` for the broker to create the tables they index.
/// Returns the names of the indexes that were created now.
pub fn ensure_indexes(db: &Path, timeout: Duration) -> Result<Vec<&'static str>, IndexError> {
    let path = db.display().to_string();
    let sqlite = |source| IndexError::Sqlite {
        path: path.clone(),
        source,
    };
    let started = Instant::now();
    let conn = loop {
        if db.exists() {
            let conn = Connection::open(db).map_err(sqlite)?;
            // The broker holds the database; wait for its locks rather than fail.
            conn.busy_timeout(Duration::from_secs(30)).map_err(sqlite)?;
            let missing = INDEXES
                .iter()
                .map(|(_, table, _)| *table)
                .find(|table| !has_object(&conn, "table", table).unwrap_or(false));
            match missing {
                None => break conn,
                Some(table) if started.elapsed() >= timeout => {
                    return Err(IndexError::NoSchema {
                        path,
                        table,
                        waited: timeout,
                    })
                }
                Some(_) => {}
            }
        } else if started.elapsed() >= timeout {
            return Err(IndexError::NoSchema {
                path,
                table: INDEXES[0].1,
                waited: timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut created = Vec::new();
    for (name, _, statement) in INDEXES {
        if !has_object(&conn, "index", name).map_err(sqlite)? {
            conn.execute_batch(statement).map_err(sqlite)?;
            created.push(*name);
        }
    }
    Ok(created)
}

fn has_object(conn: &Connection, kind: &str, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = ?1 AND name = ?2",
        (kind, name),
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// `EXPLAIN QUERY PLAN` of `sql` (Tansu's `$n` parameters bound to null):
/// one line per step, e.g. `SEARCH h USING INDEX ...` or `SCAN h`.
pub fn query_plan(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
    let rows = statement.query_map(rusqlite::params_from_iter(nulls), |row| {
        row.get::<_, String>(3)
    })?;
    rows.collect()
}
