//! The purge worker over a lake with back-dated partitions: dry run, real
//! run, per-topic retention, files still being written, the run record, and
//! the `lake-purge` binary.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use chrono::{Days, NaiveDate, Utc};
use lakehouse::lake::{partition_dir_name, OffsetRange};
use lakehouse_testkit::ScratchDir;
use lakehouse_workers::lake::files::{write_dlq_file, DataFile};
use lakehouse_workers::purge::{purge, recent_runs, record_run, RetentionPolicy};
use parquet::file::properties::WriterProperties;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(n: u64) -> NaiveDate {
    today().checked_sub_days(Days::new(n)).unwrap()
}

/// A data file of `rows` rows in `topic`'s partition for `date`.
fn data_file(lake: &Path, topic: &str, date: NaiveDate, first: i64, rows: i64) {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "kafka_offset",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from_iter_values(first..first + rows))],
    )
    .unwrap();
    let dir = lake.join(topic).join(partition_dir_name(date));
    let file = DataFile::create(&dir, 0, first, &batch, &WriterProperties::default()).unwrap();
    let range = OffsetRange {
        partition: 0,
        first,
        last: first + rows - 1,
    };
    file.finish(range, Vec::new()).unwrap();
}

fn dlq_file(lake: &Path, topic: &str, date: NaiveDate, offset: i64) {
    let dir = lake.join("_dlq").join(topic).join(partition_dir_name(date));
    let range = OffsetRange {
        partition: 0,
        first: offset,
        last: offset,
    };
    write_dlq_file(&dir, range, &[br#"{"reason":"bad"}"#.to_vec()]).unwrap();
}

/// transaction_log: 40, 10 and 0 days old; HOT: 2 days and today; dead letters 40 days old.
fn back_dated_lake(lake: &Path) {
    data_file(lake, "transaction_log", days_ago(40), 0, 100);
    data_file(lake, "transaction_log", days_ago(40), 100, 50);
    data_file(lake, "transaction_log", days_ago(10), 150, 20);
    data_file(lake, "transaction_log", today(), 170, 5);
    data_file(lake, "HOT", days_ago(2), 0, 7);
    data_file(lake, "HOT", today(), 7, 3);
    dlq_file(lake, "transaction_log", days_ago(40), 42);
}

fn dates_of(lake: &Path, topic: &str) -> Vec<NaiveDate> {
    lakehouse::lake::date_partitions(&lake.join(topic))
        .unwrap()
        .into_iter()
        .map(|p| p.date)
        .collect()
}

#[test]
fn dry_run_lists_what_would_go_and_removes_nothing() {
    let dir = ScratchDir::new("purge-dry");
    let lake = dir.path().join("data_lake");
    back_dated_lake(&lake);
    let policy = RetentionPolicy::new(30).with_overrides("HOT=1").unwrap();
    let report = purge(&lake, &policy, today(), true).unwrap();
    assert!(report.dry_run);
    let listed: Vec<(String, bool, NaiveDate, u64, u64)> = report
        .partitions
        .iter()
        .map(|p| (p.topic.clone(), p.dead_letters, p.date, p.files, p.rows))
        .collect();
    assert_eq!(
        listed,
        [
            ("HOT".to_string(), false, days_ago(2), 1, 7),
            ("transaction_log".to_string(), false, days_ago(40), 2, 150),
            ("transaction_log".to_string(), true, days_ago(40), 1, 1),
        ]
    );
    assert!(report.bytes > 0);
    assert_eq!(
        dates_of(&lake, "transaction_log"),
        [days_ago(40), days_ago(10), today()]
    );
    assert_eq!(dates_of(&lake, "HOT"), [days_ago(2), today()]);
}

#[test]
fn a_real_run_removes_expired_partitions_never_today_and_records_itself() {
    let dir = ScratchDir::new("purge-real");
    let lake = dir.path().join("data_lake");
    let log = dir.path().join("log");
    back_dated_lake(&lake);
    // A writer still busy in an expired partition (e.g. a file opened before midnight).
    let busy = lake.join("HOT").join(partition_dir_name(days_ago(2)));
    std::fs::write(
        busy.join(".part-00001-0000000000000000000.parquet.tmp"),
        b"in progress",
    )
    .unwrap();

    let policy = RetentionPolicy::new(30).with_overrides("HOT=0").unwrap();
    let report = purge(&lake, &policy, today(), false).unwrap();
    record_run(&log, &report).unwrap();
    assert_eq!(report.rows, 7 + 150 + 1);
    assert_eq!(dates_of(&lake, "transaction_log"), [days_ago(10), today()]);
    assert!(!lake
        .join("_dlq/transaction_log")
        .join(partition_dir_name(days_ago(40)))
        .exists());
    // Retention 0 keeps today's partition; the busy folder stays with only the file in progress.
    assert_eq!(dates_of(&lake, "HOT"), [days_ago(2), today()]);
    let left: Vec<_> = std::fs::read_dir(&busy)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(report.partitions[0].kept_in_progress, 1);

    // The next run finds nothing more to remove, and both runs are on record.
    let again = purge(&lake, &RetentionPolicy::new(30), today(), false).unwrap();
    record_run(&log, &again).unwrap();
    assert_eq!(again.rows, 0);
    let runs = recent_runs(&log, 10);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0], report);
    assert!(log.join("purge/purge-runs.jsonl").exists());
}

#[test]
fn the_binary_runs_once_and_names_a_bad_setting() {
    let dir = ScratchDir::new("purge-bin");
    let lake = dir.path().join("data_lake");
    back_dated_lake(&lake);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lake-purge"))
            .args(args)
            .env("LAKEHOUSE_DATA_LAKE_DIR", &lake)
            .env("LAKEHOUSE_LOG_DIR", dir.path().join("log"))
            .env("LAKEHOUSE_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap()
    };
    let out = run(&["--once", "--dry-run", "--retention-days", "5"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("would remove 3 partitions"), "{table}");
    assert_eq!(dates_of(&lake, "transaction_log").len(), 3, "dry run");

    let out = run(&["--once", "--retention", "HOT=soon"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOT=soon"));

    let out = run(&["--once", "--retention-days", "5"]);
    assert!(out.status.success());
    assert_eq!(dates_of(&lake, "transaction_log"), [today()]);
    assert_eq!(
        recent_runs(&dir.path().join("log"), 5).len(),
        2,
        "the failed run removed nothing and left no record"
    );
}
