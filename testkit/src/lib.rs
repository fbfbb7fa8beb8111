//! Test harness: a real Tansu broker and a real PostgreSQL on free ports.
//!
//! * [`shared_broker`] and [`shared_postgres`] start one broker and one
//!   PostgreSQL per test process on first use; every test then gets its own
//!   topics and its own database through a [`TestContext`], so tests run in
//!   parallel without seeing each other's data.
//! * [`Broker::start`] and [`Postgres::start`] give a test its own servers,
//!   for tests that kill or restart them.
//!
//! Servers never outlive the test process: they carry a parent-death signal
//! (the shared ones are spawned from a thread that lives as long as the
//! process), owned ones are stopped on drop (also when a test panics), and
//! folders left by a killed test run are removed by the next one.

pub mod topic_reader;

pub use topic_reader::{read_topic, terminate, TopicRecord};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use lakehouse::kafka::{self, TopicSpec};
use lakehouse::local::broker::{BrokerSpec, LocalBroker};
use lakehouse::local::postgres::{LocalPostgres, PostgresSpec};
use lakehouse::local::{ports, process, tools, LocalError};

/// Root of the harness's scratch folders; traversable by the postgres account.
fn scratch_root() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join("lakehouse-testkit");
        std::fs::create_dir_all(&root).expect("create the testkit scratch folder");
        let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755));
        remove_stale_folders(&root);
        root
    })
    .clone()
}

