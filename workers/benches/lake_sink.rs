//! Lake sink benchmark; prints Markdown tables for BENCHMARKS.md.
//!
//!   cargo bench -p lakehouse-workers --bench lake_sink
//!   BENCH_ENCODE_RECORDS=200000 cargo bench -p lakehouse-workers --bench lake_sink -- encode-only
//!   cargo bench -p lakehouse-workers --bench lake_sink -- stages
//!   cargo bench -p lakehouse-workers --bench lake_sink -- latency
//!   BENCH_SOAK_SECS=600 cargo bench -p lakehouse-workers --bench lake_sink -- soak
//!
//! 1. the encode path alone, one core, no broker: transaction JSON in memory
//!    → Arrow by the shared JSON rules (on the raw topic with its required
//!    fields) → compressed Parquet on disk (files synced and renamed), per
//!    codec, over BENCH_ENCODE_RECORDS (1,000,000: a sink runs for long,
//!    and shorter runs mostly time the first touch of fresh memory);
//!    `stages`: the same path for the raw topic and for TRANSACTIONS_FLAT
//!    timed stage by stage, three runs each in one process;
//! 2. broker → lake next to a bare consumer that reads the same topic and
//!    discards it, in the same run, from a local Tansu (SQLite storage),
//!    over BENCH_RECORDS (200,000);
//! 3. `latency`: produced → readable in the lake (the data file renamed into
//!    place), with the default rotation settings, on a quiet and a busy topic;
//! 4. `soak`: the `lake-sink` binary under a steady producer for
//!    BENCH_SOAK_SECS, its resident memory sampled every 10 s.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lakehouse::kafka::{client_config, TopicSpec};
use lakehouse_producer::{produce, ProduceOptions, ProduceRun, TransactionGenerator};
use lakehouse_testkit::{Broker, ScratchDir};
use lakehouse_workers::lake::inventory::inventory;
use lakehouse_workers::lake::{landed_topics, LakeSink, LakeSinkArgs, LakeSinkStats};
use lakehouse_workers::sink::runner::{self, RunnerConfig, RunnerStats};
use lakehouse_workers::sink::{Assigned, Record, Sink, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RAW_ONLY_SQL: &str = "CREATE STREAM transactions_raw (
    transaction_id VARCHAR, timestamp VARCHAR, user_id VARCHAR, user_name VARCHAR,
    product_id VARCHAR, amount DOUBLE, currency VARCHAR, transaction_type VARCHAR,
    status VARCHAR, location STRUCT<city VARCHAR, country VARCHAR>, payment_method VARCHAR,
    product_category VARCHAR, quantity INT,
    shipping_address STRUCT<street VARCHAR, zip VARCHAR, city VARCHAR, country VARCHAR>,
    device_info STRUCT<os VARCHAR, browser VARCHAR, ip_address VARCHAR>,
    customer_rating INT, discount_code VARCHAR, tax_amount DOUBLE, thread INT,
    message_number BIGINT, timestamp_of_reception_log VARCHAR
) WITH (KAFKA_TOPIC = 'transaction_log', VALUE_FORMAT = 'JSON');";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The codecs compared, or just BENCH_CODEC.
fn codecs() -> Vec<String> {
    match std::env::var("BENCH_CODEC") {
        Ok(codec) => vec![codec],
        Err(_) => ["zstd", "snappy", "none"].map(String::from).to_vec(),
    }
}

fn sink_args(codec: &str) -> LakeSinkArgs {
    std::env::set_var("LAKEHOUSE_LAKE_COMPRESSION", codec);
    // Rotation by size and count only: the idle timeout ends the last file quickly.
    std::env::set_var("LAKEHOUSE_LAKE_IDLE_MS", "200");
    std::env::set_var("LAKEHOUSE_LAKE_MAX_FILE_AGE_MS", "600000");
    LakeSinkArgs::from_env()
}

