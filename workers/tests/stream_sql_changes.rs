//! A statement file changed under a running system, against a real broker:
//! unchanged statements keep their state and position (their topics get no
//! record twice), a new table and a new stream are built from the start of
//! the input, a changed table is rebuilt on its own (keys it no longer
//! produces are tombstoned), a removed table stops; `stream-sql check` says
//! all of it before it happens. The changed engine is killed with SIGKILL
//! during its catch-up and started again. The worker binaries run on their
//! own follow their file: a stream and a table added to it reach the lake
//! and the warehouse with no restart.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lakehouse::kafka::{client_config, TopicSpec};
use lakehouse_testkit::{
    block_on, read_topic, stdout_of, terminate, wait_until_consumed, Broker, ScratchDir,
    TestContext,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const BEFORE: &str = "
CREATE STREAM t (id VARCHAR, amount BIGINT, kind VARCHAR)
  WITH (KAFKA_TOPIC='changes_in', VALUE_FORMAT='JSON');
CREATE STREAM big AS SELECT * FROM t WHERE amount >= 50;
CREATE TABLE per_kind AS SELECT kind, SUM(amount) AS total FROM t GROUP BY kind;
CREATE TABLE big_per_kind AS SELECT kind, COUNT(*) AS n FROM big GROUP BY kind;
CREATE TABLE gone AS SELECT kind, MAX(amount) AS top FROM t GROUP BY kind;
";

/// BEFORE with: per_kind unchanged (moved, with a comment), big_per_kind
/// changed (no longer counts kind c), gone removed, a new table and a new
/// stream.
const AFTER: &str = "
-- the same source, moved down a line
CREATE STREAM t (id VARCHAR, amount BIGINT, kind VARCHAR)
  WITH (KAFKA_TOPIC='changes_in', VALUE_FORMAT='JSON');

CREATE STREAM big AS SELECT * FROM t WHERE amount >= 50;
CREATE TABLE per_kind AS SELECT kind, SUM(amount) AS total FROM t GROUP BY kind;
CREATE TABLE big_per_kind AS SELECT kind, COUNT(*) AS n FROM big WHERE kind <> 'c' GROUP BY kind;
CREATE TABLE n_per_kind AS SELECT kind, COUNT(*) AS n FROM t GROUP BY kind;
CREATE STREAM huge AS SELECT id, amount FROM t WHERE amount >= 90;
";

const KINDS: [&str; 3] = ["a", "b", "c"];

fn record(i: u64) -> (String, u64, &'static str) {
    (format!("r{i}"), (i * 37) % 100, KINDS[(i % 3) as usize])
}

fn produce(bootstrap: &str, range: std::ops::Range<u64>) {
    let producer: BaseProducer = client_config(bootstrap).create().unwrap();
    for i in range {
        let (id, amount, kind) = record(i);
        let value = format!(r#"{{"id":"{id}","amount":{amount},"kind":"{kind}"}}"#);
        let mut r: BaseRecord<'_, str, str> = BaseRecord::to("changes_in")
            .payload(value.as_str())
            .key(id.as_str());
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn engine(bootstrap: &str, dir: &Path, sql: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stream-sql"))
        .args(["run", sql.to_str().unwrap(), "--checkpoint-ms", "200"])
        .args(extra)
        .env("LAKEHOUSE_KAFKA_BOOTSTRAP", bootstrap)
        .env("LAKEHOUSE_STATE_DIR", dir.join("state"))
        .env("LAKEHOUSE_LOG_DIR", dir.join("log"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stream-sql")
}

fn run_until_consumed(bootstrap: &str, dir: &Path, sql: &Path) {
    stop_once_consumed(bootstrap, engine(bootstrap, dir, sql, &[]));
}

/// Stops `child` gracefully once it has consumed all of the input.
fn stop_once_consumed(bootstrap: &str, mut child: Child) {
    wait_until_consumed(
        bootstrap,
        "lakehouse_stream_sql",
        "changes_in",
        Duration::from_secs(120),
    );
    // One more checkpoint interval so that the last outputs are flushed.
    std::thread::sleep(Duration::from_millis(600));
    terminate(&child);
    assert!(child.wait().unwrap().success(), "graceful stop");
}

fn check(dir: &Path, sql: &Path, extra: &[&str]) -> String {
    let out = stdout_of(
        Command::new(env!("CARGO_BIN_EXE_stream-sql"))
            .args(["check", sql.to_str().unwrap()])
            .args(extra)
            .env("LAKEHOUSE_STATE_DIR", dir.join("state")),
    );
    String::from_utf8(out).unwrap()
}

/// The last value per key of a table's topic (`None`: tombstoned).
fn final_values(bootstrap: &str, topic: &str) -> BTreeMap<String, Option<serde_json::Value>> {
    read_topic(bootstrap, topic)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.expect("table records have keys")).unwrap(),
                r.value.map(|v| serde_json::from_slice(&v).unwrap()),
            )
        })
        .collect()
}

fn line_of<'a>(report: &'a str, name: &str) -> &'a str {
    let against = report
        .split("against the checkpoint")
        .nth(1)
        .unwrap_or_else(|| panic!("a comparison in\n{report}"));
    against
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("{name} in\n{report}"))
}