/// A scratch folder removed on drop; `owner.pid` lets a later run remove it
/// if this process is killed before it can.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(prefix: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir_in(scratch_root())
            .expect("create a scratch folder")
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod scratch");
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
            .expect("write owner.pid");
        Self { path: dir }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // A failing test leaves its data and logs to look at; the next run
        // removes them (their owner is gone).
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn remove_stale_folders(root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let owner = std::fs::read_to_string(entry.path().join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = owner {
            if !process::is_alive(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn tansu_binary() -> PathBuf {
    let configured = std::env::var_os("LAKEHOUSE_TANSU_BIN").map(PathBuf::from);
    tools::find_tansu(configured.as_deref()).unwrap_or_else(|| {
        panic!(
            "the Tansu broker is not installed; install it with `{}` \
             (scripts/install-prereqs.sh does this)",
            tools::TANSU_INSTALL_COMMAND
        )
    })
}

/// Retries a start on a fresh port when another process won the race for the port.
fn start_on_free_port<T>(mut start: impl FnMut(u16) -> Result<T, LocalError>) -> T {
    let mut last = None;
    for _ in 0..5 {
        match start(ports::free_port()) {
            Ok(server) => return server,
            Err(e @ LocalError::PortTaken { .. }) => last = Some(e),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{}", last.expect("at least one attempt"))
}

/// A broker owned by one test: stopped and its storage removed on drop.
#[derive(Debug)]
pub struct Broker {
    // Declared first: the process stops before its folder goes.
    inner: LocalBroker,
    _dir: ScratchDir,
}

impl Broker {
    pub fn start() -> Self {
        let dir = ScratchDir::new("broker");
        let inner = start_on_free_port(|port| {
            LocalBroker::start(BrokerSpec {
                binary: tansu_binary(),
                data_dir: dir.path().join("data"),
                port,
                log_file: dir.path().join("broker.log"),
                ready_timeout: Duration::from_secs(30),
            })
        });
        Self { inner, _dir: dir }
    }

    pub fn bootstrap(&self) -> String {
        self.inner.bootstrap()
    }

    /// A broker with `topics` created.
    pub fn start_with_topics(topics: &[TopicSpec]) -> Self {
        let broker = Self::start();
        block_on(kafka::ensure_topics(&broker.bootstrap(), topics))
            .unwrap_or_else(|e| panic!("{e}"));
        broker
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.inner.kill();
    }

    /// Starts again on the same port and storage.
    pub fn restart(&mut self) {
        self.inner.restart().unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn log_file(&self) -> &Path {
        self.inner.log_file()
    }

    /// The broker's SQLite storage file.
    pub fn database(&self) -> PathBuf {
        self.inner.database()
    }
}

/// A PostgreSQL cluster owned by one test: stopped and removed on drop.
#[derive(Debug)]
pub struct Postgres {
    inner: LocalPostgres,
    _dir: ScratchDir,
}

impl Postgres {
    pub fn start() -> Self {
        let dir = ScratchDir::new("postgres");
        let bin_dir = tools::find_postgres_bin_dir(None).unwrap_or_else(|e| panic!("{e}"));
        let inner = start_on_free_port(|port| {
            LocalPostgres::start(PostgresSpec {
                bin_dir: bin_dir.clone(),
                dir: dir.path().join("cluster"),
                port,
                log_file: dir.path().join("postgres.log"),
                durable: false,
                ready_timeout: Duration::from_secs(60),
            })
        });
        Self { inner, _dir: dir }
    }

    /// URL of the `postgres` maintenance database, for creating databases.
    pub fn admin_url(&self) -> String {
        self.inner.url("postgres")
    }

    pub fn url(&self, database: &str) -> String {
        self.inner.url(database)
    }

    pub fn kill(&mut self) {
        self.inner.kill();
    }

    pub fn restart(&mut self) {
        self.inner.restart().unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Starts `make` on a thread that never ends, so that the parent-death
/// signal of the processes it spawns fires only when the process exits
/// (for any server shared by the tests of a process).
pub fn start_forever<T: Send + Sync + 'static>(make: fn() -> T) -> &'static T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("testkit-servers".into())
        .spawn(move || {
            let server: &'static T = Box::leak(Box::new(make()));
            tx.send(server).expect("testkit caller waits");
            loop {
                std::thread::park();
            }
        })
        .expect("spawn the testkit server thread");
    rx.recv()
        .unwrap_or_else(|_| panic!("starting a shared test server failed; see the panic above"))
}

/// The broker shared by the tests of this process.
pub fn shared_broker() -> &'static Broker {
    static SHARED: OnceLock<&'static Broker> = OnceLock::new();
    SHARED.get_or_init(|| start_forever(Broker::start))
}

/// The PostgreSQL cluster shared by the tests of this process.
pub fn shared_postgres() -> &'static Postgres {
    static SHARED: OnceLock<&'static Postgres> = OnceLock::new();
    SHARED.get_or_init(|| start_forever(Postgres::start))
}

/// A runtime for harness calls made from synchronous tests.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// One test's view of the shared servers: its own topic names and database.
#[derive(Debug)]
pub struct TestContext {
    id: String,
    bootstrap: String,
    database: Option<String>,
}

impl TestContext {
    /// `name` only makes names readable in broker and database listings.
    pub fn new(name: &str) -> Self {
        Self::with_bootstrap(name, shared_broker().bootstrap())
    }

    /// A context on a broker of the test's own.
    pub fn with_bootstrap(name: &str, bootstrap: String) -> Self {
        use rand::Rng;
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let suffix: u32 = rand::thread_rng().gen();
        Self {
            id: format!("{clean}_{suffix:08x}"),
            bootstrap,
            database: None,
        }
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// A topic name private to this test.
    pub fn topic_name(&self, base: &str) -> String {
        format!("{base}.{}", self.id)
    }

    /// Creates a topic private to this test and returns its name.
    pub fn create_topic(&self, base: &str, partitions: i32) -> String {
        let name = self.topic_name(base);
        block_on(kafka::ensure_topics(
            &self.bootstrap,
            &[TopicSpec::new(&name, partitions)],
        ))
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
        name
    }

    /// A fresh database private to this test (dropped with the context); returns its URL.
    pub fn database(&mut self) -> String {
        let pg = shared_postgres();
        let name = format!("t_{}", self.id);
        block_on(lakehouse::postgres::create_database_if_missing(
            &pg.admin_url(),
            &name,
        ))
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        self.database = Some(name.clone());
        pg.url(&name)
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        if let Some(db) = self.database.take() {
            let admin = shared_postgres().admin_url();
            // Drop may run inside a test's runtime; a separate thread has none.
            let _ = std::thread::spawn(move || {
                block_on(lakehouse::postgres::drop_database(&admin, &db))
            })
            .join();
        }
    }
}

/// Waits until consumer group `group` has committed every record of `topic`.
pub fn wait_until_consumed(bootstrap: &str, group: &str, topic: &str, timeout: Duration) {
    let started = std::time::Instant::now();
    loop {
        if matches!(
            kafka::consumer_lag(bootstrap, group, topic, Duration::from_secs(5)),
            Ok(0)
        ) {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "{group} did not consume {topic} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Peak resident memory of this process (VmHWM), in MiB, for benchmark tables.
/// Runs `command` to its end and returns its standard output; fails the
/// test with its standard error if it did not succeed.
pub fn stdout_of(command: &mut std::process::Command) -> Vec<u8> {
    let out = command.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn peak_rss_mib() -> u64 {
    proc_status_mib("self", "VmHWM:")
}

/// Current resident memory (VmRSS) of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> u64 {
    proc_status_mib(&pid.to_string(), "VmRSS:")
}

fn proc_status_mib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}
