//! The server under faults: PostgreSQL killed while requests come in and
//! the server stopped during the outage (no access_log entry lost or
//! doubled), a client that sends its headers slowly, a token over its rate.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use lakehouse_testkit::{block_on, Postgres};
use support::ApiServer;

fn count_rows(url: &str, path: &str, query_like: &str) -> i64 {
    let (url, path, like) = (url.to_string(), path.to_string(), query_like.to_string());
    block_on(async move {
        let pool = lakehouse::postgres::pool(&url, 1).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM access_log WHERE path = $1 AND query LIKE $2")
            .bind(path)
            .bind(like)
            .fetch_one(&pool)
            .await
            .unwrap()
    })
}

/// A PostgreSQL of the test's own (to kill) with one database on it.
fn own_postgres(database: &str) -> (Postgres, String) {
    let postgres = Postgres::start();
    block_on(lakehouse::postgres::create_database_if_missing(
        &postgres.admin_url(),
        database,
    ))
    .unwrap();
    let url = postgres.url(database);
    (postgres, url)
}

#[test]
fn access_log_entries_survive_a_postgres_outage_and_a_sigterm() {
    let (mut postgres, url) = own_postgres("audit_outage");
    let server = ApiServer::start_on(url.clone(), None, &[(0, 20)], &[]);
    for i in 0..5 {
        assert_eq!(
            server
                .call("GET", &format!("/health?before={i}"), None, None)
                .status,
            200
        );
    }
    let started = Instant::now();
    while count_rows(&url, "/health", "before=%") < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "entries written while PostgreSQL is up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    postgres.kill();
    for i in 0..12 {
        let response = server.call("GET", &format!("/health?during={i}"), None, None);
        assert_eq!(response.status, 503, "{}", response.text);
        assert_eq!(response.json["dependencies"]["postgres"]["state"], "down");
    }
    // Stopped while PostgreSQL is away: what is queued goes to the spool.
    std::thread::sleep(Duration::from_millis(500));
    server.stop();
    let spool = server.state.join("api").join("audit-spool.jsonl");
    let spooled = std::fs::read_to_string(&spool).unwrap_or_default();
    assert!(
        spooled.contains("during=11"),
        "the spool holds the outage's entries:\n{spooled}"
    );

    postgres.restart();
    server.restart(&[]);
    let started = Instant::now();
    while count_rows(&url, "/health", "during=%") < 12 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "spooled entries replayed:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Written once each, and nothing lost from before the outage.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_rows(&url, "/health", "during=%"), 12);
    assert_eq!(count_rows(&url, "/health", "before=%"), 5);
    assert!(!spool.exists() || std::fs::metadata(&spool).unwrap().len() == 0);
}

#[test]
fn a_client_that_sends_its_headers_slowly_is_cut_off() {
    let server = ApiServer::start(&[(0, 5)], &[("LAKEHOUSE_API_HEADER_TIMEOUT_SECS", "1")]);
    let address = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the connection was held for {waited:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // A well-behaved client is served as usual.
    assert_eq!(server.call("GET", "/health", None, None).status, 200);
}

#[test]
fn a_token_over_its_rate_gets_429() {
    let server = ApiServer::start(&[(0, 5)], &[("LAKEHOUSE_API_RATE_LIMIT", "5")]);
    let token = server.token("admin");
    let statuses: Vec<u16> = (0..30)
        .map(|_| {
            server
                .call("GET", "/api/v2/resources", Some(&token), None)
                .status
        })
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 5,
        "{statuses:?}"
    );
    let limited = server.call("GET", "/api/v2/resources", Some(&token), None);
    if limited.status == 429 {
        assert_eq!(limited.code(), Some("rate_limited"));
    }
    // After a pause the same token is served again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        server
            .call("GET", "/api/v2/resources", Some(&token), None)
            .status,
        200
    );
}

