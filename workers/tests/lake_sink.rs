//! The lake sink against a real broker: exactly once through kill -9 and
//! through rebalances between instances (one killed -9 while another lives), dead letters for every bad
//! record, and the lake read back by independent readers (DuckDB, pyarrow).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use lakehouse::kafka::{client_config, TopicSpec};
use lakehouse::topics::MALFORMED_HEADER;
use lakehouse_producer::{ProduceOptions, ProduceRun};
use lakehouse_testkit::{read_topic, Broker, ScratchDir, TopicRecord};
use rand::Rng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use support::{dead_letters, duplicates, lake_files, landed_rows, wait_for, SinkProcess};

const RAW: &str = "transaction_log";
const DERIVED: &str = "HIGH_AMOUNT";

fn start_broker() -> Broker {
    Broker::start_with_topics(&[TopicSpec::new(RAW, 3), TopicSpec::new(DERIVED, 3)])
}

/// Sends, waiting while the client's queue is full.
fn send_retrying<'a>(producer: &BaseProducer, mut record: BaseRecord<'a, (), str>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                producer.poll(Duration::from_millis(50));
                record = r;
            }
        }
    }
}

fn produce_transactions(bootstrap: &str, count: u64, rate: f64, bad_ratio: f64) -> ProduceRun {
    let mut options = ProduceOptions::new(bootstrap, RAW);
    options.count = Some(count);
    options.rate = Some(rate);
    options.seed = 7;
    options.bad_ratio = bad_ratio;
    ProduceRun::start(options).unwrap()
}

