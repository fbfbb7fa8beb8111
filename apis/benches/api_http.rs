//! The API over HTTP against DuckDB in-process, on the same lake.
//!
//! Builds a lake with the lake sink itself (BENCH_DAYS daily partitions of
//! BENCH_PER_DAY transactions each, every stream of the product's statement
//! file), starts the real `lakehouse-api`, and for each question prints the
//! API's requests/s (BENCH_CLIENTS concurrent clients) and p50/p99 latency
//! over HTTP, next to DuckDB's median time for the same question on the
//! same files. `cargo bench -p lakehouse-api --bench api_http`; BENCH_ONLY=page
//! keeps the questions whose name contains `page`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{env_usize, percentile, ApiServer};

struct Question {
    name: &'static str,
    method: &'static str,
    path: String,
    /// A query parameter given a new value on every request, so that no
    /// cache of the server answers it twice.
    vary: Option<&'static str>,
    body: Option<serde_json::Value>,
    duckdb: String,
}

/// Median seconds DuckDB takes for each query, in one process, after a warm-up run.
fn duckdb_medians(queries: &[String], runs: usize) -> Vec<f64> {
    let script = r#"
import duckdb, json, sys, time, statistics
queries, runs = json.loads(sys.stdin.read())
con = duckdb.connect()
out = []
for q in queries:
    con.sql(q).fetchall()
    times = []
    for _ in range(runs):
        t = time.perf_counter(); con.sql(q).fetchall(); times.append(time.perf_counter() - t)
    out.append(statistics.median(times))
print(json.dumps(out))
"#;
    support::python_json(script, &(queries, runs))
}

