//! Stream SQL benchmark; prints a Markdown table for BENCHMARKS.md.
//!
//!   cargo bench -p lakehouse-streamsql --bench engine
//!
//! 1. the engine alone, in memory, on one core: the whole product file;
//! 2. end to end through a local Tansu broker: produce, run, until caught up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse::kafka::TopicSpec;
use lakehouse_producer::{produce, ProduceOptions, TransactionGenerator};
use lakehouse_streamsql::runtime::{self, RuntimeConfig, RuntimeStats};
use lakehouse_streamsql::{load, Engine, InputRecord};
use lakehouse_testkit::{Broker, ScratchDir};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FILE: &str = include_str!("../../producer/ksql_queries.sql");

fn main() {
    println!("| case | input records | seconds | input records/s | output records/s | notes |");
    println!("|---|---:|---:|---:|---:|---|");
    // The file cut after its source streams, after its derived streams, and whole.
    let tables_at = FILE.find("CREATE TABLE").unwrap();
    let derived_at = FILE.find("CREATE STREAM transactions_flat").unwrap();
    let n: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    in_memory("source streams only (decode)", &FILE[..derived_at], n);
    in_memory("source + derived streams", &FILE[..tables_at], n);
    in_memory("whole file (13 streams, 8 tables)", FILE, n);
    in_memory_parallel("whole file, batches of 2000, pipelined on 2 threads", n);
    if std::env::args().all(|a| a != "--in-memory-only") {
        end_to_end(5_000);
    }
    println!(
        "\npeak RSS of the benchmark process: {} MiB",
        lakehouse_testkit::peak_rss_mib()
    );
}

/// `n` generated transactions as JSON, and as records of `transaction_log`.
fn generated(n: usize) -> Vec<Vec<u8>> {
    let now = "2026-11-24T07:47:40Z".parse().unwrap();
    let mut generator = TransactionGenerator::new(3, 1, 30);
    (0..n)
        .map(|_| serde_json::to_vec(&generator.next_transaction(now)).unwrap())
        .collect()
}

fn records(values: &[Vec<u8>]) -> Vec<InputRecord<'_>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| InputRecord {
            topic: "transaction_log",
            partition: (i % 3) as i32,
            offset: i as i64,
            timestamp: 1_795_506_460_000 + i as i64,
            key: None,
            value: Some(v),
        })
        .collect()
}

fn in_memory(case: &str, sql: &str, n: usize) {
    let values = generated(n);
    let inputs = records(&values);
    let plan = Arc::new(load(sql).unwrap());
    let mut engine = Engine::new(plan);
    let (mut out, mut dead) = (Vec::with_capacity(64), Vec::new());
    let mut produced = 0usize;
    let started = Instant::now();
    for (i, input) in inputs.iter().enumerate() {
        out.clear();
        engine.process(input, &mut out, &mut dead);
        produced += out.len();
        if i % 50_000 == 49_999 {
            // As the runtime's checkpoints do.
            engine.expire_windows();
            std::hint::black_box(engine.take_changes());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| engine only, in memory, 1 core: {case} | {n} | {secs:.2} | {:.0} | {:.0} | {:.1} outputs per input, {} groups in state |",
        n as f64 / secs,
        produced as f64 / secs,
        produced as f64 / n as f64,
        engine.state_size()
    );
}

fn in_memory_parallel(case: &str, n: usize) {
    let values = generated(n);
    let inputs = records(&values);
    let mut engine = Engine::new(Arc::new(load(FILE).unwrap()));
    let mut produced = 0usize;
    let started = Instant::now();
    for batch in inputs.chunks(2_000) {
        let out = engine.process_batch(batch, 2);
        produced += (0..out.len()).map(|i| out.output_count(i)).sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| engine only, in memory: {case} | {n} | {secs:.2} | {:.0} | {:.0} | {:.1} outputs per input |",
        n as f64 / secs,
        produced as f64 / secs,
        produced as f64 / n as f64
    );
}

fn end_to_end(n: u64) {
    let broker = Broker::start_with_topics(&[TopicSpec::new("transaction_log", 3)]);
    let bootstrap = broker.bootstrap();
    let mut options = ProduceOptions::new(&bootstrap, "transaction_log");
    options.count = Some(n);
    options.seed = 5;
    produce(options).unwrap();

    let dir = ScratchDir::new("bench-stream-sql");
    let config = RuntimeConfig::new(&bootstrap, dir.path());
    let plan = Arc::new(load(FILE).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(RuntimeStats::default());
    let started = Instant::now();
    let worker = {
        let (stop, stats, config) = (Arc::clone(&stop), Arc::clone(&stats), config.clone());
        std::thread::spawn(move || runtime::run(plan, &config, &stop, &stats).unwrap())
    };
    // Caught up: the engine's committed offsets reach the input's end.
    lakehouse_testkit::wait_until_consumed(
        &bootstrap,
        &config.app_id,
        "transaction_log",
        Duration::from_secs(600),
    );
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    let out = stats.records_out.load(Ordering::Relaxed);
    println!(
        "| end to end through Tansu (sqlite), acknowledged and checkpointed | {n} | {secs:.2} | {:.0} | {:.0} | output written to 21 topics; the broker is the limit |",
        n as f64 / secs,
        out as f64 / secs
    );
}