/// What stream SQL would write to HIGH_AMOUNT, including what a restarted
/// engine writes: replays of records already sent (same source position),
/// and now and then a record that does not fit the stream's schema.
/// Returns the distinct valid source positions and the positions of the bad records.
fn produce_derived(
    bootstrap: &str,
    count: usize,
    pause_per_hundred: Duration,
) -> (BTreeSet<String>, usize) {
    let producer: BaseProducer = client_config(bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut sent: Vec<Vec<(i32, String, String)>> = vec![Vec::new(); 3];
    let mut valid = BTreeSet::new();
    let mut bad = 0;
    let send = |partition: i32, value: &str, source: Option<&str>| {
        let mut record = BaseRecord::<(), str>::to(DERIVED)
            .partition(partition)
            .payload(value);
        if let Some(source) = source {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "x-lakehouse-source",
                value: Some(source),
            }));
        }
        send_retrying(&producer, record);
        producer.poll(Duration::ZERO);
    };
    for i in 0..count {
        let partition = (i % 3) as i32;
        let source = format!("{RAW}:{partition}:{}", i / 3);
        if i % 97 == 50 {
            send(
                partition,
                r#"{"TRANSACTION_ID":"TXN-bad","AMOUNT":"lots","CITY":"Paris"}"#,
                None,
            );
            bad += 1;
        }
        let value = format!(
            r#"{{"TRANSACTION_ID":"TXN-{i:08x}","AMOUNT":{}.5,"CITY":"Lyon"}}"#,
            500 + i % 400
        );
        send(partition, &value, Some(&source));
        valid.insert(source.clone());
        let history = &mut sent[partition as usize];
        history.push((partition, value, source));
        if i % 40 == 39 {
            // A restarted engine re-emits what followed its last checkpoint.
            for (p, v, s) in &history[history.len().saturating_sub(15)..] {
                send(*p, v, Some(s));
            }
        }
        if i % 100 == 0 {
            std::thread::sleep(pause_per_hundred);
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    (valid, bad)
}

/// Checks the raw topic: every offset landed or dead-lettered exactly once,
/// and the dead letters are exactly the malformed records, with their bytes.
fn assert_raw_topic_exactly_once(input: &[TopicRecord], lake: &std::path::Path) {
    let landed = landed_rows(lake, RAW);
    let dlq = dead_letters(lake, RAW);
    let landed_positions: Vec<(i32, i64)> =
        landed.iter().map(|r| (r.partition, r.offset)).collect();
    let dlq_positions: Vec<(i32, i64)> = dlq
        .iter()
        .map(|d| {
            (
                d["partition"].as_i64().unwrap() as i32,
                d["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        duplicates(landed_positions.clone()),
        vec![],
        "no record landed twice"
    );
    assert_eq!(
        duplicates(dlq_positions.clone()),
        vec![],
        "no record dead-lettered twice"
    );
    let all: BTreeSet<(i32, i64)> = input.iter().map(|r| (r.partition, r.offset)).collect();
    let mut seen: BTreeSet<(i32, i64)> = landed_positions.iter().copied().collect();
    assert!(seen.is_disjoint(&dlq_positions.iter().copied().collect()));
    seen.extend(dlq_positions.iter().copied());
    assert_eq!(
        seen, all,
        "every record is in the lake or its dead letters, nothing else"
    );

    let malformed: BTreeMap<(i32, i64), &TopicRecord> = input
        .iter()
        .filter(|r| r.headers.iter().any(|(k, _)| k == MALFORMED_HEADER))
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    assert!(!malformed.is_empty());
    assert_eq!(
        dlq_positions.iter().copied().collect::<BTreeSet<_>>(),
        malformed.keys().copied().collect(),
        "the dead letters are exactly the malformed records"
    );
    for entry in &dlq {
        let position = (
            entry["partition"].as_i64().unwrap() as i32,
            entry["offset"].as_i64().unwrap(),
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(entry["value_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(Some(raw), malformed[&position].value, "raw bytes kept");
        assert!(!entry["reason"].as_str().unwrap().is_empty());
        assert_eq!(entry["topic"], RAW);
    }
}

#[test]
fn kill_9_twenty_times_lands_every_record_exactly_once() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("lake-sink-crash");
    let sink = SinkProcess::new(&bootstrap, dir.path());

    // Slow enough that every kill lands while records flow (about 70 s).
    let producer = produce_transactions(&bootstrap, 8_000, 115.0, 0.03);
    let derived_done = Arc::new(AtomicBool::new(false));
    let derived = {
        let bootstrap = bootstrap.clone();
        let done = Arc::clone(&derived_done);
        std::thread::spawn(move || {
            let out = produce_derived(&bootstrap, 6_000, Duration::from_millis(1_000));
            done.store(true, Ordering::Relaxed);
            out
        })
    };

    let mut rng = rand::thread_rng();
    let mut child = sink.start();
    let mut kills = 0;
    let mut landed_at_kill = Vec::new();
    while !producer.generation_finished() || !derived_done.load(Ordering::Relaxed) || kills < 20 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1_500..5_000)));
        child.kill_9();
        kills += 1;
        landed_at_kill.push(lake_files(&sink.lake, ".parquet").len());
        child = sink.start();
    }
    // The kills hit a working sink: files kept appearing between kills. Not
    // between all of them: a restart spends a second or more rejoining, and
    // on a loaded 2-core machine a short interval can end before a file does.
    let progressed = landed_at_kill.windows(2).filter(|w| w[1] > w[0]).count();
    println!("data files at each kill: {landed_at_kill:?}");
    if let Ok(keep) = std::env::var("SINK_TEST_KEEP") {
        let _ = Command::new("cp")
            .arg("-r")
            .arg(dir.path())
            .arg(keep)
            .status();
    }
    assert!(
        progressed >= kills / 3,
        "the sink made progress between many kills: {landed_at_kill:?}"
    );
    let summary = producer.finish();
    assert_eq!(summary.delivered, 8_000);
    let (valid_sources, bad_derived) = derived.join().unwrap();

    let input = read_topic(&bootstrap, RAW);
    assert_eq!(input.len(), 8_000);
    wait_for("the raw topic to land", Duration::from_secs(180), || {
        landed_rows(&sink.lake, RAW).len() + dead_letters(&sink.lake, RAW).len() >= input.len()
    });
    wait_for(
        "the derived stream to land",
        Duration::from_secs(120),
        || {
            landed_rows(&sink.lake, DERIVED).len() >= valid_sources.len()
                && dead_letters(&sink.lake, DERIVED).len() >= bad_derived
        },
    );
    assert!(child.stop(), "graceful stop after SIGTERM");
    assert!(kills >= 20);

    assert_raw_topic_exactly_once(&input, &sink.lake);

    // The derived stream: each source position exactly once, replays dropped,
    // and the row kept is the first copy of its source.
    let landed = landed_rows(&sink.lake, DERIVED);
    let sources: Vec<String> = landed.iter().map(|r| r.source.clone().unwrap()).collect();
    assert_eq!(
        duplicates(sources.clone()),
        Vec::<String>::new(),
        "replays dropped"
    );
    assert_eq!(sources.into_iter().collect::<BTreeSet<_>>(), valid_sources);
    let derived_input = read_topic(&bootstrap, DERIVED);
    let mut first_copy: BTreeMap<String, (i32, i64)> = BTreeMap::new();
    for r in &derived_input {
        if let Some(s) = &r.source {
            first_copy
                .entry(s.clone())
                .or_insert((r.partition, r.offset));
        }
    }
    for row in &landed {
        assert_eq!(
            first_copy[row.source.as_ref().unwrap()],
            (row.partition, row.offset)
        );
    }
    let dlq = dead_letters(&sink.lake, DERIVED);
    assert_eq!(
        dlq.len(),
        bad_derived,
        "every record that does not fit the schema is a dead letter"
    );
    assert!(dlq
        .iter()
        .all(|d| d["reason"].as_str().unwrap().contains("schema")));

    // A graceful stop leaves no temporary file behind.
    let temps: Vec<_> = lake_files(&sink.lake, ".tmp");
    let hidden = walk_hidden(&sink.lake);
    assert!(temps.is_empty() && hidden.is_empty(), "{hidden:?}");
}

fn walk_hidden(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            out.push(path);
        } else if path.is_dir() {
            out.extend(walk_hidden(&path));
        }
    }
    out
}

