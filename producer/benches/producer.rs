//! Producer benchmark; prints a Markdown table for BENCHMARKS.md.
//!
//!   cargo bench -p lakehouse-producer --bench producer
//!
//! 1. generation + JSON serialisation in memory, one core;
//! 2. records/s delivered (acks=all) to a local Tansu broker with SQLite storage;
//! 3. produce→consume latency percentiles at a steady rate through that broker.
//!
//! It also prints the process's peak resident memory.

use std::time::{Duration, Instant};

use chrono::Utc;
use lakehouse::kafka::client_config;
use lakehouse_producer::{damage, produce, MalformedKind, ProduceOptions, TransactionGenerator};
use lakehouse_testkit::{Broker, TestContext};
use rand::Rng;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

struct Row {
    case: String,
    records: u64,
    seconds: f64,
    extra: String,
}

fn main() {
    let mut rows = Vec::new();
    rows.push(generate_in_memory(1_000_000, 0.0));
    rows.push(generate_in_memory(1_000_000, 0.1));

    let broker = Broker::start();
    for threads in [1, 2] {
        rows.push(deliver(&broker, 200_000, threads));
    }
    rows.push(latency(&broker, 5_000.0, Duration::from_secs(10)));

    println!("| case | records | seconds | records/s | notes |");
    println!("|---|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} |",
            r.case,
            r.records,
            r.seconds,
            r.records as f64 / r.seconds,
            r.extra
        );
    }
    println!(
        "\npeak RSS of the benchmark process: {} MiB",
        lakehouse_testkit::peak_rss_mib()
    );
}

fn generate_in_memory(count: u64, bad_ratio: f64) -> Row {
    let mut generator = TransactionGenerator::new(1, 1, 30);
    let mut bytes = 0usize;
    let now = Utc::now();
    let started = Instant::now();
    for _ in 0..count {
        let t = generator.next_transaction(now);
        let payload = if bad_ratio > 0.0 && generator.rng().gen_bool(bad_ratio) {
            let kind = MalformedKind::ALL[generator.rng().gen_range(0..MalformedKind::ALL.len())];
            damage(&t, kind, generator.rng())
        } else {
            serde_json::to_vec(&t).unwrap()
        };
        bytes += payload.len();
        std::hint::black_box(&payload);
    }
    let seconds = started.elapsed().as_secs_f64();
    Row {
        case: format!("generate + serialise in memory, 1 thread, bad ratio {bad_ratio}"),
        records: count,
        seconds,
        extra: format!(
            "{:.0} MB/s of JSON, {:.0} B/record",
            bytes as f64 / seconds / 1e6,
            bytes as f64 / count as f64
        ),
    }
}

fn deliver(broker: &Broker, count: u64, threads: u32) -> Row {
    let ctx = TestContext::with_bootstrap("bench_deliver", broker.bootstrap());
    let topic = ctx.create_topic("transaction_log", 3);
    let mut options = ProduceOptions::new(broker.bootstrap(), &topic);
    options.count = Some(count);
    options.threads = threads;
    options.seed = 1;
    let summary = produce(options).unwrap();
    assert_eq!(summary.delivered, count, "every record delivered");
    Row {
        case: format!("delivered to Tansu (sqlite, acks=all), {threads} thread(s)"),
        records: summary.delivered,
        seconds: summary.elapsed_secs,
        extra: "3 partitions, lz4, linger 5 ms".into(),
    }
}

fn latency(broker: &Broker, rate: f64, duration: Duration) -> Row {
    let ctx = TestContext::with_bootstrap("bench_latency", broker.bootstrap());
    let topic = ctx.create_topic("transaction_log", 3);
    let consumer: BaseConsumer = client_config(&broker.bootstrap())
        .set("group.id", ctx.topic_name("latency"))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut options = ProduceOptions::new(broker.bootstrap(), &topic);
    options.rate = Some(rate);
    options.duration = Some(duration);
    let run = lakehouse_producer::ProduceRun::start(options).unwrap();
    let mut latencies = Vec::new();
    let deadline = Instant::now() + duration + Duration::from_secs(10);
    let expected = (rate * duration.as_secs_f64()) as usize;
    while Instant::now() < deadline && latencies.len() < expected {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let sent = m.timestamp().to_millis().unwrap();
            latencies.push(Utc::now().timestamp_millis() - sent);
        }
    }
    let summary = run.finish();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Row {
        case: format!("steady {rate:.0}/s, produce→consume latency"),
        records: summary.delivered,
        seconds: summary.elapsed_secs,
        extra: format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} records seen)",
            pct(0.5),
            pct(0.95),
            pct(0.99),
            latencies.last().unwrap(),
            latencies.len()
        ),
    }
}