#[test]
fn a_changed_file_keeps_unchanged_state_builds_new_statements_and_rebuilds_changed_ones() {
    let broker = Broker::start_with_topics(&[TopicSpec::new("changes_in", 2)]);
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("stream-sql-changes");
    let before = dir.path().join("before.sql");
    let after = dir.path().join("after.sql");
    std::fs::write(&before, BEFORE).unwrap();
    std::fs::write(&after, AFTER).unwrap();

    assert!(check(dir.path(), &before, &[]).contains("every statement starts from the beginning"));
    produce(&bootstrap, 0..1_500);
    run_until_consumed(&bootstrap, dir.path(), &before);
    let per_kind_records_before = read_topic(&bootstrap, "PER_KIND").len();
    assert_eq!(per_kind_records_before, 1_500, "one update per input");
    assert!(check(dir.path(), &before, &[]).contains("no change"));

    let report = check(dir.path(), &after, &[]);
    assert!(
        line_of(&report, "PER_KIND").contains("unchanged"),
        "{report}"
    );
    assert!(line_of(&report, "BIG").contains("unchanged"), "{report}");
    assert!(line_of(&report, "T").contains("unchanged"), "{report}");
    assert!(
        line_of(&report, "BIG_PER_KIND").contains("rebuilt"),
        "{report}"
    );
    assert!(line_of(&report, "N_PER_KIND").contains("new"), "{report}");
    assert!(line_of(&report, "HUGE").contains("new"), "{report}");
    assert!(line_of(&report, "GONE").contains("removed"), "{report}");

    // The changed file, killed during its catch-up, then run to the end
    // while more input arrives.
    let mut first = engine(&bootstrap, dir.path(), &after, &[]);
    std::thread::sleep(Duration::from_millis(1_500));
    first.kill().unwrap();
    first.wait().unwrap();
    produce(&bootstrap, 1_500..2_400);
    run_until_consumed(&bootstrap, dir.path(), &after);
    assert!(check(dir.path(), &after, &[]).contains("no change"));

    let all: Vec<(String, u64, &str)> = (0..2_400).map(record).collect();
    let reference = |keep: &dyn Fn(u64, &str) -> bool, sum: bool| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (_, amount, kind) in &all {
            if keep(*amount, kind) {
                *out.entry(kind.to_string()).or_default() += if sum { *amount } else { 1 };
            }
        }
        out
    };
    let as_numbers = |values: BTreeMap<String, Option<serde_json::Value>>, column: &str| {
        values
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v[column].as_u64().unwrap())))
            .collect::<BTreeMap<String, u64>>()
    };

    // Unchanged: its state carried on (totals over all the input) and it
    // wrote nothing twice (one update per input, no catch-up).
    assert_eq!(
        as_numbers(final_values(&bootstrap, "PER_KIND"), "TOTAL"),
        reference(&|_, _| true, true)
    );
    assert_eq!(read_topic(&bootstrap, "PER_KIND").len(), 2_400);
    // New: built from the start of the input.
    assert_eq!(
        as_numbers(final_values(&bootstrap, "N_PER_KIND"), "N"),
        reference(&|_, _| true, false)
    );
    // Rebuilt: the new definition over all the input; kind c, which it no
    // longer produces, is tombstoned.
    let rebuilt = final_values(&bootstrap, "BIG_PER_KIND");
    assert_eq!(rebuilt.get("c"), Some(&None), "{rebuilt:?}");
    assert_eq!(
        as_numbers(rebuilt, "N"),
        reference(&|amount, kind| amount >= 50 && kind != "c", false)
    );
    // A new stream: every qualifying input once by source position, the
    // replays of the killed catch-up included only as duplicates.
    let huge = read_topic(&bootstrap, "HUGE");
    let positions: BTreeSet<String> = huge.iter().map(|r| r.source.clone().unwrap()).collect();
    let expected: BTreeSet<String> = read_topic(&bootstrap, "changes_in")
        .into_iter()
        .filter(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            v["amount"].as_u64().unwrap() >= 90
        })
        .map(|r| r.position)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(positions, expected);
    // Unchanged stream: each input once, no catch-up copy.
    let big = read_topic(&bootstrap, "BIG");
    assert_eq!(
        big.len(),
        all.iter().filter(|(_, amount, _)| *amount >= 50).count()
    );
    // Removed: it stopped (nothing after the first run's records).
    assert_eq!(read_topic(&bootstrap, "GONE").len(), 1_500);
}