/// Partitions move between instances of one group: a second instance joins
/// and takes a share, the first leaves cleanly mid-run and hands its share
/// over, a third joins, then one of the two live instances is killed -9
/// mid-run and the survivor, never restarted, lands everything.
///
/// The survivor takes the dead member's partitions by itself: on Tansu 0.6
/// through the group watch (it notices partitions whose lock nobody holds
/// and rejoins, BROKER.md); on Apache Kafka through the group's own
/// rebalance after the session timeout.
#[test]
fn partitions_move_between_instances_exactly_once() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("lake-sink-rebalance");
    let mut sink = SinkProcess::new(&bootstrap, dir.path());
    // Two live members heartbeat through Tansu's join pauses (BROKER.md).
    sink.session_timeout_ms = 5_000;

    let producer = produce_transactions(&bootstrap, 18_000, 300.0, 0.02);
    let mut first = sink.start();
    wait_for(
        "the first instance to land",
        Duration::from_secs(30),
        || !landed_rows(&sink.lake, RAW).is_empty(),
    );
    let mut second = sink.start();
    std::thread::sleep(Duration::from_secs(6));
    assert!(first.stop(), "the first instance leaves cleanly");
    let landed_by_second = landed_rows(&sink.lake, RAW).len();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        landed_rows(&sink.lake, RAW).len() > landed_by_second,
        "the second instance took over"
    );
    let mut third = sink.start();
    std::thread::sleep(Duration::from_secs(8));
    second.kill_9();
    let landed_at_kill = landed_rows(&sink.lake, RAW).len();
    assert!(
        !producer.generation_finished(),
        "the kill lands while records still flow"
    );
    while !producer.generation_finished() {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(producer.finish().delivered, 18_000);
    let input = read_topic(&bootstrap, RAW);
    wait_for(
        "the survivor to land everything",
        Duration::from_secs(120),
        || landed_rows(&sink.lake, RAW).len() + dead_letters(&sink.lake, RAW).len() >= input.len(),
    );
    assert!(landed_rows(&sink.lake, RAW).len() > landed_at_kill);
    assert!(third.stop(), "the survivor stops cleanly");
    println!(
        "group rejoins by the watch: {}",
        sink.log_lines_containing("leaving and rejoining")
    );
    assert_raw_topic_exactly_once(&input, &sink.lake);
}

