//! Table sink benchmark; prints a Markdown table for BENCHMARKS.md.
//!
//!   cargo bench -p lakehouse-workers --bench table_sink
//!   cargo bench -p lakehouse-workers --bench table_sink -- latency
//!   BENCH_UPDATES=1000000 BENCH_KEYS=100000 cargo bench -p lakehouse-workers --bench table_sink
//!
//! A changelog of BENCH_UPDATES updates over BENCH_KEYS keys goes through
//! the table sink's write path (decode, deduplicate per batch, UNNEST
//! upserts, offsets in the same transaction) into a local PostgreSQL, per
//! batch size; next to it, in the same run, a plain `COPY` of the same rows
//! into an empty table without a key.

use std::sync::Arc;
use std::time::Instant;

use lakehouse_testkit::{block_on, Postgres};
use lakehouse_workers::sink::{Assigned, Record, Sink, TopicPartition};
use lakehouse_workers::warehouse::{warehouse_tables, TableSink, TableSinkConfig, TableSinkStats};
use sqlx::Connection;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SQL: &str = "CREATE STREAM src (product_id VARCHAR, amount DOUBLE, status VARCHAR)
        WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');
    CREATE TABLE totals WITH (KAFKA_TOPIC='TOTALS') AS
        SELECT product_id, COUNT(*) AS n, SUM(amount) AS total, LATEST_BY_OFFSET(status) AS status
        FROM src GROUP BY product_id EMIT CHANGES;";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Update {
    key: Vec<u8>,
    value: String,
}

