//! `lakectl up`: the single-machine stack's lifecycle.
//!
//! Every check that can fail cheaply (ports, binaries) runs before anything
//! starts, so a missing prerequisite leaves nothing half-started; a later
//! failure stops whatever had started (the components stop on drop).
//! Components are spawned from the main thread, which lives as long as the
//! stack: their parent-death signal then fires only when `lakectl` ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lakehouse::kafka::{self, TopicSpec};
use lakehouse::local::broker::{BrokerSpec, LocalBroker};
use lakehouse::local::postgres::{LocalPostgres, PostgresSpec};
use lakehouse::local::{ports, tools, LocalError};
use lakehouse::postgres::{
    apply_user_schema, connect_with_retry, create_database_if_missing, redact_url,
};
use lakehouse::Settings;
use lakehouse_streamsql::runtime::{self, RuntimeConfig, RuntimeStats};
use lakehouse_streamsql::Plan;
use lakehouse_workers::lake::{landed_topics, LakeSink, LakeSinkArgs, LakeSinkStats};
use lakehouse_workers::purge::{self, PurgeArgs};
use lakehouse_workers::sink::{self, runner::RunnerConfig, runner::RunnerStats};
use lakehouse_workers::warehouse::{warehouse_tables, TableSink, TableSinkArgs};
use tokio::runtime::Runtime;

use crate::state::{ManagedProcess, StackFile, StackLock};

/// How many times a component that dies is restarted before the stack gives up.
const MAX_RESTARTS: u32 = 5;

/// The topics the stack creates on start.
pub fn required_topics(settings: &Settings) -> Vec<TopicSpec> {
    vec![TopicSpec::new(
        &settings.topics.transaction_log,
        settings.topics.partitions,
    )]
}

type WorkerBody = dyn Fn(&AtomicBool) -> Result<(), String> + Send + Sync;

