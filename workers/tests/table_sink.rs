//! The table sink against a real broker and a real PostgreSQL: key formats
//! of both engines, tombstones, dead letters, schema growth and refused
//! changes, and exactly once through 20+ kill -9 and a PostgreSQL restart.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse::kafka::{client_config, ensure_topics, watermarks, TopicSpec};
use lakehouse::transaction::Transaction;
use lakehouse_producer::{ProduceOptions, ProduceRun};
use lakehouse_testkit::{
    block_on, read_topic, terminate, wait_until_consumed, Broker, Postgres, ScratchDir, TestContext,
};
use lakehouse_workers::sink::runner::{self, RunnerConfig, RunnerStats};
use lakehouse_workers::warehouse::{warehouse_tables, TableSink, TableSinkConfig, TableSinkStats};
use rand::Rng;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sqlx::Row;

fn query_rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    block_on(async {
        let mut conn = lakehouse::postgres::connect_with_retry(url, Duration::from_secs(30))
            .await
            .unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .unwrap()
                            .unwrap_or_else(|| "NULL".into())
                    })
                    .collect()
            })
            .collect()
    })
}

fn send(bootstrap: &str, topic: &str, records: &[(Option<Vec<u8>>, Option<&str>)]) {
    let producer: BaseProducer = client_config(bootstrap).create().unwrap();
    for (key, value) in records {
        let mut record = BaseRecord::<[u8], str>::to(topic).partition(0);
        if let Some(k) = key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = value {
            record = record.payload(*v);
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn windowed(key: &[u8], start: i64) -> Vec<u8> {
    let mut out = key.to_vec();
    out.extend_from_slice(&start.to_be_bytes());
    out
}

/// Runs the sink in this process until every partition's stored offset reaches the topic's end.
fn run_sink_until_caught_up(
    bootstrap: &str,
    url: &str,
    sql: &str,
    group: &str,
) -> Arc<TableSinkStats> {
    let plan = lakehouse_streamsql::load(sql).unwrap();
    let tables = warehouse_tables(&plan);
    let topics: Vec<String> = tables.iter().map(|t| t.topic.clone()).collect();
    let stats = Arc::new(TableSinkStats::default());
    let (sink, _) =
        TableSink::connect(TableSinkConfig::new(url, group), tables, Arc::clone(&stats)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (stop, config) = (Arc::clone(&stop), RunnerConfig::new(bootstrap, group));
        std::thread::spawn(move || {
            runner::run(sink, &config, &stop, Arc::new(RunnerStats::default()))
        })
    };
    let started = Instant::now();
    loop {
        let stored: HashMap<(String, i32), i64> = query_rows(
            url,
            &format!("SELECT topic, partition::text, next_offset::text FROM lakehouse_sink_offsets WHERE consumer_group = '{group}'"),
        )
        .into_iter()
        .map(|r| ((r[0].clone(), r[1].parse().unwrap()), r[2].parse().unwrap()))
        .collect();
        let done = topics.iter().all(|t| {
            watermarks(bootstrap, t)
                .unwrap()
                .iter()
                .all(|(p, _, high)| *high == 0 || stored.get(&(t.clone(), *p)) == Some(high))
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sink did not catch up: {stored:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap().unwrap();
    stats
}

/// Changelogs shaped as ksqlDB writes its tables (its serialisation
/// formats): KAFKA keys (a string key's raw UTF-8 bytes), a JSON object key
/// for several key columns, windowed keys ending in the 8-byte big-endian
/// window start, upper-case JSON values without the key columns, null
/// values as tombstones, and none of our headers.
#[test]
fn key_formats_windows_tombstones_and_dead_letters() {
    let mut ctx = TestContext::new("table-sink-keys");
    let url = ctx.database();
    let (src, t1, t2, t3) = (
        ctx.create_topic("src", 1),
        ctx.create_topic("by_kind", 1),
        ctx.create_topic("by_kind_region", 1),
        ctx.create_topic("per_minute", 1),
    );
    let sql = format!(
        "CREATE STREAM src (kind VARCHAR, region VARCHAR, amount DOUBLE, note VARCHAR)
             WITH (KAFKA_TOPIC='{src}', VALUE_FORMAT='JSON');
         CREATE TABLE by_kind WITH (KAFKA_TOPIC='{t1}') AS
             SELECT kind, SUM(amount) AS total, COUNT(*) AS n, LATEST_BY_OFFSET(note) AS note FROM src GROUP BY kind EMIT CHANGES;
         CREATE TABLE by_kind_region WITH (KAFKA_TOPIC='{t2}', KEY_FORMAT='JSON') AS
             SELECT kind, region, COUNT(*) AS n FROM src GROUP BY kind, region EMIT CHANGES;
         CREATE TABLE per_minute WITH (KAFKA_TOPIC='{t3}') AS
             SELECT kind, COUNT(*) AS n FROM src WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY kind EMIT CHANGES;"
    );
    let bootstrap = ctx.bootstrap().to_string();
    send(
        &bootstrap,
        &t1,
        &[
            (
                Some(b"purchase".to_vec()),
                Some(r#"{"TOTAL":10.5,"N":1,"NOTE":"x"}"#),
            ),
            (
                Some(b"refund".to_vec()),
                Some(r#"{"TOTAL":3.0,"N":1,"NOTE":null}"#),
            ),
            (
                Some(b"purchase".to_vec()),
                Some(r#"{"TOTAL":20.25,"N":2,"NOTE":"y"}"#),
            ),
            (Some(b"refund".to_vec()), None),
            (Some(b"bad".to_vec()), Some(r#"{"TOTAL":"lots","N":1}"#)),
            (None, Some(r#"{"TOTAL":1.0,"N":1}"#)),
        ],
    );
    send(
        &bootstrap,
        &t2,
        &[
            (
                Some(br#"{"KIND":"purchase","REGION":"EU"}"#.to_vec()),
                Some(r#"{"N":3}"#),
            ),
            (
                Some(br#"{"KIND":"purchase","REGION":"US"}"#.to_vec()),
                Some(r#"{"N":1}"#),
            ),
        ],
    );
    let minute = 1_790_000_040_000_i64;
    send(
        &bootstrap,
        &t3,
        &[
            (Some(windowed(b"purchase", minute)), Some(r#"{"N":1}"#)),
            (
                Some(windowed(b"purchase", minute + 60_000)),
                Some(r#"{"N":4}"#),
            ),
            (Some(windowed(b"purchase", minute)), Some(r#"{"N":2}"#)),
            (Some(windowed(b"refund", minute)), Some(r#"{"N":1}"#)),
            (Some(windowed(b"refund", minute)), None),
        ],
    );
    let stats = run_sink_until_caught_up(&bootstrap, &url, &sql, "table-sink-keys");
    assert_eq!(stats.dead_lettered.load(Ordering::Relaxed), 2);

    assert_eq!(
        query_rows(
            &url,
            "SELECT kind, total::text, n::text, note FROM by_kind ORDER BY kind"
        ),
        [["purchase", "20.25", "2", "y"]],
        "last write wins; the tombstone deleted refund"
    );
    assert_eq!(
        query_rows(
            &url,
            "SELECT kind, region, n::text FROM by_kind_region ORDER BY region"
        ),
        [["purchase", "EU", "3"], ["purchase", "US", "1"]]
    );
    assert_eq!(
        query_rows(
            &url,
            "SELECT kind, (extract(epoch FROM windowstart) * 1000)::bigint::text,
                    (extract(epoch FROM windowend) * 1000)::bigint::text, n::text
             FROM per_minute ORDER BY windowstart"
        ),
        [
            [
                "purchase".to_string(),
                minute.to_string(),
                (minute + 60_000).to_string(),
                "2".to_string()
            ],
            [
                "purchase".to_string(),
                (minute + 60_000).to_string(),
                (minute + 120_000).to_string(),
                "4".to_string()
            ],
        ]
    );
    let types = query_rows(
        &url,
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_name = 'by_kind' ORDER BY ordinal_position",
    );
    assert_eq!(
        types,
        [
            ["kind", "text"],
            ["total", "double precision"],
            ["n", "bigint"],
            ["note", "text"],
            ["ingestion_time", "timestamp with time zone"]
        ]
    );
    let dead = query_rows(
        &url,
        "SELECT \"offset\"::text, reason FROM lakehouse_sink_dead_letters ORDER BY \"offset\"",
    );
    assert_eq!(dead.len(), 2);
    assert!(dead[0][1].contains("TOTAL"), "{dead:?}");
    assert!(dead[1][1].contains("without a key"), "{dead:?}");
}

#[test]
fn tables_grow_with_the_file_and_unsafe_changes_are_refused() {
    let mut ctx = TestContext::new("table-sink-schema");
    let url = ctx.database();
    let source = "CREATE STREAM src (kind VARCHAR, region VARCHAR, amount DOUBLE) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');";
    let connect = |tables: &str| {
        let plan = lakehouse_streamsql::load(&format!("{source}{tables}")).unwrap();
        TableSink::connect(
            TableSinkConfig::new(&url, "g"),
            warehouse_tables(&plan),
            Arc::default(),
        )
        .map(|(_, changes)| changes)
    };
    let v1 = "CREATE TABLE growth AS SELECT kind, COUNT(*) AS n FROM src GROUP BY kind;";
    assert_eq!(connect(v1).unwrap(), ["created table growth"]);
    query_rows(
        &url,
        "INSERT INTO growth (kind, n, ingestion_time) VALUES ('purchase', 7, now()) RETURNING kind",
    );
    assert_eq!(
        connect(v1).unwrap(),
        Vec::<String>::new(),
        "nothing to do the second time"
    );

    let v2 = "CREATE TABLE growth AS SELECT kind, COUNT(*) AS n, SUM(amount) AS total FROM src GROUP BY kind;
              CREATE TABLE regions AS SELECT region, COUNT(*) AS n FROM src GROUP BY region;";
    assert_eq!(
        connect(v2).unwrap(),
        [
            "added column growth.total double precision",
            "created table regions"
        ]
    );
    assert_eq!(
        query_rows(&url, "SELECT kind, n::text, total::text FROM growth"),
        [["purchase", "7", "NULL"]]
    );

    let v3 = "CREATE TABLE growth AS SELECT kind, SUM(amount) AS n FROM src GROUP BY kind;";
    let err = connect(v3).unwrap_err().to_string();
    assert!(
        err.contains("growth.n is bigint in the warehouse but double precision"),
        "{err}"
    );

    let v4 = "CREATE TABLE growth WITH (KEY_FORMAT='JSON') AS SELECT kind, region, COUNT(*) AS n FROM src GROUP BY kind, region;";
    let err = connect(v4).unwrap_err().to_string();
    assert!(
        err.contains("has the key (kind) in the warehouse but (kind, region)"),
        "{err}"
    );
    assert_eq!(
        query_rows(&url, "SELECT kind, n::text FROM growth"),
        [["purchase", "7"]],
        "data untouched"
    );
}

const SQL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql");

/// A worker process, killed if the test panics so that nothing outlives it.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_worker(binary: &str, args: &[&str], envs: &[(&str, String)]) -> Worker {
    let child = Command::new(binary)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Worker(child)
}

/// The last value per key of a changelog topic, as JSON; tombstones remove the key.
fn last_values(bootstrap: &str, topic: &str) -> HashMap<Vec<u8>, serde_json::Value> {
    let mut out = HashMap::new();
    for r in read_topic(bootstrap, topic) {
        match r.value {
            Some(v) => out.insert(r.key.unwrap(), serde_json::from_slice(&v).unwrap()),
            None => out.remove(&r.key.unwrap()),
        };
    }
    out
}

#[test]
fn kill_9_and_a_postgres_restart_leave_every_table_equal_to_its_changelog() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let mut postgres = Postgres::start();
    block_on(lakehouse::postgres::create_database_if_missing(
        &postgres.admin_url(),
        "warehouse",
    ))
    .unwrap();
    let url = postgres.url("warehouse");
    block_on(ensure_topics(
        &bootstrap,
        &[TopicSpec::new("transaction_log", 3)],
    ))
    .unwrap();
    let dir = ScratchDir::new("table-sink-crash");
    let envs = [
        ("LAKEHOUSE_KAFKA_BOOTSTRAP", bootstrap.clone()),
        ("LAKEHOUSE_POSTGRES_URL", url.clone()),
        (
            "LAKEHOUSE_STATE_DIR",
            dir.path().join("state").display().to_string(),
        ),
        (
            "LAKEHOUSE_LOG_DIR",
            dir.path().join("log").display().to_string(),
        ),
    ];
    let engine = start_worker(env!("CARGO_BIN_EXE_stream-sql"), &["run", SQL], &envs);
    let sink_args = [
        "--sql",
        SQL,
        "--session-timeout-ms",
        "2000",
        "--batch-ms",
        "100",
    ];
    let table_sink = env!("CARGO_BIN_EXE_table-sink");

    let mut options = ProduceOptions::new(&bootstrap, "transaction_log");
    // About a minute of input at a rate the local broker sustains with the
    // engine's fan-out (BROKER.md), so that every kill lands mid-stream.
    options.count = Some(2_500);
    options.rate = Some(40.0);
    options.seed = 11;
    options.bad_ratio = 0.02;
    let producer = ProduceRun::start(options).unwrap();

    let mut rng = rand::thread_rng();
    let mut sink = start_worker(table_sink, &sink_args, &envs);
    let mut kills = 0;
    let committed = || -> i64 {
        query_rows(
            &url,
            "SELECT coalesce(sum(next_offset), 0)::text FROM lakehouse_sink_offsets",
        )
        .first()
        .map_or(0, |r| r[0].parse().unwrap())
    };
    let mut committed_at_kill = Vec::new();
    while !producer.generation_finished() || kills < 20 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1_000..4_000)));
        sink.0.kill().unwrap();
        sink.0.wait().unwrap();
        kills += 1;
        if kills != 11 && kills != 16 {
            // (PostgreSQL is restarting around kills 10 and 15.)
            committed_at_kill.push(committed());
        }
        if kills == 10 {
            // PostgreSQL goes down while the sink is away and comes back before it returns...
            postgres.restart();
        }
        sink = start_worker(table_sink, &sink_args, &envs);
        if kills == 15 {
            // ...and once under a running sink, which must wait and carry on.
            std::thread::sleep(Duration::from_millis(1_500));
            postgres.restart();
        }
    }
    // The kills hit a working sink: stored offsets kept moving between them.
    let progressed = committed_at_kill.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        progressed >= committed_at_kill.len() / 2,
        "{committed_at_kill:?}"
    );
    let summary = producer.finish();
    assert_eq!(summary.delivered, 2_500, "{:?}", summary.errors);
    wait_until_consumed(
        &bootstrap,
        "lakehouse_stream_sql",
        "transaction_log",
        Duration::from_secs(180),
    );

    let plan = lakehouse_streamsql::load_file(std::path::Path::new(SQL)).unwrap();
    let tables = warehouse_tables(&plan);
    let started = Instant::now();
    loop {
        let stored: BTreeMap<(String, i32), i64> = query_rows(
            &url,
            "SELECT topic, partition::text, next_offset::text FROM lakehouse_sink_offsets WHERE consumer_group = 'lakehouse_table_sink'",
        )
        .into_iter()
        .map(|r| ((r[0].clone(), r[1].parse().unwrap()), r[2].parse().unwrap()))
        .collect();
        let caught_up = tables.iter().all(|t| {
            watermarks(&bootstrap, &t.topic)
                .unwrap()
                .iter()
                .all(|(p, _, high)| *high == 0 || stored.get(&(t.topic.clone(), *p)) == Some(high))
        });
        if caught_up {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the table sink did not catch up: {stored:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    terminate(&sink.0);
    assert!(
        sink.0.wait().unwrap().success(),
        "graceful stop after SIGTERM"
    );
    drop(engine);
    assert!(kills >= 20);

    for table in &tables {
        let expected = last_values(&bootstrap, &table.topic);
        let key_column = table.key_columns[0].name.to_lowercase();
        let columns: Vec<String> = table
            .value_columns
            .iter()
            .map(|c| c.name.to_lowercase())
            .collect();
        let window = if table.window_size_ms.is_some() {
            "(extract(epoch FROM windowstart) * 1000)::bigint::text"
        } else {
            "''"
        };
        let rows = query_rows(
            &url,
            &format!(
                "SELECT {key_column}::text, {window}, {} FROM {}",
                columns
                    .iter()
                    .map(|c| format!("{c}::text"))
                    .collect::<Vec<_>>()
                    .join(", "),
                table.name
            ),
        );
        assert_eq!(
            rows.len(),
            expected.len(),
            "{}: one row per live key",
            table.name
        );
        let actual: HashMap<Vec<u8>, &Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut key = r[0].as_bytes().to_vec();
                if table.window_size_ms.is_some() {
                    key.extend_from_slice(&r[1].parse::<i64>().unwrap().to_be_bytes());
                }
                (key, r)
            })
            .collect();
        for (key, value) in &expected {
            let row = actual.get(key).unwrap_or_else(|| {
                panic!(
                    "{}: key {:?} missing",
                    table.name,
                    String::from_utf8_lossy(key)
                )
            });
            for (i, column) in table.value_columns.iter().enumerate() {
                let want = &value[&column.name];
                let got = &row[2 + i];
                let same = match (want.as_f64(), got.parse::<f64>()) {
                    (Some(w), Ok(g)) => (w - g).abs() <= 1e-9 * w.abs().max(1.0),
                    _ => want
                        .as_str()
                        .map_or(want.is_null() && got == "NULL", |w| w == got),
                };
                assert!(
                    same,
                    "{}.{}: {want} in the changelog, {got} in the warehouse",
                    table.name, column.name
                );
            }
        }
    }

    // And against the input itself: each valid transaction's latest status.
    let latest: HashMap<String, String> = query_rows(
        &url,
        "SELECT transaction_id, latest_status FROM latest_status_par_transaction",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let mut valid = 0;
    for record in read_topic(&bootstrap, "transaction_log") {
        if let Some(t) = record
            .value
            .as_deref()
            .and_then(|v| Transaction::decode(v).ok())
            // The producer's damaged records are the ones off its own lists.
            .filter(|t| t.validate().is_ok())
        {
            assert_eq!(latest.get(&t.transaction_id), Some(&t.status));
            valid += 1;
        }
    }
    assert!(valid > 2_400);
}

#[test]
fn a_broker_restart_mid_run_loses_nothing() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let mut ctx = TestContext::new("table-sink-broker-restart");
    let url = ctx.database();
    block_on(ensure_topics(&bootstrap, &[TopicSpec::new("COUNTS", 1)])).unwrap();
    let sql = "CREATE STREAM src (kind VARCHAR) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON');
               CREATE TABLE counts WITH (KAFKA_TOPIC='COUNTS') AS SELECT kind, COUNT(*) AS n FROM src GROUP BY kind;";
    let plan = lakehouse_streamsql::load(sql).unwrap();
    let (sink, _) = TableSink::connect(
        TableSinkConfig::new(&url, "restart"),
        warehouse_tables(&plan),
        Arc::default(),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (stop, config) = (Arc::clone(&stop), RunnerConfig::new(&bootstrap, "restart"));
        std::thread::spawn(move || {
            runner::run(sink, &config, &stop, Arc::new(RunnerStats::default()))
        })
    };
    let updates = |from: usize, to: usize| -> Vec<(Option<Vec<u8>>, String)> {
        (from..to)
            .map(|i| {
                (
                    Some(format!("K{}", i % 50).into_bytes()),
                    format!(r#"{{"N":{i}}}"#),
                )
            })
            .collect()
    };
    let send_all = |records: Vec<(Option<Vec<u8>>, String)>| {
        let records: Vec<(Option<Vec<u8>>, Option<&str>)> = records
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.as_str())))
            .collect();
        send(&bootstrap, "COUNTS", &records);
    };
    let stored = || {
        query_rows(
            &url,
            "SELECT coalesce(max(next_offset), 0)::text FROM lakehouse_sink_offsets",
        )[0][0]
            .parse::<i64>()
            .unwrap()
    };
    let wait_stored = |n: i64| {
        let started = Instant::now();
        while stored() < n {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "stored {} of {n}",
                stored()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    send_all(updates(0, 500));
    wait_stored(500);
    broker.kill();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    send_all(updates(500, 1_000));
    wait_stored(1_000);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap().unwrap();
    let rows = query_rows(&url, "SELECT kind, n::text FROM counts ORDER BY kind");
    assert_eq!(rows.len(), 50);
    for row in rows {
        let k: usize = row[0][1..].parse().unwrap();
        assert_eq!(
            row[1],
            (950 + k).to_string(),
            "the last update of {}",
            row[0]
        );
    }
}
