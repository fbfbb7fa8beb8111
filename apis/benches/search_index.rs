//! The search index: how fast it indexes a lake from scratch and while the
//! lake sink lands new files, its size per million records, and query
//! latency (in-process, the index the server searches).
//!
//! Builds a lake with the lake sink itself: BENCH_TRANSACTIONS transactions
//! (100,000) over BENCH_DAYS daily partitions (2), every stream of the
//! product's statement file; then lands BENCH_FOLLOW more (20,000) while
//! the indexer follows. `cargo bench -p lakehouse-api --bench search_index`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse_api::search::indexer::Indexer;
use lakehouse_api::search::query::SearchRequest;
use lakehouse_api::search::SearchIndex;
use support::{env_usize, percentile};

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn main() {
    let transactions = env_usize("BENCH_TRANSACTIONS", 100_000);
    let days = env_usize("BENCH_DAYS", 2).max(1);
    let follow = env_usize("BENCH_FOLLOW", 20_000);
    let runs = env_usize("BENCH_QUERIES", 300);
    let scratch = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let lake = scratch.path().join("data_lake");
    let plan: Vec<(i64, usize)> = (0..days as i64)
        .rev()
        .map(|d| (d + 1, transactions / days))
        .collect();
    let started = Instant::now();
    let written = support::build_lake(&lake, &plan, 11);
    eprintln!(
        "lake of {} transactions built in {:.0} s",
        written.len(),
        started.elapsed().as_secs_f64()
    );

    let index_dir = scratch.path().join("search");
    let index = Arc::new(SearchIndex::open(&index_dir).unwrap());
    let mut indexer = Indexer::new(index.clone(), &lake).unwrap();
    let started = Instant::now();
    let (files, _) = indexer.rebuild().unwrap();
    let rebuild = started.elapsed();
    let records = index.records();
    let bytes = dir_bytes(&index_dir.join("index"));

    // Following: the sink lands more while the indexer runs.
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let stop = stop.clone();
        std::thread::spawn(move || indexer.run(&stop).unwrap())
    };
    std::thread::sleep(Duration::from_secs(1));
    let landing = Instant::now();
    let more = support::build_lake_from(&lake, &[(0, follow)], 12, 10_000_000);
    let landed = landing.elapsed();
    let last_id = more.last().unwrap()["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let search = |q: &str, since: Option<chrono::NaiveDate>| {
        index
            .search(&SearchRequest {
                query: q,
                readable: None,
                resource: None,
                since,
                page: 1,
                page_size: 20,
            })
            .map_err(|e| format!("{e:?}"))
            .unwrap()
    };
    while search(&last_id, None).total == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let last_searchable = landing.elapsed();
    // Caught up once the count has not grown for two seconds.
    let (mut count, mut caught_up) = (index.records(), landing.elapsed());
    while landing.elapsed() - caught_up < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        let now = index.records();
        if now != count {
            (count, caught_up) = (now, landing.elapsed());
        }
    }
    let followed = count - records;

    println!("| measure | value |");
    println!("|---|---:|");
    println!("| records indexed from scratch | {records} in {files} files |");
    println!(
        "| rebuild rate | {:.0} records/s ({:.1} s) |",
        records as f64 / rebuild.as_secs_f64(),
        rebuild.as_secs_f64()
    );
    println!(
        "| index size | {:.0} MiB per million records ({:.1} MiB) |",
        bytes as f64 / (1 << 20) as f64 / (records as f64 / 1e6),
        bytes as f64 / (1 << 20) as f64
    );
    println!(
        "| while the sink lands {follow} transactions ({followed} records) in {:.1} s | all indexed {:.1} s after landing began ({:.0} records/s); the last transaction searchable {:.1} s after the landing ended |",
        landed.as_secs_f64(),
        caught_up.as_secs_f64(),
        followed as f64 / caught_up.as_secs_f64(),
        (last_searchable.saturating_sub(landed)).as_secs_f64()
    );

    let today = chrono::Utc::now().date_naive();
    let ids: Vec<String> = written
        .iter()
        .step_by((written.len() / runs).max(1))
        .map(|t| t["transaction_id"].as_str().unwrap().to_string())
        .collect();
    let cities: Vec<String> = written
        .iter()
        .step_by((written.len() / runs).max(1))
        .filter_map(|t| t["location"]["city"].as_str().map(str::to_string))
        .collect();
    type Question<'a> = (
        &'a str,
        Box<dyn Fn(usize) -> (String, Option<chrono::NaiveDate>) + 'a>,
    );
    let questions: Vec<Question> = vec![
        (
            "an id (exact)",
            Box::new(|i| (ids[i % ids.len()].clone(), None)),
        ),
        (
            "a city (words)",
            Box::new(|i| (cities[i % cities.len()].clone(), None)),
        ),
        (
            "status word + since today",
            Box::new(|_| ("completed".to_string(), Some(today))),
        ),
        (
            "two words",
            Box::new(|i| (format!("completed {}", cities[i % cities.len()]), None)),
        ),
    ];
    println!();
    println!(
        "| query ({} records) | runs | p50 ms | p99 ms | hits (first run) |",
        index.records()
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, make) in &questions {
        for i in 0..20 {
            let (q, since) = make(i);
            search(&q, since);
        }
        let mut times = Vec::new();
        let mut hits = None;
        for i in 0..runs {
            let (q, since) = make(i);
            let t = Instant::now();
            let page = search(&q, since);
            times.push(t.elapsed());
            hits.get_or_insert(page.total);
        }
        times.sort();
        println!(
            "| {name} | {runs} | {:.2} | {:.2} | {} |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            hits.unwrap_or(0)
        );
    }
    stop.store(true, Ordering::Relaxed);
    follower.join().unwrap();
}
