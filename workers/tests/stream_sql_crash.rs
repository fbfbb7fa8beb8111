//! `stream-sql run` against a real broker, killed with SIGKILL at random
//! moments while the producer runs: after dropping replays by source
//! position, every derived stream holds exactly the records the input
//! implies, and every table's final value per key equals the reference.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lakehouse::kafka::{ensure_topics, TopicSpec};
use lakehouse::transaction::Transaction;
use lakehouse_producer::{ProduceOptions, ProduceRun};
use lakehouse_testkit::{block_on, read_topic, terminate, wait_until_consumed, Broker, ScratchDir};
use rand::Rng;

const SQL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql");

fn start_engine(bootstrap: &str, dir: &ScratchDir) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stream-sql"))
        .args(["run", SQL, "--checkpoint-ms", "200"])
        .env("LAKEHOUSE_KAFKA_BOOTSTRAP", bootstrap)
        .env("LAKEHOUSE_STATE_DIR", dir.path().join("state"))
        .env("LAKEHOUSE_LOG_DIR", dir.path().join("log"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stream-sql")
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    block_on(ensure_topics(
        &bootstrap,
        &[TopicSpec::new("transaction_log", 3)],
    ))
    .unwrap();
    let dir = ScratchDir::new("stream-sql-crash");

    let mut options = ProduceOptions::new(&bootstrap, "transaction_log");
    options.count = Some(4_000);
    options.rate = Some(500.0);
    options.seed = 21;
    options.bad_ratio = 0.02;
    let producer = ProduceRun::start(options).unwrap();

    let mut rng = rand::thread_rng();
    let mut engine = start_engine(&bootstrap, &dir);
    let mut kills = 0;
    while !producer.generation_finished() || kills < 10 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..900)));
        engine.kill().unwrap(); // SIGKILL
        engine.wait().unwrap();
        kills += 1;
        engine = start_engine(&bootstrap, &dir);
    }
    let summary = producer.finish();
    assert_eq!(summary.delivered, 4_000);
    // The engine has checkpointed past every input record.
    wait_until_consumed(
        &bootstrap,
        "lakehouse_stream_sql",
        "transaction_log",
        Duration::from_secs(180),
    );
    terminate(&engine);
    assert!(
        engine.wait().unwrap().success(),
        "graceful stop after SIGTERM"
    );
    assert!(kills >= 10);

    // The input, as the reference sees it.
    let input = read_topic(&bootstrap, "transaction_log");
    assert_eq!(input.len(), 4_000);
    let mut valid: BTreeMap<String, (Transaction, i64)> = BTreeMap::new();
    for r in &input {
        let decoded = r
            .value
            .as_deref()
            .and_then(|v| serde_json::from_slice::<Transaction>(v).ok());
        if let Some(t) = decoded.filter(|t| t.validate().is_ok()) {
            valid.insert(r.position.clone(), (t, r.timestamp));
        }
    }

    // Streams: after dropping replays (same source position), exactly the expected sources.
    let distinct_sources = |topic: &str| -> (BTreeSet<String>, usize) {
        let records = read_topic(&bootstrap, topic);
        let total = records.len();
        (
            records
                .into_iter()
                .map(|r| r.source.expect("every derived record names its source"))
                .collect(),
            total,
        )
    };
    let (flat, flat_total) = distinct_sources("TRANSACTIONS_FLAT");
    let expected_flat: BTreeSet<String> = valid.keys().cloned().collect();
    assert!(
        expected_flat.is_subset(&flat),
        "every valid record reached TRANSACTIONS_FLAT"
    );
    assert!(flat_total >= flat.len());
    let (high, _) = distinct_sources("HIGH_AMOUNT_TRANSACTIONS");
    let expected_high: BTreeSet<String> = valid
        .iter()
        .filter(|(_, (t, _))| t.amount > 700.0)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        high.intersection(&expected_flat)
            .cloned()
            .collect::<BTreeSet<_>>(),
        expected_high
    );

    // Tables: the last value per key equals the reference over the valid records.
    let last_per_key = |topic: &str| -> HashMap<Vec<u8>, serde_json::Value> {
        let mut out = HashMap::new();
        for r in read_topic(&bootstrap, topic) {
            match r.value {
                Some(v) => out.insert(r.key.unwrap(), serde_json::from_slice(&v).unwrap()),
                None => out.remove(&r.key.unwrap()),
            };
        }
        out
    };
    // Malformed-but-decodable records (missing or oversized fields) also count in
    // tables, so the reference for counts is computed from what TRANSACTIONS_FLAT holds.
    let flat_rows: HashMap<String, serde_json::Value> = read_topic(&bootstrap, "TRANSACTIONS_FLAT")
        .into_iter()
        .map(|r| {
            (
                r.source.unwrap(),
                serde_json::from_slice(&r.value.unwrap()).unwrap(),
            )
        })
        .collect();
    let mut per_type: BTreeMap<String, (f64, i64)> = BTreeMap::new();
    let mut per_product: BTreeMap<String, i64> = BTreeMap::new();
    for row in flat_rows.values() {
        if let Some(ty) = row["TRANSACTION_TYPE"].as_str() {
            let e = per_type.entry(ty.to_string()).or_default();
            e.0 += row["AMOUNT"].as_f64().unwrap_or(0.0);
            e.1 += 1;
        }
        if let (Some(p), q) = (
            row["PRODUCT_ID"].as_str(),
            row["QUANTITY"].as_i64().unwrap_or(0),
        ) {
            *per_product.entry(p.to_string()).or_default() += q;
        }
    }
    for (source, (t, _)) in &valid {
        assert_eq!(
            flat_rows[source]["TRANSACTION_ID"],
            t.transaction_id.as_str()
        );
    }
    let table = last_per_key("TOTAL_PAR_TRANSACTION_TYPE");
    assert_eq!(table.len(), per_type.len());
    for (ty, (sum, n)) in &per_type {
        let row = &table[ty.as_bytes()];
        assert_eq!(row["TRANSACTION_COUNT"], *n, "{ty}: counted exactly once");
        assert!(
            (row["TOTAL_AMOUNT"].as_f64().unwrap() - sum).abs() < 1e-6 * sum.max(1.0),
            "{ty}"
        );
    }
    let table = last_per_key("QUANTITY_PAR_PRODUCT");
    for (p, q) in &per_product {
        assert_eq!(table[p.as_bytes()]["TOTAL_QUANTITY"], *q, "{p}");
    }
    let table = last_per_key("LATEST_STATUS_PAR_TRANSACTION");
    for (t, _) in valid.values() {
        assert_eq!(
            table[t.transaction_id.as_bytes()]["LATEST_STATUS"],
            t.status.as_str()
        );
    }

    // Dead letters: every record that a source stream could not decode is there, with a reason.
    let dlq = read_topic(&bootstrap, "stream_sql_dlq");
    let dlq_sources: BTreeSet<String> = dlq.iter().map(|r| r.source.clone().unwrap()).collect();
    let undecodable: BTreeSet<String> = input
        .iter()
        .filter(|r| {
            r.value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                .filter(|v| v.is_object())
                .is_none()
        })
        .map(|r| r.position.clone())
        .collect();
    assert!(!undecodable.is_empty());
    assert!(
        undecodable.is_subset(&dlq_sources),
        "every undecodable record is dead-lettered"
    );
}