/// A worker (stream SQL, lake sink, purge schedule) on a thread of `lakectl
/// up`: restartable after a failure, stopped through its flag so that it
/// ends with a checkpoint or a flush.
struct WorkerThread {
    name: &'static str,
    body: Arc<WorkerBody>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl WorkerThread {
    fn start(
        name: &'static str,
        body: impl Fn(&AtomicBool) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        let mut worker = Self {
            name,
            body: Arc::new(body),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        worker.spawn();
        worker
    }

    fn spawn(&mut self) {
        let (body, stop) = (Arc::clone(&self.body), Arc::clone(&self.stop));
        self.thread = Some(
            std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || body(&stop))
                .expect("spawn a worker thread"),
        );
    }

    /// The error that stopped the worker, if it stopped.
    fn failure(&mut self) -> Option<String> {
        if !self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Some(e),
            Some(Err(_)) => Some("it panicked".into()),
            _ => Some("it stopped".into()),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running single-machine stack.
pub struct Stack {
    settings: Settings,
    /// In start order; stopped in reverse.
    workers: Vec<WorkerThread>,
    // Field order is stop order: PostgreSQL last, so nothing loses its database early.
    broker: Option<LocalBroker>,
    postgres: Option<LocalPostgres>,
    restarts: u32,
    started_at: chrono::DateTime<chrono::Utc>,
    _lock: StackLock,
}

struct Prerequisites {
    tansu: Option<PathBuf>,
    postgres_bin: Option<PathBuf>,
}

impl Stack {
    /// Starts every local component, prepares topics, database and schema,
    /// then runs the statement file `sql`.
    pub fn start(settings: &Settings, runtime: &Runtime, sql: &Path) -> Result<Stack> {
        let lock = StackLock::acquire(&settings.state_dir)?;
        // A bad statement file is reported before anything starts.
        let plan = Arc::new(lakehouse_streamsql::load_file(sql)?);
        let prerequisites = check_prerequisites(settings)?;
        let mut stack = Stack {
            settings: settings.clone(),
            workers: Vec::new(),
            broker: None,
            postgres: None,
            restarts: 0,
            started_at: chrono::Utc::now(),
            _lock: lock,
        };

        if let Some(binary) = prerequisites.tansu {
            let broker = LocalBroker::start(stack.broker_spec(binary))?;
            step(
                "broker",
                &format!(
                    "{} (pid {}, Tansu, sqlite storage)",
                    broker.bootstrap(),
                    broker.pid()
                ),
            );
            stack.broker = Some(broker);
        } else {
            kafka::wait_until_ready(&settings.kafka_bootstrap(), Duration::from_secs(15))
                .context("the external Kafka (kafka.bootstrap) is not reachable")?;
            step(
                "broker",
                &format!("{} (external)", settings.kafka_bootstrap()),
            );
        }

        if let Some(bin_dir) = prerequisites.postgres_bin {
            let postgres = LocalPostgres::start(stack.postgres_spec(bin_dir))?;
            step(
                "postgres",
                &format!(
                    "127.0.0.1:{} (pid {}, data in {})",
                    postgres.port(),
                    postgres.pid(),
                    settings.postgres_state_dir().display()
                ),
            );
            stack.postgres = Some(postgres);
        }

        runtime.block_on(stack.prepare_storage())?;
        let config = RuntimeConfig::new(
            settings.kafka_bootstrap(),
            settings.state_dir.join("stream-sql"),
        );
        step(
            "stream-sql",
            &format!(
                "{} ({} streams, {} tables; dead letters in {})",
                sql.display(),
                plan.streams().count(),
                plan.tables().count(),
                config.dlq_topic
            ),
        );
        let stream_sql_plan = Arc::clone(&plan);
        stack
            .workers
            .push(WorkerThread::start("stream-sql", move |stop| {
                let stats = RuntimeStats::default();
                runtime::run(Arc::clone(&stream_sql_plan), &config, stop, &stats)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }));
        stack.workers.push(lake_sink_worker(settings, &plan)?);
        stack.workers.push(table_sink_worker(settings, &plan)?);
        stack.workers.push(purge_worker(settings)?);
        stack.stack_file().write(&settings.state_dir)?;
        Ok(stack)
    }

    fn broker_spec(&self, binary: PathBuf) -> BrokerSpec {
        BrokerSpec {
            binary,
            data_dir: self.settings.broker_state_dir(),
            port: self.settings.kafka.port,
            log_file: self.settings.component_log_dir("broker").join("broker.log"),
            ready_timeout: Duration::from_secs(60),
        }
    }

    fn postgres_spec(&self, bin_dir: PathBuf) -> PostgresSpec {
        PostgresSpec {
            bin_dir,
            dir: self.settings.postgres_state_dir(),
            port: self.settings.postgres.port,
            log_file: self
                .settings
                .component_log_dir("postgres")
                .join("postgres.log"),
            durable: true,
            ready_timeout: Duration::from_secs(120),
        }
    }

    /// Topics, the warehouse database and the access-control schema; all idempotent.
    async fn prepare_storage(&self) -> Result<()> {
        let bootstrap = self.settings.kafka_bootstrap();
        let topics = required_topics(&self.settings);
        kafka::ensure_topics(&bootstrap, &topics)
            .await
            .with_context(|| format!("creating topics on {bootstrap}"))?;
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        step("topics", &names.join(", "));

        let url = match &self.postgres {
            Some(local) => {
                create_database_if_missing(
                    &local.url("postgres"),
                    &self.settings.postgres.database,
                )
                .await?;
                local.url(&self.settings.postgres.database)
            }
            None => self
                .settings
                .postgres
                .url
                .clone()
                .expect("external URL when no local cluster"),
        };
        let mut conn = connect_with_retry(&url, Duration::from_secs(30))
            .await
            .with_context(|| format!("connecting to the warehouse {}", redact_url(&url)))?;
        apply_user_schema(&mut conn)
            .await
            .context("applying create_user_table.sql")?;
        step(
            "warehouse",
            &format!("{} (create_user_table.sql applied)", redact_url(&url)),
        );
        Ok(())
    }

    /// What `status` and `down` need to know.
    pub fn stack_file(&self) -> StackFile {
        StackFile {
            supervisor_pid: std::process::id(),
            started_at: self.started_at,
            broker: self.broker.as_ref().map(|b| ManagedProcess {
                pid: b.pid(),
                endpoint: b.bootstrap(),
                log_file: b.log_file().to_path_buf(),
            }),
            stream_sql: self.has_worker("stream-sql"),
            lake_sink: self.has_worker("lake-sink"),
            table_sink: self.has_worker("table-sink"),
            postgres: self.postgres.as_ref().map(|p| ManagedProcess {
                pid: p.pid(),
                endpoint: redact_url(&p.url(&self.settings.postgres.database)),
                log_file: p.log_file().to_path_buf(),
            }),
        }
    }

    /// Restarts a component that died; fails after too many restarts.
    pub fn check_components(&mut self) -> Result<()> {
        let mut restarted = false;
        if let Some(broker) = self.broker.as_mut() {
            if let Some(status) = broker.exited() {
                count_restart(&mut self.restarts, || {
                    format!(
                        "the broker keeps dying ({status}); see {}",
                        broker.log_file().display()
                    )
                })?;
                tracing::error!("the broker exited ({status}); restarting it");
                broker.restart()?;
                restarted = true;
            }
        }
        if let Some(postgres) = self.postgres.as_mut() {
            if let Some(status) = postgres.exited() {
                count_restart(&mut self.restarts, || {
                    format!(
                        "PostgreSQL keeps dying ({status}); see {}",
                        postgres.log_file().display()
                    )
                })?;
                tracing::error!("PostgreSQL exited ({status}); restarting it");
                postgres.restart()?;
                restarted = true;
            }
        }
        for worker in &mut self.workers {
            if let Some(error) = worker.failure() {
                let name = worker.name;
                count_restart(&mut self.restarts, || {
                    format!("{name} keeps failing: {error}")
                })?;
                tracing::error!(
                    "{name} stopped ({error}); restarting it from its durable position"
                );
                worker.spawn();
            }
        }
        if restarted {
            self.stack_file().write(&self.settings.state_dir)?;
        }
        Ok(())
    }

    /// Stops everything, in reverse start order.
    pub fn shutdown(mut self) {
        while let Some(mut worker) = self.workers.pop() {
            worker.stop();
            step("stopped", worker.name);
        }
        if let Some(mut broker) = self.broker.take() {
            broker.stop();
            step("stopped", "broker");
        }
        if let Some(mut postgres) = self.postgres.take() {
            postgres.stop();
            step("stopped", "postgres");
        }
        StackFile::remove(&self.settings.state_dir);
    }
}

impl Stack {
    fn has_worker(&self, name: &str) -> bool {
        self.workers.iter().any(|w| w.name == name)
    }
}

/// The lake sink over the plan's streams, with its settings from the environment.
fn lake_sink_worker(settings: &Settings, plan: &Plan) -> Result<WorkerThread> {
    let args = LakeSinkArgs::from_env();
    let config = args
        .config(&settings.data_lake_dir)
        .map_err(anyhow::Error::msg)?;
    let topics = landed_topics(plan);
    let mut runner_config = RunnerConfig::new(settings.kafka_bootstrap(), args.group_id.clone());
    runner_config.session_timeout = Duration::from_millis(args.session_timeout_ms);
    step(
        "lake-sink",
        &format!(
            "{} topics into {} (group {})",
            topics.len(),
            settings.data_lake_dir.display(),
            args.group_id
        ),
    );
    Ok(WorkerThread::start("lake-sink", move |stop| {
        let sink = LakeSink::new(
            config.clone(),
            topics.clone(),
            Arc::new(LakeSinkStats::default()),
        );
        sink::runner::run(sink, &runner_config, stop, Arc::new(RunnerStats::default()))
            .map_err(|e| e.to_string())
    }))
}

/// The table sink over the plan's tables, into the warehouse database.
fn table_sink_worker(settings: &Settings, plan: &Plan) -> Result<WorkerThread> {
    let args = TableSinkArgs::from_env();
    let url = settings
        .warehouse_url()
        .context("the warehouse has no URL yet")?;
    let config = args.config(&url);
    let tables = warehouse_tables(plan);
    let mut runner_config = RunnerConfig::new(settings.kafka_bootstrap(), args.group_id.clone());
    runner_config.session_timeout = Duration::from_millis(args.session_timeout_ms);
    runner_config.assignment = args.assignment;
    // Schema problems (a changed type or key) stop `up` here, with the message;
    // the sink connected here is the worker's first run.
    let (sink, changes) = TableSink::connect(config.clone(), tables.clone(), Arc::default())?;
    let first_run = std::sync::Mutex::new(Some(sink));
    for change in &changes {
        tracing::info!("warehouse: {change}");
    }
    step(
        "table-sink",
        &format!(
            "{} tables into {} (group {})",
            tables.len(),
            redact_url(&url),
            args.group_id
        ),
    );
    Ok(WorkerThread::start("table-sink", move |stop| {
        let connected = first_run.lock().ok().and_then(|mut s| s.take());
        let sink = match connected {
            Some(sink) => sink,
            // A restart after a failure connects afresh.
            None => {
                TableSink::connect(config.clone(), tables.clone(), Arc::default())
                    .map_err(|e| e.to_string())?
                    .0
            }
        };
        sink::runner::run(sink, &runner_config, stop, Arc::new(RunnerStats::default()))
            .map_err(|e| e.to_string())
    }))
}

/// The lake's retention, applied hourly.
fn purge_worker(settings: &Settings) -> Result<WorkerThread> {
    let args = PurgeArgs::from_env();
    let policy = args.policy()?;
    let (lake, log) = (settings.data_lake_dir.clone(), settings.log_dir.clone());
    step(
        "purge",
        &format!(
            "hourly, keeping {} days (records in {})",
            policy.default_days,
            purge::runs_path(&log).display()
        ),
    );
    Ok(WorkerThread::start("purge", move |stop| loop {
        purge::run_and_record(&lake, &log, &policy, args.dry_run).map_err(|e| e.to_string())?;
        let next = std::time::Instant::now() + PURGE_INTERVAL;
        while std::time::Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }))
}

const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Counts one more restart; the error when the stack has restarted too often.
fn count_restart(restarts: &mut u32, why: impl FnOnce() -> String) -> Result<()> {
    *restarts += 1;
    anyhow::ensure!(*restarts <= MAX_RESTARTS, "{}", why());
    Ok(())
}

fn step(what: &str, detail: &str) {
    println!("  \u{2713} {what:<10} {detail}");
}

/// Ports and binaries, checked (and installed on first use) before anything starts.
fn check_prerequisites(settings: &Settings) -> Result<Prerequisites> {
    if settings.runs_local_broker() && !ports::is_free(settings.kafka.port) {
        return Err(LocalError::PortTaken {
            component: "broker",
            port: settings.kafka.port,
            hint: "--kafka-port / LAKEHOUSE_KAFKA_PORT / kafka.port",
        }
        .into());
    }
    if settings.runs_local_postgres() && !ports::is_free(settings.postgres.port) {
        return Err(LocalError::PortTaken {
            component: "postgres",
            port: settings.postgres.port,
            hint: "--postgres-port / LAKEHOUSE_POSTGRES_PORT / postgres.port",
        }
        .into());
    }
    let postgres_bin = if settings.runs_local_postgres() {
        Some(
            match tools::find_postgres_bin_dir(settings.postgres.bin_dir.as_deref()) {
                Ok(dir) => dir,
                Err(_) if settings.postgres.bin_dir.is_none() => {
                    with_spinner("Installing PostgreSQL 15 (first run only)", |on_line| {
                        tools::install_postgres(on_line)
                    })?
                }
                Err(e) => return Err(e.into()),
            },
        )
    } else {
        None
    };
    let tansu = if settings.runs_local_broker() {
        Some(
            match tools::find_tansu(settings.kafka.broker_bin.as_deref()) {
                Some(path) => path,
                None if settings.kafka.broker_bin.is_none() => with_spinner(
                    "Installing the Tansu broker with cargo (first run only, about 10 minutes)",
                    |on_line| tools::install_tansu(on_line),
                )?,
                None => {
                    return Err(LocalError::MissingTool {
                        what: format!(
                            "the broker binary {}",
                            settings.kafka.broker_bin.as_ref().unwrap().display()
                        ),
                        hint: "Fix kafka.broker_bin in lakehouse.toml or unset it.".into(),
                    }
                    .into())
                }
            },
        )
    } else {
        None
    };
    Ok(Prerequisites {
        tansu,
        postgres_bin,
    })
}

/// Runs an install, showing its latest output line beside a spinner.
fn with_spinner(
    title: &str,
    install: impl FnOnce(&mut dyn FnMut(&str)) -> Result<PathBuf, LocalError>,
) -> Result<PathBuf> {
    println!("{title}...");
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("  {spinner} [{elapsed}] {wide_msg}").expect("valid template"),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    let result = install(&mut |line: &str| spinner.set_message(line.to_string()));
    spinner.finish_and_clear();
    let path = result?;
    step("installed", &path.display().to_string());
    Ok(path)
}