#[test]
fn files_that_land_while_the_server_runs_are_visible_within_about_a_second() {
    let server = ApiServer::start(&[(0, 30)], &[]);
    let token = server.token("admin");
    let total = |server: &ApiServer| {
        server
            .call(
                "GET",
                "/api/v2/datasets/TRANSACTIONS_FLAT?page_size=1",
                Some(&token),
                None,
            )
            .json["total"]
            .as_u64()
            .unwrap()
    };
    let sql_count = |server: &ApiServer| {
        server
            .call(
                "POST",
                "/api/v2/sql",
                Some(&token),
                Some(serde_json::json!({"query": "SELECT count(*) AS n FROM transactions_flat"})),
            )
            .json["rows"][0]["n"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(total(&server), 30);
    assert_eq!(sql_count(&server), 30);
    support::build_lake_from(&server.lake, &[(0, 12)], 99, 1_000);
    let landed = Instant::now();
    // Pages list the folder themselves; SQL trusts a listing for a second.
    while total(&server) != 42 || sql_count(&server) != 42 {
        assert!(
            landed.elapsed() < Duration::from_secs(5),
            "new files not visible after {:?}",
            landed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = landed.elapsed();
    assert!(
        waited < Duration::from_millis(2500),
        "visible after {waited:?}"
    );
}

/// A running server through a minute without PostgreSQL: every request of
/// that minute is answered, its entry spooled, and written exactly once
/// when PostgreSQL is back, with no restart of the server.
#[test]
fn a_minute_long_postgres_outage_loses_no_access_log_entry() {
    let (mut postgres, url) = own_postgres("audit_minute");
    let server = ApiServer::start_on(url.clone(), None, &[(0, 20)], &[]);
    assert_eq!(server.call("GET", "/health", None, None).status, 200);

    postgres.kill();
    let outage = Instant::now();
    let mut sent = 0;
    while outage.elapsed() < Duration::from_secs(60) {
        let response = server.call("GET", &format!("/health?minute={sent}"), None, None);
        assert_eq!(response.status, 503, "{}", response.text);
        sent += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let health = server.call("GET", "/health", None, None);
    assert!(
        health.json["audit"]["spooled"].as_u64().unwrap() >= sent,
        "spooled during the outage: {}",
        health.text
    );
    assert_eq!(health.json["audit"]["dropped"], 0, "{}", health.text);

    postgres.restart();
    let back = Instant::now();
    while count_rows(&url, "/health", "minute=%") < sent as i64 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "replayed after the outage:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_rows(&url, "/health", "minute=%"), sent as i64);
    let spool = server.state.join("api").join("audit-spool.jsonl");
    assert!(!spool.exists() || std::fs::metadata(&spool).unwrap().len() == 0);
}

/// The spool does not grow past its bound; what does not fit is counted as
/// lost (in /health and /metrics) rather than filling the disk.
#[test]
fn the_audit_spool_stays_within_its_bound() {
    let (mut postgres, url) = own_postgres("audit_bound");
    let server = ApiServer::start_on(
        url,
        None,
        &[(0, 20)],
        &[("LAKEHOUSE_API_AUDIT_SPOOL_BYTES", "4096")],
    );
    postgres.kill();
    for i in 0..60 {
        server.call("GET", &format!("/health?bound={i}"), None, None);
    }
    let spool = server.state.join("api").join("audit-spool.jsonl");
    let started = Instant::now();
    loop {
        let health = server.call("GET", "/health", None, None);
        if health.json["audit"]["dropped"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "entries past the bound counted as lost: {}",
            health.text
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let size = std::fs::metadata(&spool).map_or(0, |m| m.len());
    assert!(size > 0 && size <= 4096, "spool of {size} bytes");
    let metrics = server.call("GET", "/metrics", None, None);
    assert!(metrics.text.contains("audit_dropped"), "{}", metrics.text);
}

/// Hits of a search page.
fn search_total(server: &ApiServer, token: &str, query: &str) -> u64 {
    let page = server.call("GET", &format!("/api/v2/search?{query}"), Some(token), None);
    assert_eq!(page.status, 200, "{}", page.text);
    page.json["total"].as_u64().unwrap()
}

/// The search index follows files as they land, and after a kill -9 of the
/// server it catches up with what landed meanwhile: every record once.
#[test]
fn the_search_index_follows_landing_files_and_catches_up_after_a_kill() {
    let server = ApiServer::start(&[(0, 30)], &[]);
    let token = server.token("admin");
    let id_of = |t: &serde_json::Value| t["transaction_id"].as_str().unwrap().to_string();
    let first = id_of(&server.transactions[0]);
    server.wait_search(&token, &format!("q={first}"), |p| {
        p["total"].as_u64() > Some(0)
    });
    let per_id = search_total(&server, &token, &format!("q={first}"));
    assert!(
        per_id >= 2,
        "the raw and the flat record at least: {per_id}"
    );

    // Files landing while it runs are searchable within a few seconds.
    let landed_ids: Vec<String> = support::build_lake_from(&server.lake, &[(0, 12)], 99, 1_000)
        .iter()
        .map(id_of)
        .collect();
    let landed = Instant::now();
    let newest = landed_ids.last().unwrap().clone();
    while search_total(&server, &token, &format!("q={newest}")) == 0 {
        assert!(
            landed.elapsed() < Duration::from_secs(10),
            "a landed record is not searchable after {:?}",
            landed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("searchable {:?} after landing", landed.elapsed());

    let health =
        |server: &ApiServer| server.call("GET", "/health", None, None).json["search"].clone();
    let before = health(&server);
    assert!(before["records"].as_u64() > Some(0), "{before}");
    assert!(before["files_indexed"].as_u64() > Some(0), "{before}");
    assert_eq!(before["errors"], 0, "{before}");

    // Killed; files land while it is down; started again.
    server.kill();
    let while_down: Vec<String> = support::build_lake_from(&server.lake, &[(0, 9)], 5, 2_000)
        .iter()
        .map(id_of)
        .collect();
    server.restart(&[]);
    let last = while_down.last().unwrap().clone();
    server.wait_search(&token, &format!("q={last}"), |p| {
        p["total"].as_u64() > Some(0)
    });
    // Every id, old and new, is found as often as before: once per stream
    // holding it, nothing indexed twice.
    for id in [&first, &landed_ids[0], &newest, &while_down[0], &last] {
        let hits = search_total(&server, &token, &format!("q={id}"));
        assert!(hits >= 2, "{id}: {hits}");
        let raw = search_total(&server, &token, &format!("q={id}&resource=transaction_log"));
        assert_eq!(raw, 1, "{id} is in the raw lake once");
    }
    assert_eq!(
        search_total(&server, &token, &format!("q={first}")),
        per_id,
        "no duplicates after catching up"
    );
    // Only what landed while it was down was indexed again.
    let after = health(&server);
    assert!(
        after["records"].as_u64() > before["records"].as_u64(),
        "{after}"
    );
    assert!(
        after["files_indexed"].as_u64() < before["files_indexed"].as_u64(),
        "no full rebuild: {before} then {after}"
    );
}