/// A worker process, killed if the test panics so that nothing outlives it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(kind, value)` of each row of a warehouse table, as text.
fn warehouse_values(url: &str, sql: &str) -> BTreeMap<String, u64> {
    block_on(async {
        let Ok(mut conn) =
            lakehouse::postgres::connect_with_retry(url, Duration::from_secs(30)).await
        else {
            return BTreeMap::new();
        };
        sqlx::query_as::<_, (String, i64)>(sql)
            .fetch_all(&mut conn)
            .await
            .map(|rows| rows.into_iter().map(|(k, v)| (k, v as u64)).collect())
            .unwrap_or_default()
    })
}

/// The engine, the lake sink and the table sink, each its own binary on
/// one statement file, as a cluster runs them: a stream and a table added
/// to the file are built from the start of the input and land in a new
/// lake folder and a new warehouse table, with no restart of any process;
/// a file that does not plan is refused and the workers run on.
#[test]
fn the_worker_binaries_follow_their_statement_file() {
    let broker = Broker::start_with_topics(&[TopicSpec::new("changes_in", 2)]);
    let bootstrap = broker.bootstrap();
    let mut ctx = TestContext::new("follow-file");
    let url = ctx.database();
    let dir = ScratchDir::new("stream-sql-follow");
    let mut lake_sink = support::SinkProcess::new(&bootstrap, dir.path());
    lake_sink.sql = dir.path().join("running.sql");
    std::fs::write(&lake_sink.sql, BEFORE).unwrap();
    let sql = lake_sink.sql.to_str().unwrap().to_string();
    let envs = [
        ("LAKEHOUSE_KAFKA_BOOTSTRAP", bootstrap.clone()),
        ("LAKEHOUSE_POSTGRES_URL", url.clone()),
        (
            "LAKEHOUSE_STATE_DIR",
            dir.path().join("state").display().to_string(),
        ),
        (
            "LAKEHOUSE_LOG_DIR",
            dir.path().join("log").display().to_string(),
        ),
        ("RUST_LOG", "info".to_string()),
    ];
    let start = |binary: &str, args: &[&str]| {
        Running(
            Command::new(binary)
                .args(args)
                .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let _engine = start(
        env!("CARGO_BIN_EXE_stream-sql"),
        &["run", &sql, "--checkpoint-ms", "200"],
    );
    let _tables = start(
        env!("CARGO_BIN_EXE_table-sink"),
        &["--sql", &sql, "--batch-ms", "100"],
    );
    let _lake = lake_sink.start();

    let all: Vec<(String, u64, &str)> = (0..600).map(record).collect();
    let count_per_kind = |keep: &dyn Fn(u64) -> bool| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (_, amount, kind) in &all {
            if keep(*amount) {
                *out.entry(kind.to_string()).or_default() += 1;
            }
        }
        out
    };
    produce(&bootstrap, 0..600);
    let totals = |column: &str, table: &str| {
        warehouse_values(&url, &format!("SELECT kind, {column}::int8 FROM {table}"))
    };
    support::wait_for("the first file's table", Duration::from_secs(120), || {
        totals("total", "per_kind").values().sum::<u64>()
            == all.iter().map(|(_, a, _)| a).sum::<u64>()
    });

    // A file that does not plan: refused by every worker, which runs on.
    std::fs::write(
        &lake_sink.sql,
        "CREATE TABLE broken AS SELECT nope FROM nowhere;",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    // The changed file: a new table and a new stream (and a removed table).
    std::fs::write(&lake_sink.sql, AFTER).unwrap();
    support::wait_for(
        "the new table in the warehouse",
        Duration::from_secs(120),
        || totals("n", "n_per_kind") == count_per_kind(&|_| true),
    );
    let qualifying = all.iter().filter(|(_, amount, _)| *amount >= 90).count();
    support::wait_for(
        "the new stream in the lake",
        Duration::from_secs(120),
        || support::landed_rows(&lake_sink.lake, "HUGE").len() == qualifying,
    );
    // The unchanged table carries on over new input.
    produce(&bootstrap, 600..700);
    let all: Vec<(String, u64, &str)> = (0..700).map(record).collect();
    support::wait_for(
        "new input in old and new tables",
        Duration::from_secs(120),
        || {
            totals("n", "n_per_kind").values().sum::<u64>() == 700
                && totals("total", "per_kind").values().sum::<u64>()
                    == all.iter().map(|(_, a, _)| a).sum::<u64>()
        },
    );
    let refused = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .flatten()
        .flat_map(|folder| {
            std::fs::read_dir(folder.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .filter(|log| log.contains("changed but is refused"))
        .count();
    assert!(
        refused >= 3,
        "each worker refused the broken file in its log ({refused})"
    );
}

/// `--new-statements-from latest`: a statement added to the file starts
/// empty on what arrives from then on (as ksqlDB's
/// `auto.offset.reset=latest`), `stream-sql check` says so, and the
/// unchanged statements carry on over all the input.
#[test]
fn a_new_statement_can_start_from_the_latest_offset() {
    let broker = Broker::start_with_topics(&[TopicSpec::new("changes_in", 2)]);
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("stream-sql-latest");
    let before = dir.path().join("before.sql");
    let after = dir.path().join("after.sql");
    std::fs::write(&before, BEFORE).unwrap();
    std::fs::write(
        &after,
        format!("{BEFORE}\nCREATE TABLE n_per_kind AS SELECT kind, COUNT(*) AS n FROM t GROUP BY kind;\n"),
    )
    .unwrap();
    produce(&bootstrap, 0..600);
    run_until_consumed(&bootstrap, dir.path(), &before);

    let latest = ["--new-statements-from", "latest"];
    let report = check(dir.path(), &after, &latest);
    assert!(
        line_of(&report, "N_PER_KIND").contains("starts empty on what arrives from now on"),
        "{report}"
    );
    let engine = engine(&bootstrap, dir.path(), &after, &latest);
    // Started (its topic exists) before the new input arrives.
    support::wait_for("the new table's topic", Duration::from_secs(60), || {
        lakehouse::kafka::partition_count(&bootstrap, "N_PER_KIND")
            .ok()
            .flatten()
            .is_some()
    });
    std::thread::sleep(Duration::from_secs(1));
    produce(&bootstrap, 600..750);
    stop_once_consumed(&bootstrap, engine);

    let counts = |range: std::ops::Range<u64>| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for i in range {
            *out.entry(record(i).2.to_string()).or_default() += 1;
        }
        out
    };
    let as_counts = |topic: &str, column: &str| {
        final_values(&bootstrap, topic)
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v[column].as_u64().unwrap())))
            .collect::<BTreeMap<String, u64>>()
    };
    assert_eq!(
        as_counts("N_PER_KIND", "N"),
        counts(600..750),
        "only the new input"
    );
    let totals: u64 = as_counts("PER_KIND", "TOTAL").values().sum();
    assert_eq!(
        totals,
        (0..750).map(|i| record(i).1).sum::<u64>(),
        "all of it"
    );
}
