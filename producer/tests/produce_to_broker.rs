//! The producer against a real broker.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use lakehouse::topics::MALFORMED_HEADER;
use lakehouse::transaction::Transaction;
use lakehouse_producer::{produce, MalformedKind, ProduceError, ProduceOptions};
use lakehouse_testkit::TestContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::Message;

fn read_all(bootstrap: &str, topic: &str, expected: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = lakehouse::kafka::client_config(bootstrap)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < expected && started.elapsed() < Duration::from_secs(60) {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.unwrap().detach());
        }
    }
    out
}

#[test]
fn ten_thousand_valid_records_are_read_back_by_an_independent_client() {
    let ctx = TestContext::new("independent_reader");
    let topic = ctx.create_topic("transaction_log", 3);
    let mut options = ProduceOptions::new(ctx.bootstrap(), &topic);
    options.count = Some(10_000);
    options.seed = 7;
    options.threads = 2;
    let summary = produce(options).unwrap();
    assert_eq!(
        (summary.delivered, summary.failed, summary.malformed),
        (10_000, 0, 0)
    );

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/read_topic.py");
    let output = Command::new("python3")
        .args([
            script,
            "--bootstrap",
            ctx.bootstrap(),
            "--topic",
            &topic,
            "--expect",
            "10000",
        ])
        .output()
        .expect("python3 runs (scripts/install-prereqs.sh installs confluent-kafka)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "independent reader failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["count"], 10_000, "{report}");
    assert_eq!(report["valid"], 10_000, "{report}");
    assert_eq!(report["distinct_ids"], 10_000, "{report}");
}

#[test]
fn bad_records_are_damaged_marked_and_counted() {
    let ctx = TestContext::new("bad_ratio");
    let topic = ctx.create_topic("transaction_log", 2);
    let mut options = ProduceOptions::new(ctx.bootstrap(), &topic);
    options.count = Some(3_000);
    options.seed = 11;
    options.bad_ratio = 0.2;
    let summary = produce(options).unwrap();
    assert_eq!(summary.delivered, 3_000);
    let ratio = summary.malformed as f64 / 3_000.0;
    assert!(
        (0.16..0.24).contains(&ratio),
        "about 20% malformed, got {ratio}"
    );

    let messages = read_all(ctx.bootstrap(), &topic, 3_000);
    assert_eq!(messages.len(), 3_000);
    let mut kinds = HashSet::new();
    let mut marked = 0;
    for m in &messages {
        let kind = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == MALFORMED_HEADER)
                .and_then(|h| h.value)
                .map(|v| MalformedKind::from_name(std::str::from_utf8(v).unwrap()).unwrap())
        });
        let decoded = m
            .payload()
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|s| serde_json::from_str::<Transaction>(s).ok())
            .filter(|t| t.validate().is_ok());
        match kind {
            Some(kind) => {
                marked += 1;
                kinds.insert(kind);
                assert!(
                    decoded.is_none(),
                    "a record marked {kind:?} decoded as valid"
                );
            }
            None => assert!(decoded.is_some(), "an unmarked record is invalid"),
        }
    }
    assert_eq!(marked, summary.malformed);
    assert_eq!(
        kinds.len(),
        MalformedKind::ALL.len(),
        "every kind occurs: {kinds:?}"
    );
}

#[test]
fn records_are_paced_to_the_requested_rate() {
    let ctx = TestContext::new("rate");
    let topic = ctx.create_topic("transaction_log", 1);
    let mut options = ProduceOptions::new(ctx.bootstrap(), &topic);
    options.count = Some(150);
    options.rate = Some(100.0);
    produce(options).unwrap();
    let messages = read_all(ctx.bootstrap(), &topic, 150);
    let times: Vec<i64> = messages
        .iter()
        .map(|m| m.timestamp().to_millis().unwrap())
        .collect();
    // Record n is not sent before n / rate: 150 records at 100/s span at
    // least 1.49 s, and the first 51 at least 0.5 s (no initial burst).
    assert!(
        times[149] - times[0] >= 1_480,
        "span {} ms",
        times[149] - times[0]
    );
    assert!(
        times[50] - times[0] >= 490,
        "first 51 span {} ms",
        times[50] - times[0]
    );
}

#[test]
fn a_missing_topic_is_a_clear_error() {
    let ctx = TestContext::new("missing");
    let mut options = ProduceOptions::new(ctx.bootstrap(), ctx.topic_name("nope"));
    options.count = Some(1);
    let error = produce(options).unwrap_err();
    assert!(
        matches!(error, ProduceError::MissingTopic { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("lakectl up"));
}

/// The broker is killed and restarted three times under a paced run, as a
/// stack restart does to it, and its storage is held busy twice (SQLite
/// locked by another writer: Tansu answers "Unknown broker error", which
/// the Kafka client does not retry): what it refused is sent again within
/// the delivery timeout, so every record is delivered, none counts as
/// failed, and every transaction is in the topic.
#[test]
fn broker_restarts_and_a_busy_storage_under_a_run_lose_no_record() {
    use lakehouse::kafka::TopicSpec;
    use lakehouse_producer::{KeyMode, ProduceRun};

    let mut broker = lakehouse_testkit::Broker::start_with_topics(&[TopicSpec::new("restarts", 2)]);
    let mut options = ProduceOptions::new(broker.bootstrap(), "restarts");
    options.count = Some(3_000);
    options.rate = Some(250.0);
    options.threads = 2;
    options.seed = 21;
    options.key = KeyMode::TransactionId;
    let run = ProduceRun::start(options).unwrap();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(1_500));
        broker.kill();
        std::thread::sleep(Duration::from_millis(500));
        broker.restart();
        if round < 2 {
            std::thread::sleep(Duration::from_millis(1_000));
            let storage = rusqlite::Connection::open(broker.database()).unwrap();
            storage.execute_batch("BEGIN EXCLUSIVE").unwrap();
            std::thread::sleep(Duration::from_millis(1_500));
            storage.execute_batch("COMMIT").unwrap();
        }
    }
    let summary = run.finish();
    assert_eq!(
        (summary.delivered, summary.failed, summary.undelivered),
        (3_000, 0, 0),
        "{summary:?}"
    );
    assert!(
        summary.resent > 0,
        "the busy storage refused some: {summary:?}"
    );
    let ids: HashSet<Vec<u8>> = lakehouse_testkit::read_topic(&broker.bootstrap(), "restarts")
        .into_iter()
        .filter_map(|r| r.key)
        .collect();
    assert_eq!(ids.len(), 3_000, "every transaction is in the topic");
}