#[test]
fn independent_readers_see_the_same_rows_and_types() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("lake-sink-interop");
    let sink = SinkProcess::new(&bootstrap, dir.path());
    let producer = produce_transactions(&bootstrap, 3_000, 3_000.0, 0.02);
    let (valid_sources, _) = produce_derived(&bootstrap, 1_000, Duration::ZERO);
    assert_eq!(producer.finish().delivered, 3_000);
    let mut child = sink.start();
    wait_for("the lake to fill", Duration::from_secs(120), || {
        landed_rows(&sink.lake, RAW).len() + dead_letters(&sink.lake, RAW).len() >= 3_000
            && landed_rows(&sink.lake, DERIVED).len() >= valid_sources.len()
    });
    assert!(child.stop());

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/read_lake.py");
    let output = lakehouse_testkit::stdout_of(Command::new("python3").arg(script).arg(&sink.lake));
    let report: serde_json::Value = serde_json::from_slice(&output).unwrap();
    for (topic, rows) in [
        (RAW, landed_rows(&sink.lake, RAW).len()),
        (DERIVED, valid_sources.len()),
    ] {
        for reader in ["duckdb", "pyarrow"] {
            assert_eq!(
                report[reader][topic]["rows"], rows as u64,
                "{reader} {topic}"
            );
        }
    }
    let duck = &report["duckdb"][RAW]["types"];
    assert_eq!(duck["amount"], "DOUBLE");
    assert_eq!(duck["quantity"], "INTEGER");
    assert_eq!(duck["customer_rating"], "INTEGER");
    assert_eq!(duck["location"], "STRUCT(city VARCHAR, country VARCHAR)");
    assert_eq!(duck["raw_json"], "VARCHAR");
    assert_eq!(duck["kafka_offset"], "BIGINT");
    assert_eq!(duck["kafka_timestamp"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(duck["ingestion_time"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(duck["ingestion_date"], "DATE", "the Hive partition column");
    let arrow = &report["pyarrow"][DERIVED]["types"];
    assert_eq!(arrow["AMOUNT"], "double");
    assert_eq!(arrow["CITY"], "string");
    assert_eq!(arrow["source_position"], "string");
    assert_eq!(arrow["kafka_timestamp"], "timestamp[ms, tz=UTC]");
    // Nulls survive: customer_rating is null about half the time.
    assert!(
        report["duckdb"][RAW]["nulls"]["customer_rating"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn a_broker_restart_mid_run_loses_nothing() {
    let mut broker = start_broker();
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("lake-sink-broker-restart");
    let sink = SinkProcess::new(&bootstrap, dir.path());
    let mut child = sink.start();
    let first = produce_transactions(&bootstrap, 1_000, 2_000.0, 0.02);
    assert_eq!(first.finish().delivered, 1_000);
    wait_for("the first half to land", Duration::from_secs(60), || {
        landed_rows(&sink.lake, RAW).len() + dead_letters(&sink.lake, RAW).len() >= 1_000
    });
    broker.kill();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    let mut options = ProduceOptions::new(&bootstrap, RAW);
    options.count = Some(1_000);
    options.seed = 8;
    options.bad_ratio = 0.02;
    assert_eq!(
        lakehouse_producer::produce(options).unwrap().delivered,
        1_000
    );
    let input = read_topic(&bootstrap, RAW);
    assert_eq!(input.len(), 2_000);
    wait_for("the second half to land", Duration::from_secs(90), || {
        landed_rows(&sink.lake, RAW).len() + dead_letters(&sink.lake, RAW).len() >= 2_000
    });
    assert!(child.stop());
    assert_raw_topic_exactly_once(&input, &sink.lake);
}

/// A derived stream as ksqlDB writes it (its JSON serialisation: values
/// with upper-case field names, no key without PARTITION BY, and none of
/// our headers): with no `x-lakehouse-source`, exactly once rests on the
/// topic's offsets alone, through kill -9 and restarts.
#[test]
fn ksqldb_output_without_source_headers_lands_each_offset_once() {
    const COUNT: usize = 3_000;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("lake-sink-ksqldb");
    let sink = SinkProcess::new(&bootstrap, dir.path());
    let mut child = sink.start();
    let feeder = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || {
            let producer: BaseProducer = client_config(&bootstrap).create().unwrap();
            for i in 0..COUNT {
                let value = format!(
                    r#"{{"TRANSACTION_ID":"TXN-{i:08x}","AMOUNT":{}.25,"CITY":"Lyon"}}"#,
                    700 + i % 300
                );
                let record = BaseRecord::<(), str>::to(DERIVED)
                    .partition((i % 3) as i32)
                    .payload(&value);
                send_retrying(&producer, record);
                if i % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            producer.flush(Duration::from_secs(30)).unwrap();
        })
    };
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(2_500));
        child.kill_9();
        child = sink.start();
    }
    feeder.join().unwrap();
    wait_for("the stream to land", Duration::from_secs(120), || {
        landed_rows(&sink.lake, DERIVED).len() >= COUNT
    });
    // The worker's own metrics endpoint (--metrics-listen) counts what it wrote.
    child.kill_9();
    let port = lakehouse::local::ports::free_port();
    let mut child = sink.start_with(&[("LAKEHOUSE_METRICS_LISTEN", format!("127.0.0.1:{port}"))]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_for("the metrics endpoint", Duration::from_secs(30), || {
        ureq::get(&url)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .is_some_and(|t| t.contains(r#"lakehouse_component_up{component="lake-sink"} 1"#))
    });
    let health = ureq::get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(child.stop(), "graceful stop after SIGTERM");
    let landed = landed_rows(&sink.lake, DERIVED);
    assert!(landed.iter().all(|r| r.source.is_none()));
    let positions: Vec<(i32, i64)> = landed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(
        duplicates(positions.clone()),
        Vec::<(i32, i64)>::new(),
        "each offset once"
    );
    let input: BTreeSet<(i32, i64)> = read_topic(&bootstrap, DERIVED)
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(
        positions.into_iter().collect::<BTreeSet<_>>(),
        input,
        "every offset"
    );
    assert!(dead_letters(&sink.lake, DERIVED).is_empty());
}