fn changelog(updates: usize, keys: usize) -> Vec<Update> {
    let statuses = ["completed", "pending", "failed", "processing", "cancelled"];
    (0..updates)
        .map(|i| {
            // A spread of keys, as GROUP BY output is: consecutive updates rarely share one.
            let key = (i * 7_919) % keys;
            Update {
                key: format!("PROD-{key:06}").into_bytes(),
                value: format!(
                    r#"{{"N":{},"TOTAL":{}.25,"STATUS":"{}"}}"#,
                    i / keys + 1,
                    i % 1000,
                    statuses[i % statuses.len()]
                ),
            }
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "latency") {
        latency();
        return;
    }
    let (updates, keys) = (
        env_usize("BENCH_UPDATES", 1_000_000),
        env_usize("BENCH_KEYS", 100_000),
    );
    let postgres = Postgres::start();
    let changes = changelog(updates, keys);
    println!("changelog: {updates} updates over {keys} keys, local PostgreSQL 15 (fsync on)\n");
    println!("| writer | batch | rows | seconds | rows/s | vs COPY |");
    println!("|---|---:|---:|---:|---:|---:|");
    let copy_seconds = copy(&postgres, &changes);
    println!(
        "| plain COPY into an empty table, no key | all | {updates} | {copy_seconds:.2} | {:.0} | 1.00 |",
        updates as f64 / copy_seconds
    );
    for batch in [5_000, 20_000, 100_000] {
        let seconds = upserts(&postgres, &changes, batch);
        println!(
            "| table sink upserts (+ offsets, one transaction per batch) | {batch} | {updates} | {seconds:.2} | {:.0} | {:.2} |",
            updates as f64 / seconds,
            copy_seconds / seconds
        );
    }
    println!(
        "\npeak RSS of the benchmark process: {} MiB",
        lakehouse_testkit::peak_rss_mib()
    );
}

fn fresh_database(postgres: &Postgres, name: &str) -> String {
    block_on(lakehouse::postgres::create_database_if_missing(
        &postgres.admin_url(),
        name,
    ))
    .unwrap();
    postgres.url(name)
}

fn upserts(postgres: &Postgres, changes: &[Update], batch: usize) -> f64 {
    let url = fresh_database(postgres, &format!("bench_upsert_{batch}"));
    let plan = lakehouse_streamsql::load(SQL).unwrap();
    let mut config = TableSinkConfig::new(&url, "bench");
    config.batch_records = batch;
    config.max_staged_records = batch;
    let (mut sink, _) = TableSink::connect(
        config,
        warehouse_tables(&plan),
        Arc::new(TableSinkStats::default()),
    )
    .unwrap();
    sink.open(&[Assigned {
        partition: TopicPartition::new("TOTALS", 0),
        committed: None,
    }])
    .unwrap();
    let started = Instant::now();
    for (offset, change) in changes.iter().enumerate() {
        let record = Record {
            topic: "TOTALS",
            partition: 0,
            offset: offset as i64,
            timestamp_ms: None,
            key: Some(&change.key),
            value: Some(change.value.as_bytes()),
            source: None,
        };
        sink.write(&record).unwrap();
        if sink.is_full() {
            sink.flush(Instant::now(), true).unwrap();
        }
    }
    sink.flush(Instant::now(), true).unwrap();
    started.elapsed().as_secs_f64()
}

fn copy(postgres: &Postgres, changes: &[Update]) -> f64 {
    let url = fresh_database(postgres, "bench_copy");
    block_on(async {
        let mut conn =
            lakehouse::postgres::connect_with_retry(&url, std::time::Duration::from_secs(10))
                .await
                .unwrap();
        sqlx::raw_sql("CREATE TABLE copy_target (product_id text, n bigint, total double precision, status text, ingestion_time timestamptz DEFAULT now())")
            .execute(&mut conn)
            .await
            .unwrap();
        let started = Instant::now();
        // The same decoded rows the sink writes, as CSV.
        let mut csv = String::with_capacity(changes.len() * 48);
        for change in changes {
            let v: serde_json::Value = serde_json::from_str(&change.value).unwrap();
            csv.push_str(&format!(
                "{},{},{},{}\n",
                std::str::from_utf8(&change.key).unwrap(),
                v["N"],
                v["TOTAL"],
                v["STATUS"].as_str().unwrap()
            ));
        }
        let mut tx = conn.begin().await.unwrap();
        let mut copy = tx
            .copy_in_raw("COPY copy_target (product_id, n, total, status) FROM STDIN (FORMAT csv)")
            .await
            .unwrap();
        for chunk in csv.as_bytes().chunks(1 << 20) {
            copy.send(chunk).await.unwrap();
        }
        copy.finish().await.unwrap();
        tx.commit().await.unwrap();
        started.elapsed().as_secs_f64()
    })
}

/// Produced → committed in the warehouse, through a local broker, with the
/// default batching: each update carries its send time, and its row's
/// `ingestion_time` (the writing transaction's start) is compared with it.
fn latency() {
    use lakehouse::kafka::{client_config, TopicSpec};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use std::sync::atomic::AtomicBool;

    let broker = lakehouse_testkit::Broker::start_with_topics(&[TopicSpec::new("LATEST", 3)]);
    let bootstrap = broker.bootstrap();
    let postgres = Postgres::start();
    let url = fresh_database(&postgres, "bench_latency");
    let sql = "CREATE STREAM src (k VARCHAR, sent BIGINT) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');
               CREATE TABLE latest WITH (KAFKA_TOPIC='LATEST') AS SELECT k, LATEST_BY_OFFSET(sent) AS sent FROM src GROUP BY k;";
    let plan = lakehouse_streamsql::load(sql).unwrap();
    let args = lakehouse_workers::warehouse::TableSinkArgs::from_env();
    let (sink, _) =
        TableSink::connect(args.config(&url), warehouse_tables(&plan), Arc::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (stop, bootstrap) = (Arc::clone(&stop), bootstrap.clone());
        let mut config =
            lakehouse_workers::sink::runner::RunnerConfig::new(bootstrap, "bench-latency");
        config.assignment = args.assignment;
        std::thread::spawn(move || {
            lakehouse_workers::sink::runner::run(
                sink,
                &config,
                &stop,
                Arc::new(lakehouse_workers::sink::runner::RunnerStats::default()),
            )
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    let producer: BaseProducer = client_config(&bootstrap)
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let (rate, seconds) = (1_000u64, 20u64);
    let started = Instant::now();
    for i in 0..rate * seconds {
        let due = started + std::time::Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = chrono::Utc::now().timestamp_millis();
        let key = format!("K{}", i % 10_000);
        let value = format!(r#"{{"SENT":{sent}}}"#);
        let record = BaseRecord::to("LATEST").key(&key).payload(&value);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(std::time::Duration::ZERO);
    }
    producer.flush(std::time::Duration::from_secs(30)).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap().unwrap();
    let mut latencies: Vec<i64> = block_on(async {
        let mut conn =
            lakehouse::postgres::connect_with_retry(&url, std::time::Duration::from_secs(10))
                .await
                .unwrap();
        sqlx::query_scalar(
            "SELECT (extract(epoch FROM ingestion_time) * 1000)::bigint - sent FROM latest",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    });
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "## produced → committed in the warehouse (batch {} records or {} ms)\n",
        args.batch_records, args.batch_ms
    );
    println!("| load | rows (last update per key) | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| {rate} updates/s over 10,000 keys for {seconds} s | {} | {} | {} | {} |",
        latencies.len(),
        at(0.5),
        at(0.95),
        at(1.0)
    );
}
