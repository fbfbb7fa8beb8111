//! `lakectl up/status/produce/down` as a user runs them: the real binary,
//! a real broker and PostgreSQL, free ports and a private state folder.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lakehouse::local::{ports, process::is_alive};
use lakehouse_testkit::{shared_broker, shared_postgres};
use serde_json::Value;

mod support;
use support::{all_running, Project};

fn lake_rows(status: &Value, topic: &str) -> Option<u64> {
    status["lake"]
        .as_array()?
        .iter()
        .find(|t| t["topic"] == topic)
        .and_then(|t| t["rows"].as_u64())
}

fn warehouse_rows(status: &Value, table: &str) -> Option<i64> {
    status["warehouse"]
        .as_array()?
        .iter()
        .find(|t| t["table"] == table)
        .and_then(|t| t["rows"].as_i64())
}

/// Runs `lakectl search reindex`, which must succeed saying `expected`.
fn reindex_says(project: &Project, expected: &str) {
    let out = project.run(&["search", "reindex"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(expected), "{said}");
}

fn pid_of(status: &Value, component: &str) -> u32 {
    status["components"][component]["pid"]
        .as_u64()
        .expect("a pid") as u32
}

fn wait_gone(pid: u32) {
    let started = Instant::now();
    while is_alive(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pid {pid} still alive"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection to the project's warehouse.
async fn warehouse(project: &Project) -> sqlx::PgConnection {
    let password =
        std::fs::read_to_string(project.dir.path().join(".lakehouse/postgres/password")).unwrap();
    let url = format!(
        "postgres://lakehouse:{}@127.0.0.1:{}/lakehouse",
        password.trim(),
        project.postgres_port
    );
    lakehouse::postgres::connect_with_retry(&url, Duration::from_secs(10))
        .await
        .unwrap()
}

fn table_exists(project: &Project, table: &str) -> bool {
    lakehouse_testkit::block_on(async {
        let mut conn = warehouse(project).await;
        sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    })
}

fn call(method: &str, url: &str, bearer: &str) -> Value {
    let response = ureq::request(method, url)
        .set("Authorization", bearer)
        .call()
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    response.into_json().unwrap()
}

/// Polls a re-push job's report until its proof says the pipeline
/// processed every record again; the report.
fn wait_processed(api: &str, bearer: &str, job: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let report = call("GET", &format!("{api}/api/v2/repush/{job}"), bearer);
        if report["job"]["state"] == "done" && report["proof"]["processed"] == true {
            return report;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "not processed again: {report:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// One transaction, then the raw topic's whole history, sent again through
/// the running stack: each time the proof finds the new records in the raw
/// lake, in the derived streams their originals are in, and their rows of
/// the warehouse rewritten.
fn repush_is_processed_again(api: &str, bearer: &str) {
    let page = call(
        "GET",
        &format!("{api}/api/v2/datasets/transaction_log?page_size=1"),
        bearer,
    );
    let id = page["records"][0]["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = ureq::post(&format!("{api}/api/v2/repush/transactions/{id}"))
        .set("Authorization", bearer)
        .call()
        .unwrap();
    assert_eq!(response.status(), 201);
    let job: Value = response.into_json().unwrap();
    let report = wait_processed(api, bearer, job["id"].as_str().unwrap());
    let proof = &report["proof"];
    assert_eq!(proof["raw"]["found"], 1, "{proof:#}");
    let flat = stream_of(proof, "TRANSACTIONS_FLAT");
    assert_eq!(
        (flat["expected"].as_u64(), flat["found"].as_u64()),
        (Some(1), Some(1))
    );
    let table = |name: &str| {
        proof["warehouse"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {proof:#}"))
    };
    let latest = table("latest_status_par_transaction");
    assert_eq!(
        latest["key"],
        serde_json::json!(["transaction_id"]),
        "{latest}"
    );
    assert_eq!(
        (latest["checked"].as_u64(), latest["updated"].as_u64()),
        (Some(1), Some(1))
    );

    let response = ureq::post(&format!("{api}/api/v2/repush/datasets/transaction_log"))
        .set("Authorization", bearer)
        .send_json(serde_json::json!({"rate": 2000}))
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: Value = response.into_json().unwrap();
    // The history as it stood: the 500 produced and the one re-pushed above.
    assert_eq!(job["total"], 501);
    let report = wait_processed(api, bearer, job["id"].as_str().unwrap());
    let proof = &report["proof"];
    assert_eq!(report["job"]["sent"], 501);
    assert_eq!(proof["raw"]["found"], 501, "{proof:#}");
    let flat = stream_of(proof, "TRANSACTIONS_FLAT");
    assert_eq!(
        (flat["expected"].as_u64(), flat["found"].as_u64()),
        (Some(501), Some(501))
    );
}

fn stream_of(proof: &Value, name: &str) -> Value {
    proof["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {proof:#}"))
}

#[test]
fn up_produce_down_and_state_survives_a_restart() {
    let project = Project::new("lifecycle");
    let mut up = project.up();
    let status = project.status();
    assert_eq!(status["version"], 1);
    assert_eq!(
        status["components"]["broker"]["endpoint"],
        format!("127.0.0.1:{}", project.kafka_port)
    );
    assert_eq!(status["components"]["broker"]["managed"], true);
    let pg_endpoint = status["components"]["postgres"]["endpoint"]
        .as_str()
        .unwrap();
    assert!(
        pg_endpoint.contains(&project.postgres_port.to_string()) && pg_endpoint.contains("***")
    );

    let out = project.run(&["produce", "--count", "500", "--seed", "7", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["delivered"], 500);
    let status = project.wait_for(|s| s["topics"][0]["records"] == 500);
    assert_eq!(status["topics"][0]["name"], "transaction_log");
    assert!(table_exists(&project, "user_permissions"));

    // The lake sink lands the raw topic and the derived streams within seconds.
    let status = project.wait_for(|s| {
        lake_rows(s, "transaction_log") == Some(500)
            && lake_rows(s, "TRANSACTIONS_FLAT") == Some(500)
    });
    assert_eq!(status["components"]["lake_sink"]["state"], "running");
    // The table sink keeps the warehouse: one row per transaction in the latest-status table.
    let status =
        project.wait_for(|s| warehouse_rows(s, "latest_status_par_transaction") == Some(500));
    assert_eq!(status["components"]["table_sink"]["state"], "running");
    assert_eq!(
        warehouse_rows(&status, "total_par_transaction_type").map(|n| n > 0),
        Some(true)
    );
    assert!(project
        .dir
        .path()
        .join("data_lake/transaction_log")
        .is_dir());
    // The API serves the lake to a user made with `lakectl user add`.
    let api = format!("http://127.0.0.1:{}", project.api_port);
    assert_eq!(status["components"]["api"]["endpoint"], api.as_str());
    let bearer = admin_bearer(&project, &api);
    let page = call(
        "GET",
        &format!("{api}/api/v2/datasets/TRANSACTIONS_FLAT?page_size=1"),
        &bearer,
    );
    assert_eq!(page["total"], 500);
    // The search index under `up` follows the lake; a reindex asked of
    // the running server rebuilds it with the same records.
    let search_total = || -> u64 {
        let page: Value = ureq::get(&format!("{api}/api/v2/search?q=completed"))
            .set("Authorization", &bearer)
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        page["total"].as_u64().unwrap()
    };
    let started = std::time::Instant::now();
    while search_total() == 0 && started.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let before = search_total();
    assert!(before > 0);
    reindex_says(&project, "rebuilt by the running server");
    assert_eq!(search_total(), before);
    // The API logs to its own folder, as it does when run on its own.
    let api_log: String = std::fs::read_dir(project.dir.path().join("log/api"))
        .expect("log/api/ under lakectl up")
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(api_log.contains("lakehouse API listening"), "{api_log}");
    // The stack's metrics: every supervised component, from the registry
    // status reads, at the address status gives.
    let metrics_url = status["stack"]["metrics"].as_str().unwrap().to_string();
    assert_eq!(
        metrics_url,
        format!("http://127.0.0.1:{}/metrics", project.metrics_port)
    );
    let metrics = ureq::get(&metrics_url)
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for line in [
        r#"lakehouse_component_up{component="lake-sink"} 1"#,
        r#"lakehouse_component_up{component="api"} 1"#,
        r#"lakehouse_component_restarts_total{component="table-sink"} 0"#,
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    let flat_in = metrics
        .lines()
        .find(|l| l.starts_with(r#"lakehouse_records_in_total{component="stream-sql"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(flat_in >= 500, "{metrics}");
    // The sinks' lag and landing latency: everything produced has landed,
    // so the lag is small, and the latency was measured.
    let gauge = |name: &str, component: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!(r#"{name}{{component="{component}"}}"#)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<i64>().ok())
    };
    for sink in ["lake-sink", "table-sink"] {
        let lag = gauge("lakehouse_consumer_lag_records", sink);
        assert!(
            lag.is_some_and(|l| (0..500).contains(&l)),
            "{sink}: {metrics}"
        );
        let latency = gauge("lakehouse_landing_latency_milliseconds", sink);
        assert!(latency.is_some_and(|l| l >= 0), "{sink}: {metrics}");
        // Every record of the last minute, to its histogram bucket's bound.
        let p95 = gauge("lakehouse_landing_latency_p95_milliseconds", sink);
        assert!(
            p95.is_some_and(|l| (25..=60_000).contains(&l)),
            "{sink}: {metrics}"
        );
    }
    let health: Value = ureq::get(&metrics_url.replace("/metrics", "/health"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    // The sinks log where the original project's users look for them.
    for folder in [
        "consumer",
        "writer",
        "stream-sql",
        "purge",
        "broker",
        "postgres",
        "producer",
    ] {
        let dir = project.dir.path().join("log").join(folder);
        let bytes: u64 = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(bytes > 0, "{} is empty", dir.display());
    }
    let out = project.run(&["purge", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing expired"));
    let text = project.run(&["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("lake      transaction_log: 500 rows"));
    // The README's way into the warehouse, as written there.
    let counted = project.run(&[
        "psql",
        "-At",
        "-c",
        "SELECT count(*) FROM latest_status_par_transaction",
    ]);
    assert!(
        counted.status.success(),
        "{}",
        String::from_utf8_lossy(&counted.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&counted.stdout).trim(), "500");
    repush_is_processed_again(&api, &bearer);
    let status = project.wait_for(|s| lake_rows(s, "transaction_log") == Some(1002));
    assert_eq!(lake_rows(&status, "TRANSACTIONS_FLAT"), Some(1002));
    assert_eq!(
        warehouse_rows(&status, "latest_status_par_transaction"),
        Some(500),
        "re-pushed transactions update their rows, they add none"
    );

    let (broker_pid, postgres_pid) = (pid_of(&status, "broker"), pid_of(&status, "postgres"));

    let out = project.run(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(up.wait().unwrap().success(), "up exits cleanly after down");
    assert!(
        !is_alive(broker_pid) && !is_alive(postgres_pid),
        "down stops every component"
    );
    let status = project.status();
    assert_eq!(status["stack"]["running"], false);
    assert_eq!(status["components"]["broker"]["state"], "stopped");
    // With no server running, the reindex happens here.
    reindex_says(&project, "search index rebuilt:");

    let mut up = project.up();
    let status = project.wait_for(|s| s["topics"][0]["records"] == 1002);
    assert_eq!(
        status["topics"][0]["partitions"], 3,
        "messages survive down/up"
    );
    assert!(table_exists(&project, "users"), "tables survive down/up");
    assert!(project.run(&["down"]).status.success());
    up.wait().unwrap();
}

#[test]
fn killing_lakectl_up_takes_its_components_down() {
    let project = Project::new("kill_supervisor");
    let mut up = project.up();
    let status = project.status();
    let (broker_pid, postgres_pid) = (pid_of(&status, "broker"), pid_of(&status, "postgres"));
    up.kill().unwrap(); // SIGKILL: no chance to clean up
    up.wait().unwrap();
    wait_gone(broker_pid);
    wait_gone(postgres_pid);
    assert_eq!(project.status()["stack"]["running"], false);

    // And the next start recovers the killed cluster.
    let mut up = project.up();
    assert!(project.run(&["down"]).status.success());
    up.wait().unwrap();
}

#[test]
fn a_taken_port_fails_clearly_and_starts_nothing() {
    let project = Project::new("port_taken");
    let _squatter = TcpListener::bind(("127.0.0.1", project.postgres_port)).unwrap();
    let out = project.run(&["up", "--headless"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {}", project.postgres_port)) && stderr.contains("postgres"),
        "{stderr}"
    );
    assert!(
        ports::is_free(project.kafka_port),
        "the broker was not left running"
    );
    assert!(!Path::new(&project.dir.path().join(".lakehouse/stack.json")).exists());
}

#[test]
fn a_second_up_on_the_same_state_folder_is_refused() {
    let project = Project::new("double_up");
    let mut up = project.up();
    let out = project.run(&["up", "--headless"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    assert!(project.run(&["down"]).status.success());
    up.wait().unwrap();
}

#[test]
fn external_kafka_and_postgres_are_used_instead_of_local_ones() {
    let mut project = Project::new("external");
    let broker = shared_broker();
    let pg = shared_postgres();
    let database = format!("external_{}", std::process::id());
    lakehouse_testkit::block_on(lakehouse::postgres::create_database_if_missing(
        &pg.admin_url(),
        &database,
    ))
    .unwrap();
    project.env = vec![
        ("LAKEHOUSE_KAFKA_BOOTSTRAP", broker.bootstrap()),
        ("LAKEHOUSE_POSTGRES_URL", pg.url(&database)),
    ];
    let mut up = project.up();
    let status = project.status();
    assert_eq!(status["components"]["broker"]["managed"], false);
    assert_eq!(status["components"]["postgres"]["managed"], false);
    assert!(all_running(&status), "{status:#}");
    assert!(
        status["components"]["broker"]["pid"].is_null()
            && status["components"]["postgres"]["pid"].is_null(),
        "nothing local started: {status:#}"
    );
    assert!(!project.dir.path().join(".lakehouse/postgres").exists());
    assert!(!project.dir.path().join(".lakehouse/broker").exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(up.wait().unwrap().success());
}

#[test]
fn a_missing_binary_fails_clearly_and_starts_nothing() {
    let project = Project::new("missing_binary");
    std::fs::write(
        project.dir.path().join("lakehouse.toml"),
        "[kafka]\nbroker_bin = \"/nonexistent/tansu\"\n",
    )
    .unwrap();
    let out = project.run(&["up", "--headless"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/tansu") && stderr.contains("kafka.broker_bin"),
        "{stderr}"
    );
    assert!(
        !project.dir.path().join(".lakehouse/postgres").exists(),
        "PostgreSQL was not started"
    );

    std::fs::write(
        project.dir.path().join("lakehouse.toml"),
        "[postgres]\nbin_dir = \"/nonexistent/bin\"\n",
    )
    .unwrap();
    let out = project.run(&["up", "--headless"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/bin") && stderr.contains("postgres.bin_dir"),
        "{stderr}"
    );
    assert!(
        !project.dir.path().join(".lakehouse/broker").exists(),
        "the broker was not started"
    );
}

/// The number in the first row of `sql` against the project's warehouse.
fn warehouse_number(project: &Project, sql: &str) -> f64 {
    lakehouse_testkit::block_on(async {
        let mut conn = warehouse(project).await;
        sqlx::query_scalar::<_, f64>(sql)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    })
}

/// End to end, as a user runs it: `up`, a burst of 50,000 records from a
/// fast producer (1% damaged on purpose), drained with no component
/// failing or restarting. The raw lake holds exactly the undamaged records
/// (counted from the topic) and dead-letters exactly the damaged ones; the
/// warehouse's tables equal the same aggregates computed over the lake by
/// the API's SQL, and the API's totals equal the lake's; then `down` and
/// `up` again, and nothing is lost or counted twice; then a table is added
/// to the statement file under the running stack: it fills from the whole
/// input while the old tables keep their state (no row rewritten).
#[test]
fn a_burst_drains_with_no_restart_and_exactly_once() {
    const BURST: u64 = 50_000;
    let project = Project::new("burst");
    let product = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../producer/ksql_queries.sql"
    ))
    .unwrap();
    let statement_file = project.dir.path().join("mine.sql");
    std::fs::write(&statement_file, &product).unwrap();
    let statements = statement_file.to_str().unwrap();
    let mut up = project.up_with(&["--sql", statements]);
    let out = project.run(&[
        "produce",
        "--count",
        "50000",
        "--threads",
        "2",
        "--seed",
        "12",
        "--bad-ratio",
        "0.01",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let malformed = summary["malformed"].as_u64().unwrap();
    assert!(malformed > 250 && malformed < 750, "{summary}");
    // The undamaged records, from the topic as the broker holds them.
    let bootstrap = format!("127.0.0.1:{}", project.kafka_port);
    let input = lakehouse_testkit::read_topic(&bootstrap, "transaction_log");
    assert_eq!(input.len() as u64, BURST);
    let valid = input
        .iter()
        .filter(|r| {
            !r.headers
                .iter()
                .any(|(k, _)| k == lakehouse::topics::MALFORMED_HEADER)
        })
        .count() as u64;
    assert_eq!(valid, BURST - malformed);

    let started = Instant::now();
    let drained = |s: &Value| {
        ["stream_sql", "lake_sink", "table_sink"]
            .iter()
            .all(|c| s["components"][c]["lag"] == 0)
            && lake_rows(s, "transaction_log") == Some(valid)
            && warehouse_rows(s, "latest_status_par_transaction") == Some(valid as i64)
    };
    let status = loop {
        let status = project.status();
        if drained(&status) {
            break status;
        }
        for component in ["stream_sql", "lake_sink", "table_sink"] {
            let c = &status["components"][component];
            assert_eq!(c["state"], "running", "{component}: {c:#}");
            assert_eq!(c["restarts"], 0, "{component} restarted: {c:#}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not drained in 10 minutes; last status {status:#}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    println!("{BURST} records drained in {:?}", started.elapsed());
    for component in [
        "broker",
        "postgres",
        "stream_sql",
        "lake_sink",
        "table_sink",
    ] {
        let c = &status["components"][component];
        assert_eq!(c["state"], "running", "{component}: {c:#}");
        assert_eq!(c["restarts"], 0, "{component}: {c:#}");
    }
    let lake = status["lake"].as_array().unwrap();
    let raw = lake
        .iter()
        .find(|t| t["topic"] == "transaction_log")
        .unwrap();
    assert_eq!(
        raw["dead_letters"], malformed,
        "the damaged records, and only they, are dead letters"
    );
    // The engine's dead letters (one per damaged record and stream that
    // could not read it) are shown as its topic holds them.
    let engine_dead_letters = &status["stream_sql_dlq"]["records"];
    assert!(
        engine_dead_letters.as_u64().is_some_and(|n| n > 0),
        "{status:#}"
    );
    assert_eq!(
        engine_dead_letters, &status["components"]["stream_sql"]["counters"]["dead_letters"],
        "{status:#}"
    );
    let flat_rows = lake_rows(&status, "TRANSACTIONS_FLAT").unwrap();
    assert!(
        flat_rows >= valid,
        "every undamaged record is in TRANSACTIONS_FLAT"
    );

    let api = format!("http://127.0.0.1:{}", project.api_port);
    let bearer = admin_bearer(&project, &api);
    let agree = |label: &str| {
        // The API's totals are the lake's.
        for (dataset, rows) in [("transaction_log", valid), ("TRANSACTIONS_FLAT", flat_rows)] {
            let page = call(
                "GET",
                &format!("{api}/api/v2/datasets/{dataset}?page_size=1"),
                &bearer,
            );
            assert_eq!(page["total"], rows, "{label}: {dataset}: {page}");
        }
        // The warehouse equals the same aggregate over the lake.
        let over_lake = sql(
            &api,
            &bearer,
            "SELECT transaction_type, count(*) AS n, sum(amount) AS total FROM TRANSACTIONS_FLAT \
             WHERE transaction_type IS NOT NULL GROUP BY transaction_type",
        );
        let mut counted = 0.0;
        for row in &over_lake {
            let kind = row["transaction_type"].as_str().unwrap();
            let n = row["n"].as_f64().unwrap();
            counted += n;
            let in_warehouse = warehouse_number(
                &project,
                &format!("SELECT transaction_count::float8 FROM total_par_transaction_type WHERE transaction_type = '{kind}'"),
            );
            assert_eq!(in_warehouse, n, "{label}: {kind}");
            let total = row["total"].as_f64().unwrap();
            let summed = warehouse_number(
                &project,
                &format!("SELECT total_amount::float8 FROM total_par_transaction_type WHERE transaction_type = '{kind}'"),
            );
            assert!(
                (summed - total).abs() <= 1e-6 * total.abs().max(1.0),
                "{label}: {kind}: {summed} vs {total}"
            );
        }
        let warehouse_total = warehouse_number(
            &project,
            "SELECT sum(transaction_count)::float8 FROM total_par_transaction_type",
        );
        assert_eq!(warehouse_total, counted, "{label}");
        assert!(counted >= valid as f64, "{label}: {counted}");
    };
    agree("after the burst");

    // Down and up again: nothing lost, nothing counted twice.
    assert!(project.run(&["down"]).status.success());
    up.wait().unwrap();
    let mut up = project.up_with(&["--sql", statements]);
    let status = project.wait_for(|s| {
        ["stream_sql", "lake_sink", "table_sink"]
            .iter()
            .all(|c| s["components"][c]["lag"] == 0)
    });
    assert_eq!(lake_rows(&status, "transaction_log"), Some(valid));
    assert_eq!(lake_rows(&status, "TRANSACTIONS_FLAT"), Some(flat_rows));
    agree("after down and up");

    // A table added under the running stack fills from the whole input;
    // the old tables keep their state: not one of their rows is rewritten.
    let last_written = |table: &str| {
        warehouse_number(
            &project,
            &format!("SELECT extract(epoch FROM max(ingestion_time))::float8 FROM {table}"),
        )
    };
    let old_tables = [
        "latest_status_par_transaction",
        "total_par_transaction_type",
    ];
    let written_before: Vec<f64> = old_tables.iter().map(|t| last_written(t)).collect();
    std::fs::write(
        &statement_file,
        product
            + "\nCREATE TABLE count_par_status AS SELECT status, COUNT(*) AS n \
               FROM transactions_flat GROUP BY status;\n",
    )
    .unwrap();
    let with_status = sql(
        &api,
        &bearer,
        "SELECT count(*) AS n FROM TRANSACTIONS_FLAT WHERE status IS NOT NULL",
    )[0]["n"]
        .as_f64()
        .unwrap();
    assert!(with_status > 0.0);
    let counted = warehouse_number_eventually(
        &project,
        "SELECT coalesce(sum(n), 0)::float8 FROM count_par_status",
        |n| n >= with_status,
    );
    assert_eq!(
        counted, with_status,
        "the new table counts every input once"
    );
    let status = project.wait_for(|s| {
        ["stream_sql", "lake_sink", "table_sink"]
            .iter()
            .all(|c| s["components"][c]["lag"] == 0)
    });
    assert_eq!(lake_rows(&status, "TRANSACTIONS_FLAT"), Some(flat_rows));
    let written_after: Vec<f64> = old_tables.iter().map(|t| last_written(t)).collect();
    assert_eq!(
        written_after, written_before,
        "old tables were not rewritten"
    );
    agree("after a table was added");
    assert!(project.run(&["down"]).status.success());
    up.wait().unwrap();
}

/// The rows of one SELECT through the API.
fn sql(api: &str, bearer: &str, query: &str) -> Vec<Value> {
    let answer: Value = ureq::post(&format!("{api}/api/v2/sql"))
        .set("Authorization", bearer)
        .send_json(serde_json::json!({ "query": query }))
        .unwrap()
        .into_json()
        .unwrap();
    answer["rows"].as_array().unwrap().clone()
}

/// A token of a new admin of the stack's API.
fn admin_bearer(project: &Project, api: &str) -> String {
    let mut add = project
        .lakectl()
        .args(["user", "add", "ops", "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin
            .take()
            .unwrap()
            .write_all(b"a long passphrase\n")
            .unwrap();
    }
    assert!(add.wait_with_output().unwrap().status.success());
    let token: Value = ureq::post(&format!("{api}/api/token"))
        .send_json(serde_json::json!({"username": "ops", "password": "a long passphrase"}))
        .unwrap()
        .into_json()
        .unwrap();
    format!("Bearer {}", token["access_token"].as_str().unwrap())
}

/// kill -9 of the broker and then of PostgreSQL under a running stack: each
/// is started again, the workers that failed meanwhile are restarted with
/// backoff, `lakectl up` never gives up, and every record still lands once.
#[test]
fn the_stack_rides_out_a_broker_and_a_postgres_crash() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let project = Project::new("crashes");
    let mut up = project.up();
    let produce = |count: &str, seed: &str| {
        let out = project.run(&["produce", "--count", count, "--seed", seed, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    produce("1000", "1");
    project.wait_for(|s| lake_rows(s, "transaction_log") == Some(1000));

    for (component, seed) in [("broker", "2"), ("postgres", "3")] {
        let status = project.status();
        let pid = pid_of(&status, component);
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        wait_gone(pid);
        // Started again: a new process, counted as a restart, answering.
        project.wait_for(|s| {
            s["components"][component]["state"] == "running"
                && s["components"][component]["restarts"].as_u64() >= Some(1)
                && s["components"][component]["pid"].as_u64() != Some(u64::from(pid))
        });
        produce("1000", seed);
    }
    let status = project.wait_for(|s| {
        lake_rows(s, "transaction_log") == Some(3000)
            && lake_rows(s, "TRANSACTIONS_FLAT") == Some(3000)
            && warehouse_rows(s, "latest_status_par_transaction") == Some(3000)
            && ["stream_sql", "lake_sink", "table_sink"]
                .iter()
                .all(|c| s["components"][c]["state"] == "running")
    });
    assert_eq!(status["stack"]["running"], true, "up never stopped itself");
    assert!(is_alive(
        status["stack"]["supervisor_pid"].as_u64().unwrap() as u32
    ));
    let counted = warehouse_number(
        &project,
        "SELECT sum(transaction_count)::float8 FROM total_par_transaction_type",
    );
    assert_eq!(counted, 3000.0, "every input counted once in the warehouse");
    assert!(project.run(&["down"]).status.success());
    assert!(up.wait().unwrap().success());
}

/// The statement file changed under a running stack: `stream-sql check`
/// says what the change does statement by statement, and the stack applies
/// it by itself within seconds, with no restart and no reset: the changed
/// table is rebuilt from the start of the input on its own, a new table
/// fills (a new warehouse table), and the unchanged tables keep their
/// state and counts.
#[test]
fn a_statement_file_changed_under_a_running_stack_rebuilds_only_what_changed() {
    let project = Project::new("changed_sql");
    let product = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../producer/ksql_queries.sql"
    ))
    .unwrap();
    let mine = project.dir.path().join("mine.sql");
    std::fs::write(&mine, &product).unwrap();
    let mine = mine.to_str().unwrap();
    let mut up = project
        .lakectl()
        .args(["up", "--headless", "--sql", mine])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    project.wait_for(|s| s["stack"]["running"] == true && support::all_running(s));
    let out = project.run(&["produce", "--count", "120", "--seed", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    project.wait_for(|s| warehouse_rows(s, "latest_status_par_transaction") == Some(120));

    let changed = product.replace(
        "SELECT transaction_type, SUM(amount) AS total_amount, COUNT(*) AS transaction_count",
        "SELECT transaction_type, SUM(amount) AS total_amount, COUNT(*) AS transaction_count, MAX(amount) AS largest",
    ) + "\nCREATE TABLE count_par_status AS SELECT status, COUNT(*) AS n FROM transactions_flat GROUP BY status;\n";
    assert_ne!(changed, product);
    let proposed = project.dir.path().join("proposed.sql");
    std::fs::write(&proposed, &changed).unwrap();
    let check = project.run(&["stream-sql", "check", proposed.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    let line = |name: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with("table") && l.contains(name))
            .unwrap_or_else(|| panic!("{name} in {report}"))
            .to_string()
    };
    assert!(
        line("TOTAL_PAR_TRANSACTION_TYPE").contains("rebuilt"),
        "{report}"
    );
    assert!(line("COUNT_PAR_STATUS").contains("new"), "{report}");
    assert!(
        line("LATEST_STATUS_PAR_TRANSACTION").contains("unchanged"),
        "{report}"
    );

    // A file that does not plan is refused; the stack runs on.
    std::fs::write(mine, "CREATE TABLE broken AS SELECT nope FROM nowhere;").unwrap();
    let refused = project.wait_for(|s| {
        s["components"]["stream_sql"]["last_error"]
            .to_string()
            .contains("refused")
    });
    assert_eq!(refused["components"]["stream_sql"]["state"], "running");

    // Applied by the running stack.
    std::fs::write(mine, &changed).unwrap();
    // The changed table is recomputed from the whole input: its new column is filled.
    let largest = warehouse_number_eventually(
        &project,
        "SELECT count(*)::float8 FROM total_par_transaction_type WHERE largest IS NOT NULL",
        |n| n >= 4.0,
    );
    assert!(largest >= 4.0);
    // The new table counts every input; the unchanged ones kept theirs.
    let counted = warehouse_number_eventually(
        &project,
        "SELECT coalesce(sum(n), 0)::float8 FROM count_par_status",
        |n| n >= 120.0,
    );
    assert_eq!(counted, 120.0);
    // More input reaches old and new tables alike.
    let out = project.run(&["produce", "--count", "30", "--seed", "4"]);
    assert!(out.status.success());
    let counted = warehouse_number_eventually(
        &project,
        "SELECT coalesce(sum(n), 0)::float8 FROM count_par_status",
        |n| n >= 150.0,
    );
    assert_eq!(counted, 150.0);
    project.wait_for(|s| warehouse_rows(s, "latest_status_par_transaction") == Some(150));
    assert!(project.run(&["down"]).status.success());
    up.wait().unwrap();
}

/// `sql`'s number once `done` accepts it (or after a minute); until then
/// the query may also fail (a table or column not created yet).
fn warehouse_number_eventually(project: &Project, sql: &str, done: impl Fn(f64) -> bool) -> f64 {
    let started = std::time::Instant::now();
    loop {
        let n = lakehouse_testkit::block_on(async {
            let mut conn = warehouse(project).await;
            sqlx::query_scalar::<_, f64>(sql).fetch_one(&mut conn).await
        });
        let timed_out = started.elapsed() > std::time::Duration::from_secs(60);
        match n {
            Ok(n) if done(n) || timed_out => return n,
            Err(e) if timed_out => panic!("{sql}: {e}"),
            _ => {}
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// `up --demo`: records flow into the lake and the warehouse with no
/// producer run, the demo producer shows in `status`, and `down` stops it
/// with the rest.
#[test]
fn up_demo_keeps_records_flowing() {
    let project = Project::new("demo");
    let mut up = project
        .lakectl()
        .args(["up", "--headless", "--demo", "--demo-rate", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = project.wait_for(|s| {
        s["components"]["producer"]["state"] == "running"
            && lake_rows(s, "TRANSACTIONS_FLAT").is_some_and(|n| n >= 50)
            && warehouse_rows(s, "latest_status_par_transaction").is_some_and(|n| n >= 50)
    });
    assert!(
        status["components"]["producer"]["endpoint"]
            .as_str()
            .unwrap()
            .contains("transaction_log"),
        "{status:#}"
    );
    let first = lake_rows(&status, "transaction_log").unwrap();
    let later = project.wait_for(|s| lake_rows(s, "transaction_log").is_some_and(|n| n > first));
    assert!(
        lake_rows(&later, "transaction_log").unwrap() > first,
        "still flowing"
    );
    assert!(project.run(&["down"]).status.success());
    assert!(up.wait().unwrap().success());
}