fn main() {
    if std::env::args().any(|a| a == "latency") {
        latency();
        return;
    }
    if std::env::args().any(|a| a == "stages") {
        stages();
        return;
    }
    if std::env::args().any(|a| a == "soak") {
        soak(Duration::from_secs(env_u64("BENCH_SOAK_SECS", 600)));
        return;
    }
    let encode_records = env_u64("BENCH_ENCODE_RECORDS", 1_000_000);
    println!("## encode path (one core, no broker)\n");
    println!("| topic | codec | records | seconds | records/s | MB/s of JSON in | bytes on disk | ratio |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let values = transactions(encode_records as usize);
    let raw_plan = lakehouse_streamsql::load(RAW_ONLY_SQL).unwrap();
    for codec in codecs() {
        encode_path(&raw_plan, "transaction_log", &values, &codec);
    }
    if std::env::var("BENCH_TOPIC").map_or(true, |only| only == "TRANSACTIONS_FLAT") {
        let (full_plan, flat) = flattened(&values);
        for codec in codecs() {
            encode_path(&full_plan, "TRANSACTIONS_FLAT", &flat, &codec);
        }
    }

    if std::env::args().any(|a| a == "encode-only") {
        return;
    }
    drop(values);
    let records = env_u64("BENCH_RECORDS", 200_000);
    println!("\n## broker → lake vs a bare consumer (same run, same topic)\n");
    println!("| reader | records | seconds | records/s | vs bare consumer |");
    println!("|---|---:|---:|---:|---:|");
    broker_to_lake(records);
    println!(
        "\npeak RSS of the benchmark process: {} MiB",
        lakehouse_testkit::peak_rss_mib()
    );
}

/// Transaction-sized JSON values (about 700 bytes each).
fn transactions(count: usize) -> Vec<Vec<u8>> {
    let mut generator = TransactionGenerator::new(1, 1, 30);
    let now = Utc::now();
    (0..count)
        .map(|_| serde_json::to_vec(&generator.next_transaction(now)).unwrap())
        .collect()
}

/// TRANSACTIONS_FLAT as the stream SQL engine computes it from `values`
/// with the product's statement file.
fn flattened(values: &[Vec<u8>]) -> (lakehouse_streamsql::Plan, Vec<Vec<u8>>) {
    let sql = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql");
    let plan = Arc::new(lakehouse_streamsql::load_file(Path::new(sql)).unwrap());
    let flat = plan
        .relations
        .iter()
        .position(|r| r.name == "TRANSACTIONS_FLAT")
        .unwrap();
    let mut engine = lakehouse_streamsql::Engine::new(Arc::clone(&plan));
    let (mut out, mut dead) = (Vec::new(), Vec::new());
    let mut rows = Vec::new();
    for (offset, value) in values.iter().enumerate() {
        let input = lakehouse_streamsql::InputRecord {
            topic: "transaction_log",
            partition: 0,
            offset: offset as i64,
            timestamp: 1_790_000_000_000,
            key: None,
            value: Some(value),
        };
        engine.process(&input, &mut out, &mut dead);
        rows.extend(
            out.drain(..)
                .filter(|o| o.relation == flat)
                .filter_map(|o| o.value),
        );
    }
    ((*plan).clone(), rows)
}

fn encode_path(plan: &lakehouse_streamsql::Plan, topic: &str, values: &[Vec<u8>], codec: &str) {
    if std::env::var("BENCH_TOPIC").is_ok_and(|only| only != topic) {
        return;
    }
    let dir = ScratchDir::new("bench-encode");
    let lake = dir.path().join("data_lake");
    let config = sink_args(codec).config(&lake).unwrap();
    let mut sink = LakeSink::new(
        config,
        landed_topics(plan),
        Arc::new(LakeSinkStats::default()),
    );
    sink.open(&[Assigned {
        partition: TopicPartition::new(topic, 0),
        committed: None,
    }])
    .unwrap();
    let sources: Vec<String> = (0..values.len())
        .map(|i| format!("transaction_log:0:{i}"))
        .collect();
    let started = Instant::now();
    for (offset, value) in values.iter().enumerate() {
        let record = Record {
            topic,
            partition: 0,
            offset: offset as i64,
            timestamp_ms: Some(1_790_000_000_000 + offset as i64),
            key: None,
            value: Some(value),
            source: (topic != "transaction_log").then(|| sources[offset].as_str()),
        };
        sink.write(&record).unwrap();
        if sink.is_full() {
            sink.flush(Instant::now(), true).unwrap();
        }
    }
    sink.flush(Instant::now(), true).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let json_bytes: usize = values.iter().map(Vec::len).sum();
    let on_disk = dir_bytes(&lake.join(topic));
    println!(
        "| {topic} | {codec} | {} | {seconds:.2} | {:.0} | {:.1} | {on_disk} | {:.1}x |",
        values.len(),
        values.len() as f64 / seconds,
        json_bytes as f64 / seconds / 1e6,
        json_bytes as f64 / on_disk as f64
    );
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            dir_bytes(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn broker_to_lake(records: u64) {
    let broker = Broker::start_with_topics(&[TopicSpec::new("transaction_log", 3)]);
    let bootstrap = broker.bootstrap();
    let mut options = ProduceOptions::new(&bootstrap, "transaction_log");
    options.count = Some(records);
    options.seed = 3;
    let summary = produce(options).unwrap();
    assert_eq!(summary.delivered, records);

    let bare = bare_consumer(&bootstrap, records);
    println!(
        "| bare consumer (reads, discards) | {records} | {bare:.2} | {:.0} | 1.00 |",
        records as f64 / bare
    );

    let dir = ScratchDir::new("bench-broker-lake");
    let plan = lakehouse_streamsql::load(RAW_ONLY_SQL).unwrap();
    let config = sink_args("zstd")
        .config(&dir.path().join("data_lake"))
        .unwrap();
    let stats = Arc::new(LakeSinkStats::default());
    let sink = LakeSink::new(config, landed_topics(&plan), Arc::clone(&stats));
    let started = Instant::now();
    let (stop, worker) = run_in_background(sink, &bootstrap, "bench-lake-sink");
    while stats.landed_rows.load(Ordering::Relaxed) + stats.dead_lettered.load(Ordering::Relaxed)
        < records
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap().unwrap();
    println!(
        "| lake sink (zstd Parquet, durable) | {records} | {seconds:.2} | {:.0} | {:.2} |",
        records as f64 / seconds,
        bare / seconds
    );
}

/// Seconds for a fresh group member to read `records` and drop them.
fn bare_consumer(bootstrap: &str, records: u64) -> f64 {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "bench-bare-consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let started = Instant::now();
    consumer.subscribe(&["transaction_log"]).unwrap();
    let mut read = 0;
    while read < records {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.unwrap();
            read += 1;
        }
    }
    started.elapsed().as_secs_f64()
}

/// The sink binary under a steady producer; its RSS over time.
fn soak(duration: Duration) {
    let broker = Broker::start_with_topics(&[TopicSpec::new("transaction_log", 3)]);
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("bench-soak");
    let sql = dir.path().join("raw.sql");
    std::fs::write(&sql, RAW_ONLY_SQL).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lake-sink"))
        .arg("--sql")
        .arg(&sql)
        .env("LAKEHOUSE_KAFKA_BOOTSTRAP", &bootstrap)
        .env("LAKEHOUSE_DATA_LAKE_DIR", dir.path().join("data_lake"))
        .env("LAKEHOUSE_LOG_DIR", dir.path().join("log"))
        .spawn()
        .unwrap();
    let rate = env_u64("BENCH_SOAK_RATE", 5_000) as f64;
    let mut options = ProduceOptions::new(&bootstrap, "transaction_log");
    options.rate = Some(rate);
    options.duration = Some(duration);
    options.bad_ratio = 0.01;
    let producer = ProduceRun::start(options).unwrap();
    println!("## lake-sink binary, {rate} records/s for {duration:?}\n");
    println!("| minute | sink RSS MiB | records landed |");
    println!("|---:|---:|---:|");
    let started = Instant::now();
    let mut samples = Vec::new();
    while !producer.generation_finished() {
        std::thread::sleep(Duration::from_secs(10));
        let rss = lakehouse_testkit::rss_mib(child.id());
        samples.push(rss);
        if samples.len() % 6 == 0 {
            let landed: u64 = inventory(&dir.path().join("data_lake"))
                .map_or(0, |t| t.iter().map(|t| t.rows).sum());
            println!(
                "| {:.0} | {rss} | {landed} |",
                started.elapsed().as_secs_f64() / 60.0
            );
        }
    }
    let summary = producer.finish();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let min = samples.iter().min().copied().unwrap_or(0);
    let max = samples.iter().max().copied().unwrap_or(0);
    println!(
        "\ndelivered {} records; sink RSS over the run: min {min} MiB, max {max} MiB, last {} MiB",
        summary.delivered,
        samples.last().copied().unwrap_or(0)
    );
}

/// Produced → readable latencies with the default rotation: a quiet topic,
/// then a busy one. A row's latency is its file's rename time (mtime) minus
/// its Kafka timestamp.
fn latency() {
    let broker = Broker::start_with_topics(&[TopicSpec::new("transaction_log", 3)]);
    let bootstrap = broker.bootstrap();
    let dir = ScratchDir::new("bench-latency");
    let lake = dir.path().join("data_lake");
    let args = LakeSinkArgs::from_env();
    let plan = lakehouse_streamsql::load(RAW_ONLY_SQL).unwrap();
    let stats = Arc::new(LakeSinkStats::default());
    let sink = LakeSink::new(
        args.config(&lake).unwrap(),
        landed_topics(&plan),
        Arc::clone(&stats),
    );
    let (stop, worker) = run_in_background(sink, &bootstrap, "bench-latency");
    println!(
        "## produced → readable in the lake (idle {} ms, max file age {} ms)\n",
        args.idle_ms, args.max_file_age_ms
    );
    println!("| load | records | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut seen = std::collections::HashSet::new();
    for (label, count, rate) in [
        ("quiet: 1 record every 1.5 s", 20, 1.0 / 1.5),
        ("busy: 1,000 records/s", 30_000, 1_000.0),
    ] {
        let before = stats.landed_rows.load(Ordering::Relaxed);
        let mut options = ProduceOptions::new(&bootstrap, "transaction_log");
        options.count = Some(count);
        options.rate = Some(rate);
        assert_eq!(produce(options).unwrap().delivered, count);
        while stats.landed_rows.load(Ordering::Relaxed) < before + count {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut latencies = file_latencies(&lake.join("transaction_log"), &mut seen);
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        println!(
            "| {label} | {} | {} | {} | {} |",
            latencies.len(),
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap().unwrap();
}

/// Latency of every row of the files not in `seen`, in milliseconds.
fn file_latencies(
    dir: &Path,
    seen: &mut std::collections::HashSet<std::path::PathBuf>,
) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMillisecondType;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(file_latencies(&path, seen));
            continue;
        }
        if path.extension().is_none_or(|e| e != "parquet") || !seen.insert(path.clone()) {
            continue;
        }
        let written = entry.metadata().unwrap().modified().unwrap();
        let written_ms = written
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let timestamps = batch
                .column_by_name("kafka_timestamp")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            out.extend(timestamps.iter().flatten().map(|ts| written_ms - ts));
        }
    }
    out
}

/// Runs `sink` on a thread until the returned flag is set.
fn run_in_background(
    sink: LakeSink,
    bootstrap: &str,
    group: &str,
) -> (
    Arc<AtomicBool>,
    std::thread::JoinHandle<Result<(), lakehouse_workers::sink::SinkError>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let config = RunnerConfig::new(bootstrap, group);
    let flag = Arc::clone(&stop);
    let worker = std::thread::spawn(move || {
        runner::run(sink, &config, &flag, Arc::new(RunnerStats::default()))
    });
    (stop, worker)
}

/// Where the encode path's time goes, stage by stage, for the raw topic and
/// for TRANSACTIONS_FLAT.
fn stages() {
    let records = env_u64("BENCH_ENCODE_RECORDS", 1_000_000) as usize;
    let values = transactions(records);
    let raw_plan = lakehouse_streamsql::load(RAW_ONLY_SQL).unwrap();
    println!("## encode path by stage: zstd, one core\n");
    println!("| topic | run | records | JSON → Arrow (raw topic: with its required fields), ns/record | Arrow → Parquet (zstd), ns/record | write + fsync, ns/record | records/s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    stages_of(&raw_plan, "transaction_log", &values);
    let (plan, flat) = flattened(&values);
    drop(values);
    stages_of(&plan, "TRANSACTIONS_FLAT", &flat);
}

fn stages_of(plan: &lakehouse_streamsql::Plan, name: &str, values: &[Vec<u8>]) {
    use lakehouse_workers::lake::encode::{Origin, Staged};
    let records = values.len();
    let topic = landed_topics(plan)
        .into_iter()
        .find(|t| t.topic == name)
        .unwrap();
    let properties = sink_args("zstd").writer_properties().unwrap();
    for run in 1..=3 {
        let started = Instant::now();
        let mut batches = Vec::new();
        let mut staged = Staged::new(&topic).unwrap();
        for (offset, value) in values.iter().enumerate() {
            let origin = Origin {
                offset: offset as i64,
                timestamp_ms: Some(1),
                ingestion_us: 2,
                source: Some("transaction_log:0:1"),
            };
            staged.push(value, origin).unwrap();
            if staged.len() == 8192 {
                batches.push(staged.encode(&topic, 0).unwrap().unwrap());
            }
        }
        batches.extend(staged.encode(&topic, 0).unwrap());
        let staging = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            Vec::with_capacity(64 << 20),
            Arc::clone(&topic.file_schema),
            Some(properties.clone()),
        )
        .unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        let parquet = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let dir = ScratchDir::new("bench-stages");
        let path = dir.path().join("f.parquet");
        let mut file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file.sync_all().unwrap();
        let io = started.elapsed().as_secs_f64();
        let per_record = |seconds: f64| seconds * 1e9 / records as f64;
        println!(
            "| {name} | {run} | {records} | {:.0} | {:.0} | {:.0} | {:.0} |",
            per_record(staging),
            per_record(parquet),
            per_record(io),
            records as f64 / (staging + parquet + io)
        );
    }
}