fn main() {
    let days = env_usize("BENCH_DAYS", 10);
    let per_day = env_usize("BENCH_PER_DAY", 100_000);
    let requests = env_usize("BENCH_REQUESTS", 200);
    let clients = env_usize("BENCH_CLIENTS", 4);
    // Only the questions whose name contains this text (all by default).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let plan: Vec<(i64, usize)> = (0..days).rev().map(|d| (d as i64, per_day)).collect();
    let started = Instant::now();
    let server = ApiServer::start(&plan, &[("LAKEHOUSE_API_RATE_LIMIT", "1000000")]);
    println!(
        "lake: {} transactions over {days} days, every stream, written in {:.1} s\n",
        days * per_day,
        started.elapsed().as_secs_f64()
    );
    // The lake just written is still being flushed to disk; measuring
    // during that write-back measures the disk, not the server.
    let _ = std::process::Command::new("sync").status();
    let token = server.token("admin");
    let flat = format!(
        "read_parquet('{}/TRANSACTIONS_FLAT/*/*.parquet', hive_partitioning = true)",
        server.lake.display()
    );
    let today = chrono::Utc::now().date_naive();
    let questions = [
        Question {
            name: "filtered, projected page (status, amount_gt, 3 fields, page 2 of 10)",
            method: "GET",
            path: "/api/v2/datasets/TRANSACTIONS_FLAT?status=completed&amount_gt=500&fields=transaction_id,amount,status&page_size=10&page=2".into(),
            vary: None,
            body: None,
            duckdb: format!("SELECT TRANSACTION_ID, AMOUNT, STATUS FROM {flat} WHERE STATUS IN ('completed') AND AMOUNT > 500 ORDER BY kafka_partition, kafka_offset LIMIT 10 OFFSET 10"),
        },
        Question {
            name: "the same page, a filter never asked before (customer_rating_gte varies)",
            method: "GET",
            path: "/api/v2/datasets/TRANSACTIONS_FLAT?status=completed&amount_gt=500&fields=transaction_id,amount,status&page_size=10&page=2".into(),
            vary: Some("customer_rating_gte"),
            body: None,
            duckdb: format!("SELECT TRANSACTION_ID, AMOUNT, STATUS FROM {flat} WHERE STATUS IN ('completed') AND AMOUNT > 500 AND CUSTOMER_RATING >= 1.000001 ORDER BY kafka_partition, kafka_offset LIMIT 10 OFFSET 10"),
        },
        Question {
            name: "one-day page (since=today, 10 rows)",
            method: "GET",
            path: format!("/api/v2/datasets/TRANSACTIONS_FLAT?since={today}&page_size=10"),
            vary: None,
            body: None,
            duckdb: format!("SELECT * FROM {flat} WHERE ingestion_date >= DATE '{today}' ORDER BY kafka_partition, kafka_offset LIMIT 10"),
        },
        Question {
            name: "metric: spent in the last 5 minutes",
            method: "GET",
            path: "/api/v2/metrics/spent-recently?minutes=5".into(),
            vary: None,
            body: None,
            duckdb: format!("SELECT sum(AMOUNT), count(*) FROM {flat} WHERE ingestion_date >= DATE '{today}' AND ingestion_time >= now() - INTERVAL 5 MINUTE"),
        },
        Question {
            name: "metric: total per user and type (top 10)",
            method: "GET",
            path: "/api/v2/metrics/spent-per-user-type?limit=10".into(),
            vary: None,
            body: None,
            duckdb: format!("SELECT USER_ID, TRANSACTION_TYPE, sum(AMOUNT) AS s, count(*) FROM {flat} GROUP BY 1, 2 ORDER BY s DESC, 1, 2 LIMIT 10"),
        },
        Question {
            name: "metric: top-10 products by quantity",
            method: "GET",
            path: "/api/v2/metrics/top-products?limit=10".into(),
            vary: None,
            body: None,
            duckdb: format!("SELECT PRODUCT_ID, sum(QUANTITY) AS q FROM {flat} GROUP BY 1 ORDER BY q DESC, 1 LIMIT 10"),
        },
        Question {
            name: "SQL aggregate (count and sum per status)",
            method: "POST",
            path: "/api/v2/sql".into(),
            vary: None,
            body: Some(serde_json::json!({"query": "SELECT status, count(*) AS n, sum(amount) AS total FROM transactions_flat GROUP BY status ORDER BY status"})),
            duckdb: format!("SELECT STATUS, count(*), sum(AMOUNT) FROM {flat} GROUP BY 1 ORDER BY 1"),
        },
    ];
    let duckdb = duckdb_medians(
        &questions
            .iter()
            .map(|q| q.duckdb.clone())
            .collect::<Vec<_>>(),
        20,
    );

    println!("| question | API requests/s ({clients} clients) | API p50 ms | API p99 ms | DuckDB in-process median ms |");
    println!("|---|---:|---:|---:|---:|");
    for (question, duck) in questions.iter().zip(duckdb) {
        if !only.is_empty() && !question.name.contains(only.as_str()) {
            continue;
        }
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let ask = || {
            let path = match question.vary {
                None => question.path.clone(),
                Some(name) => {
                    let n = asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    format!("{}&{name}=1.{n:06}", question.path)
                }
            };
            let r = server.call(question.method, &path, Some(&token), question.body.clone());
            assert_eq!(r.status, 200, "{}: {}", question.name, r.text);
        };
        // Warm-up: at least 50 requests and 5 seconds per question (a
        // freshly started server and database answer slower for a while).
        let warming = Instant::now();
        for n in 0.. {
            if n >= 50 && warming.elapsed() > Duration::from_secs(5) {
                break;
            }
            ask();
        }
        // Latency: one client, one request at a time.
        let mut latencies: Vec<Duration> = (0..requests)
            .map(|_| {
                let t = Instant::now();
                ask();
                t.elapsed()
            })
            .collect();
        latencies.sort();
        // Throughput: several clients at once.
        let t = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..clients {
                scope.spawn(|| {
                    for _ in 0..requests / clients {
                        ask();
                    }
                });
            }
        });
        let rate = (requests / clients * clients) as f64 / t.elapsed().as_secs_f64();
        println!(
            "| {} | {rate:.0} | {:.2} | {:.2} | {:.2} |",
            question.name,
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            duck * 1000.0
        );
    }
}
