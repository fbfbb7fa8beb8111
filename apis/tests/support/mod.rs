//! What the API's integration tests share: a lake written by the lake
//! sink itself from the product's statement file, a real PostgreSQL
//! database, the real `lakehouse-api` binary on a free port, and HTTP calls.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lakehouse::local::ports::free_port;
use lakehouse::local::process::Supervised;
use lakehouse_producer::TransactionGenerator;
use lakehouse_streamsql::ast::RelationKind;
use lakehouse_testkit::{block_on, ScratchDir, TestContext};
use lakehouse_workers::lake::offline::{land, OfflineRecord};
use lakehouse_workers::lake::{landed_topics, LakeSinkArgs};
use nix::sys::signal::Signal;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";
pub const PARTITIONS: i32 = 3;

static DAYS_AGO: AtomicI64 = AtomicI64::new(0);

fn shifted_clock() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(DAYS_AGO.load(Ordering::SeqCst))
}

pub fn statement_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../producer/ksql_queries.sql")
}

/// Writes a lake from generated transactions: for each `(days_ago, count)`,
/// `count` transactions landed on that day, in `transaction_log` and in
/// every derived stream, as the sink writes them. Returns the transactions.
pub fn build_lake(root: &Path, days: &[(i64, usize)], seed: u64) -> Vec<Value> {
    build_lake_from(root, days, seed, 0)
}

/// The same with every partition's offsets starting at `first_offset`
/// (past what the lake holds, to add to it).
pub fn build_lake_from(
    root: &Path,
    days: &[(i64, usize)],
    seed: u64,
    first_offset: i64,
) -> Vec<Value> {
    let plan = Arc::new(lakehouse_streamsql::load_file(&statement_file()).expect("statement file"));
    let mut engine = lakehouse_streamsql::Engine::new(Arc::clone(&plan));
    let mut generator = TransactionGenerator::new(seed, 1, 0);
    let mut next_offset: std::collections::HashMap<(String, i32), i64> = Default::default();
    let mut all = Vec::new();
    let mut raw_offset = [first_offset; PARTITIONS as usize];
    for &(days_ago, count) in days {
        let mut records = Vec::new();
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        for i in 0..count {
            let transaction = generator.next_transaction(Utc::now());
            let value = serde_json::to_vec(&transaction).unwrap();
            all.push(serde_json::from_slice::<Value>(&value).unwrap());
            let partition = (i as i32) % PARTITIONS;
            let offset = raw_offset[partition as usize];
            raw_offset[partition as usize] += 1;
            let timestamp = 1_790_000_000_000 + (all.len() as i64) * 10;
            engine.process(
                &lakehouse_streamsql::InputRecord {
                    topic: "transaction_log",
                    partition,
                    offset,
                    timestamp,
                    key: None,
                    value: Some(&value),
                },
                &mut out,
                &mut dead,
            );
            records.push(OfflineRecord {
                topic: "transaction_log".into(),
                partition,
                offset,
                timestamp_ms: timestamp,
                value,
                source: None,
            });
            for output in out.drain(..) {
                let relation = &plan.relations[output.relation];
                if relation.kind != RelationKind::Stream {
                    continue;
                }
                let Some(value) = output.value else { continue };
                let out_partition = output.partition.unwrap_or(partition);
                let slot = next_offset
                    .entry((relation.topic.clone(), out_partition))
                    .or_insert(first_offset);
                records.push(OfflineRecord {
                    topic: relation.topic.clone(),
                    partition: out_partition,
                    offset: *slot,
                    timestamp_ms: output.timestamp,
                    value,
                    source: Some(format!("transaction_log:{partition}:{offset}")),
                });
                *slot += 1;
            }
        }
        DAYS_AGO.store(days_ago, Ordering::SeqCst);
        let mut config = LakeSinkArgs::from_env().config(root).unwrap();
        config.clock = shifted_clock;
        land(config, landed_topics(&plan), &records).expect("land the records");
    }
    all
}

/// Runs a Python script (duckdb and the like, from scripts/install-prereqs.sh)
/// with `input` as JSON on its standard input; returns its standard output
/// parsed as JSON.
pub fn python_json<T: serde::de::DeserializeOwned>(
    script: &str,
    input: &impl serde::Serialize,
) -> T {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/install-prereqs.sh installs its packages)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(input).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the script")
}

/// A running `lakehouse-api` with its own database and lake.
pub struct ApiServer {
    pub url: String,
    pub database_url: String,
    pub lake: PathBuf,
    pub state: PathBuf,
    pub logs: PathBuf,
    pub transactions: Vec<Value>,
    process: std::sync::Mutex<Option<Supervised>>,
    port: u16,
    _context: Option<TestContext>,
    _dir: ScratchDir,
}

impl ApiServer {
    /// Builds the lake, starts the server on a database of the shared
    /// PostgreSQL and creates an admin `admin`.
    pub fn start(days: &[(i64, usize)], extra_env: &[(&str, &str)]) -> Self {
        let mut context = TestContext::with_bootstrap("api", String::new());
        let database_url = context.database();
        Self::start_on(database_url, Some(context), days, extra_env)
    }

