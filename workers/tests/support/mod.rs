//! Helpers for the lake sink tests: running the `lake-sink` binary and
//! reading the lake back independently of the sink's code.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A small catalog: the raw topic and one derived stream.
pub const SQL: &str = "
CREATE STREAM transactions_raw (
    transaction_id VARCHAR, amount DOUBLE, quantity INT, customer_rating INT,
    location STRUCT<city VARCHAR, country VARCHAR>
) WITH (KAFKA_TOPIC = 'transaction_log', VALUE_FORMAT = 'JSON');
CREATE STREAM high_amount AS
    SELECT transaction_id, amount, location->city AS city
    FROM transactions_raw WHERE amount > 500 EMIT CHANGES;
";

pub struct SinkProcess {
    pub bootstrap: String,
    pub sql: PathBuf,
    pub lake: PathBuf,
    pub log: PathBuf,
    /// Short for one instance killed over and over: its successor waits this
    /// long for the dead one's partitions.
    pub session_timeout_ms: u32,
}

impl SinkProcess {
    pub fn new(bootstrap: &str, dir: &Path) -> Self {
        let sql = dir.join("queries.sql");
        std::fs::write(&sql, SQL).unwrap();
        Self {
            bootstrap: bootstrap.to_string(),
            sql,
            lake: dir.join("data_lake"),
            log: dir.join("log"),
            session_timeout_ms: 2_000,
        }
    }

    /// Lines of the instances' logs that contain `text`.
    pub fn log_lines_containing(&self, text: &str) -> usize {
        let dir = self.log.join(lakehouse::logging::log_folder("lake-sink"));
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|log| log.lines().filter(|l| l.contains(text)).count())
            .sum()
    }

    /// Small files, quick rotation: many commit points for crashes to hit.
    pub fn start(&self) -> SinkChild {
        self.start_with(&[])
    }

    /// The same with extra environment variables.
    pub fn start_with(&self, env: &[(&str, String)]) -> SinkChild {
        let child = Command::new(env!("CARGO_BIN_EXE_lake-sink"))
            .arg("--sql")
            .arg(&self.sql)
            .args([
                "--max-file-records",
                "300",
                "--idle-ms",
                "200",
                "--max-file-age-ms",
                "500",
            ])
            .arg(format!("--session-timeout-ms={}", self.session_timeout_ms))
            .env("LAKEHOUSE_KAFKA_BOOTSTRAP", &self.bootstrap)
            .env("LAKEHOUSE_DATA_LAKE_DIR", &self.lake)
            .env("LAKEHOUSE_LOG_DIR", &self.log)
            .env("LAKEHOUSE_STATE_DIR", self.log.join("state"))
            .env(
                "RUST_LOG",
                std::env::var("SINK_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lake-sink");
        SinkChild(child)
    }
}

/// A running `lake-sink`, killed if the test panics so that nothing outlives it.
pub struct SinkChild(Child);

impl SinkChild {
    /// SIGKILL, as a crash would.
    pub fn kill_9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    /// SIGTERM, then waits: true when the sink stopped cleanly.
    pub fn stop(&mut self) -> bool {
        lakehouse_testkit::terminate(&self.0);
        self.0.wait().unwrap().success()
    }
}

impl Drop for SinkChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One landed row's lineage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LandedRow {
    pub partition: i32,
    pub offset: i64,
    pub source: Option<String>,
    pub file: PathBuf,
}

/// Every row of every complete data file of `topic`, read with the parquet
/// reader (not the sink's code).
pub fn landed_rows(lake: &Path, topic: &str) -> Vec<LandedRow> {
    let mut rows = Vec::new();
    for file in lake_files(&lake.join(topic), ".parquet") {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let partitions = batch
                .column_by_name("kafka_partition")
                .unwrap()
                .as_primitive::<Int32Type>()
                .clone();
            let offsets = batch
                .column_by_name("kafka_offset")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let sources = batch
                .column_by_name("source_position")
                .map(|c| c.as_string::<i32>().clone());
            for i in 0..batch.num_rows() {
                rows.push(LandedRow {
                    partition: partitions.value(i),
                    offset: offsets.value(i),
                    source: sources
                        .as_ref()
                        .filter(|s| !s.is_null(i))
                        .map(|s| s.value(i).to_string()),
                    file: file.clone(),
                });
            }
        }
    }
    rows
}

/// Every dead-letter entry of `topic`.
pub fn dead_letters(lake: &Path, topic: &str) -> Vec<serde_json::Value> {
    lake_files(&lake.join("_dlq").join(topic), ".jsonl")
        .into_iter()
        .flat_map(|f| {
            std::io::BufReader::new(File::open(f).unwrap())
                .lines()
                .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Complete files (not hidden temporaries) under `dir`, recursively.
pub fn lake_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            out.extend(lake_files(&path, suffix));
        } else if name.ends_with(suffix) && !name.starts_with('.') {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Counts of each key; the keys seen more than once.
pub fn duplicates<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect()
}

/// Waits until `done` holds, or panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