    /// The same on a database of the caller's choosing.
    pub fn start_on(
        database_url: String,
        context: Option<TestContext>,
        days: &[(i64, usize)],
        extra_env: &[(&str, &str)],
    ) -> Self {
        let dir = ScratchDir::new("api");
        let lake = dir.path().join("data_lake");
        let transactions = build_lake(&lake, days, 7);
        let port = free_port();
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            database_url,
            state: dir.path().join("state"),
            logs: dir.path().join("log"),
            lake,
            transactions,
            process: std::sync::Mutex::new(None),
            port,
            _context: context,
            _dir: dir,
        };
        server.spawn(extra_env);
        server.wait_healthy(Duration::from_secs(60));
        server.add_user("admin", true);
        server
    }

    fn spawn(&self, extra_env: &[(&str, &str)]) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lakehouse-api"));
        command
            .env("LAKEHOUSE_POSTGRES_URL", &self.database_url)
            .env("LAKEHOUSE_DATA_LAKE_DIR", &self.lake)
            .env("LAKEHOUSE_STATE_DIR", &self.state)
            .env("LAKEHOUSE_LOG_DIR", &self.logs)
            .env("LAKEHOUSE_API_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "info");
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let process = Supervised::spawn(
            "lakehouse-api",
            command,
            &self.logs.join("api-stdout.log"),
            Signal::SIGTERM,
            None,
        )
        .expect("start lakehouse-api");
        *self.process.lock().unwrap() = Some(process);
    }

    pub fn wait_healthy(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(r) = ureq::get(&format!("{}/health", self.url)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                started.elapsed() < timeout,
                "the API did not become healthy; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self) -> String {
        lakehouse::local::process::tail_of_file(&self.logs.join("api-stdout.log"), 40)
    }

    /// SIGTERM, wait for the exit, start again on the same port.
    pub fn restart(&self, extra_env: &[(&str, &str)]) {
        if let Some(mut process) = self.process.lock().unwrap().take() {
            process.stop(Duration::from_secs(20));
        }
        self.spawn(extra_env);
        self.wait_healthy(Duration::from_secs(60));
    }

    /// SIGKILL, as a crash would; `restart` starts it again.
    pub fn kill(&self) {
        if let Some(mut process) = self.process.lock().unwrap().take() {
            process.kill();
        }
    }

    /// Waits (up to 30 s) for a search as `token` to satisfy `done`; the last answer.
    pub fn wait_search(&self, token: &str, query: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let page = self.call("GET", &format!("/api/v2/search?{query}"), Some(token), None);
            assert_eq!(page.status, 200, "{}", page.text);
            if done(&page.json) || started.elapsed() > Duration::from_secs(30) {
                return page.json;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&self) {
        if let Some(mut process) = self.process.lock().unwrap().take() {
            process.stop(Duration::from_secs(20));
        }
    }

    pub fn add_user(&self, name: &str, admin: bool) {
        let url = self.database_url.clone();
        let name = name.to_string();
        block_on(async move {
            let mut conn = lakehouse::postgres::connect_with_retry(&url, Duration::from_secs(10))
                .await
                .unwrap();
            let hash = lakehouse::identity::hash_password(PASSWORD).unwrap();
            lakehouse::identity::insert_user(&mut conn, &name, &hash, admin)
                .await
                .unwrap();
        });
    }

    /// A token for `name` (password `PASSWORD`).
    pub fn token(&self, name: &str) -> String {
        let response = self.call(
            "POST",
            "/api/token",
            None,
            Some(serde_json::json!({"username": name, "password": PASSWORD})),
        );
        assert_eq!(response.status, 200, "{}", response.text);
        response.json["access_token"].as_str().unwrap().to_string()
    }

    pub fn grant(&self, admin: &str, user: &str, resource: &str, permission: &str) {
        let response = self.call(
            "POST",
            "/api/v2/permissions",
            Some(admin),
            Some(serde_json::json!({"username": user, "resource": resource, "permission": permission})),
        );
        assert!(
            response.status == 201 || response.status == 200,
            "{}",
            response.text
        );
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        self.call_with(method, path, token, body, &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = ureq::request(method, &format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let content_type = response.content_type().to_string();
        let text = response.into_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            content_type,
            text,
            json,
        }
    }

    /// Rows of `access_log` for a path, once the writer has had time to write them.
    pub fn access_log(&self, path: &str) -> Vec<AccessRow> {
        let url = self.database_url.clone();
        let path = path.to_string();
        block_on(async move {
            let pool = lakehouse::postgres::pool(&url, 1).await.unwrap();
            sqlx::query_as(
                "SELECT username, method, status, query, body FROM access_log WHERE path = $1 ORDER BY id",
            )
            .bind(path)
            .fetch_all(&pool)
            .await
            .unwrap()
        })
    }

    /// Waits (up to 15 s) until the rows of `access_log` for `path` satisfy `done`.
    pub fn wait_access_log(
        &self,
        path: &str,
        done: impl Fn(&[AccessRow]) -> bool,
    ) -> Vec<AccessRow> {
        let started = Instant::now();
        loop {
            let rows = self.access_log(path);
            if done(&rows) || started.elapsed() > Duration::from_secs(15) {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// username, method, status, query, body
pub type AccessRow = (Option<String>, String, i32, Option<String>, Option<String>);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Response {
    /// The `parameter` of an error body.
    pub fn parameter(&self) -> Option<&str> {
        self.json["error"]["parameter"].as_str()
    }

    pub fn code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }
}

/// A benchmark's setting from the environment, or its default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
