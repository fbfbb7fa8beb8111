//! `lakectl up`: the single-machine stack's lifecycle.
//!
//! Every check that can fail cheaply (ports, binaries) runs before anything
//! starts, so a missing prerequisite leaves nothing half-started; a later
//! failure stops whatever had started (the components stop on drop).
//! Components are spawned from the main thread, which lives as long as the
//! stack: their parent-death signal then fires only when `lakectl` ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
use lakehouse_api::{ApiArgs, ApiSettings};
use lakehouse_streamsql::Plan;
use lakehouse_workers::jobs;
use lakehouse_workers::lake::LakeSinkArgs;
use lakehouse_workers::purge::PurgeArgs;
use lakehouse_workers::registry::{ComponentState, Registry, RegistryFile};
use lakehouse_workers::statement_file::FollowedFile;
use lakehouse_workers::stream_sql::StreamSqlArgs;
use lakehouse_workers::supervisor::{Backoff, RestartSchedule, Supervisor};
use lakehouse_workers::warehouse::TableSinkArgs;
use tokio::runtime::Runtime;

use crate::state::{ManagedProcess, StackFile, StackLock};

/// The topics the stack creates on start.
pub fn required_topics(settings: &Settings) -> Vec<TopicSpec> {
    vec![TopicSpec::new(
        &settings.topics.transaction_log,
        settings.topics.partitions,
    )]
}

/// A running single-machine stack.
pub struct Stack {
    settings: Settings,
    /// The workers, on threads of this process; stopped last started first.
    workers: Supervisor,
    // Field order is stop order: PostgreSQL last, so nothing loses its database early.
    broker: Option<LocalBroker>,
    postgres: Option<LocalPostgres>,
    /// When each child process that died is started again.
    broker_restarts: RestartSchedule,
    postgres_restarts: RestartSchedule,
    backoff: Backoff,
    /// Where the API server listens.
    api_url: Option<String>,
    /// The stack's metrics and health endpoint (stopped with the stack).
    metrics: Option<lakehouse_workers::metrics_http::MetricsServer>,
    started_at: chrono::DateTime<chrono::Utc>,
    /// The statement file the stack runs, followed while it runs.
    statements: StatementFile,
    _lock: StackLock,
}

/// The statement file the stack runs, followed, and the engine's settings.
struct StatementFile {
    file: FollowedFile,
    engine: StreamSqlArgs,
}

struct Prerequisites {
    tansu: Option<PathBuf>,
    postgres_bin: Option<PathBuf>,
}

impl Stack {
    /// Starts every local component, prepares topics, database and schema,
    /// then runs the statement file `sql`.
    pub fn start(
        settings: &Settings,
        runtime: &Runtime,
        sql: &Path,
        stream_sql: &StreamSqlArgs,
        metrics_listen: std::net::SocketAddr,
    ) -> Result<Stack> {
        let lock = StackLock::acquire(&settings.state_dir)?;
        if !ports::is_free(metrics_listen.port()) {
            return Err(LocalError::PortTaken {
                component: "metrics",
                port: metrics_listen.port(),
                hint: "--metrics-listen / LAKEHOUSE_METRICS_LISTEN (address:port)",
            }
            .into());
        }
        // A bad statement file is reported before anything starts; a
        // changed one is said, statement by statement, before it is applied.
        let plan = Arc::new(lakehouse_streamsql::load_file(sql)?);
        let engine = stream_sql.config(&settings.kafka_bootstrap(), &settings.state_dir);
        let changes = lakehouse_streamsql::runtime::pending_changes(&engine, &plan)
            .with_context(|| format!("{}: nothing was started", sql.display()))?;
        if !lakehouse_streamsql::statements::is_noop(&changes) {
            print!(
                "{}: {}",
                sql.display(),
                lakehouse_streamsql::statements::describe_changes(
                    &changes,
                    engine.new_statements_from
                )
            );
        }
        let prerequisites = check_prerequisites(settings)?;
        let backoff = Backoff::default();
        let mut stack = Stack {
            settings: settings.clone(),
            workers: Supervisor::new(Registry::default(), backoff),
            broker: None,
            postgres: None,
            broker_restarts: RestartSchedule::default(),
            postgres_restarts: RestartSchedule::default(),
            backoff,
            api_url: None,
            metrics: None,
            started_at: chrono::Utc::now(),
            statements: StatementFile {
                file: FollowedFile::new(sql, std::fs::read_to_string(sql).unwrap_or_default()),
                engine: StreamSqlArgs {
                    // A later change of the file keeps what still fits.
                    reset_state: false,
                    ..stream_sql.clone()
                },
            },
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
        stack.start_workers(plan, sql, stream_sql)?;
        let metrics = lakehouse_workers::metrics_http::MetricsServer::start(
            metrics_listen,
            stack.workers.registry().clone(),
        )
        .with_context(|| format!("cannot serve the stack's metrics on {metrics_listen}"))?;
        step(
            "metrics",
            &format!("http://{}/metrics and /health", metrics.address()),
        );
        stack.metrics = Some(metrics);
        stack.stack_file().write(&settings.state_dir)?;
        Ok(stack)
    }

    /// Every worker, built from its settings as its binary builds it.
    fn start_workers(
        &mut self,
        plan: Arc<Plan>,
        sql: &Path,
        stream_sql_args: &StreamSqlArgs,
    ) -> Result<()> {
        let settings = &self.settings;
        let stream_sql = jobs::stream_sql(settings, Arc::clone(&plan), stream_sql_args);
        step(
            "stream-sql",
            &format!("{} ({})", sql.display(), stream_sql.summary),
        );
        let lake_sink = jobs::lake_sink(settings, &plan, &LakeSinkArgs::from_env())?;
        step("lake-sink", &lake_sink.summary);
        let url = settings
            .warehouse_url()
            .context("the warehouse has no URL yet")?;
        // Schema problems (a changed type or key) stop `up` here, with the message.
        let table_sink = jobs::table_sink(settings, &plan, &TableSinkArgs::from_env(), &url, true)
            .map_err(anyhow::Error::msg)?;
        step("table-sink", &table_sink.summary);
        let purge = jobs::purge(settings, &PurgeArgs::from_env(), Some(PURGE_INTERVAL))?;
        step("purge", &purge.summary);
        let api_settings = ApiSettings::new(&ApiArgs::from_env(), settings, url);
        self.api_url = Some(format!("http://{}", api_settings.listen));
        let api = lakehouse_api::job(api_settings);
        step("api", &api.summary);
        for job in [stream_sql, lake_sink, table_sink, purge, api] {
            self.workers.start(job);
        }
        let now = Instant::now();
        let managed = [
            ("broker", self.broker.is_some(), &mut self.broker_restarts),
            (
                "postgres",
                self.postgres.is_some(),
                &mut self.postgres_restarts,
            ),
        ];
        for (name, is_managed, schedule) in managed {
            if is_managed {
                self.workers.registry().register(name, None);
                self.workers.registry().set_state(
                    name,
                    ComponentState::Running {
                        since: chrono::Utc::now(),
                    },
                );
                schedule.started(now);
            }
        }
        self.write_registry();
        Ok(())
    }

    /// The `--demo` producer, supervised like the workers.
    pub fn start_demo_producer(&mut self, rate: f64) {
        let job = crate::demo::producer_job(&self.settings, rate);
        step(crate::demo::NAME, &job.summary);
        self.workers.start(job);
        if let Err(e) = self.stack_file().write(&self.settings.state_dir) {
            tracing::warn!("cannot record the demo producer in the stack file: {e}");
        }
        self.write_registry();
    }

    /// Every component's state and counters.
    pub fn registry(&self) -> &Registry {
        self.workers.registry()
    }

    fn write_registry(&self) {
        let path = RegistryFile::path(&self.settings.state_dir);
        if let Err(e) = self.registry().write_to(&path) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
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
            stream_sql_dlq: Some(self.statements.engine.dlq_topic.clone())
                .filter(|_| self.has_worker("stream-sql")),
            lake_sink: self.has_worker("lake-sink"),
            table_sink: self.has_worker("table-sink"),
            api: self.api_url.clone().filter(|_| self.has_worker("api")),
            demo_producer: self.has_worker(crate::demo::NAME),
            metrics: self
                .metrics
                .as_ref()
                .map(|m| format!("http://{}/metrics", m.address())),
            postgres: self.postgres.as_ref().map(|p| ManagedProcess {
                pid: p.pid(),
                endpoint: redact_url(&p.url(&self.settings.postgres.database)),
                log_file: p.log_file().to_path_buf(),
            }),
        }
    }

    /// Restarts what died, with backoff, for as long as it takes: a worker
    /// thread through the supervisor, the broker and PostgreSQL here. Only a
    /// failure no restart fixes stops a worker (the others go on). Also
    /// writes the registry for `lakectl status`.
    pub fn check_components(&mut self) -> Result<()> {
        let now = Instant::now();
        let registry = self.workers.registry().clone();
        let mut restarted = false;
        if let Some(broker) = self.broker.as_mut() {
            restarted |= keep_process_alive(
                "broker",
                broker.exited(),
                &mut self.broker_restarts,
                &self.backoff,
                &registry,
                now,
                || broker.restart().map_err(|e| e.to_string()),
            );
        }
        if let Some(postgres) = self.postgres.as_mut() {
            restarted |= keep_process_alive(
                "postgres",
                postgres.exited(),
                &mut self.postgres_restarts,
                &self.backoff,
                &registry,
                now,
                || postgres.restart().map_err(|e| e.to_string()),
            );
        }
        self.workers.check();
        self.follow_statement_file();
        if restarted {
            // Status shows the old pid until this lands; the stack runs on regardless.
            if let Err(e) = self.stack_file().write(&self.settings.state_dir) {
                tracing::warn!("cannot record the restarted process: {e:#}");
            }
        }
        self.write_registry();
        Ok(())
    }

    /// Applies a changed statement file to the running stack: the engine
    /// starts again on it (each statement keeps or rebuilds its own state,
    /// see the stream SQL checkpoint) and the sinks take its streams and
    /// tables (new lake folders, new warehouse tables). A file that does
    /// not plan, or whose tables conflict with the warehouse's, is refused
    /// with the reason and the stack runs on with the previous one.
    fn follow_statement_file(&mut self) {
        let Some(text) = self.statements.file.changed().map(str::to_owned) else {
            return;
        };
        let path = self.statements.file.path().display().to_string();
        let applied = lakehouse_streamsql::load(&text)
            .map_err(anyhow::Error::from)
            .and_then(|plan| self.apply_statements(Arc::new(plan)));
        match applied {
            Ok(()) => tracing::info!(file = %path, "the changed statement file is running"),
            Err(e) => {
                let message = format!(
                    "{path} changed but is refused ({e:#}); still running the previous file"
                );
                tracing::error!("{message}");
                self.workers.registry().record_error("stream-sql", &message);
            }
        }
    }

    fn apply_statements(&mut self, plan: Arc<Plan>) -> Result<()> {
        let settings = &self.settings;
        let engine_args = &self.statements.engine;
        let engine = engine_args.config(&settings.kafka_bootstrap(), &settings.state_dir);
        let changes = lakehouse_streamsql::runtime::pending_changes(&engine, &plan)?;
        let described =
            lakehouse_streamsql::statements::describe_changes(&changes, engine.new_statements_from);
        for line in described.lines() {
            tracing::info!(change = line.trim(), "statement file");
        }
        let url = settings
            .warehouse_url()
            .context("the warehouse has no URL yet")?;
        // The warehouse schema first: a conflicting change replaces nothing.
        let table_sink = jobs::table_sink(settings, &plan, &TableSinkArgs::from_env(), &url, true)
            .map_err(anyhow::Error::msg)?;
        let lake_sink = jobs::lake_sink(settings, &plan, &LakeSinkArgs::from_env())?;
        let stream_sql = jobs::stream_sql(settings, plan, engine_args);
        for job in [stream_sql, lake_sink, table_sink] {
            self.workers.replace(job);
        }
        self.write_registry();
        Ok(())
    }

    /// Stops everything, in reverse start order.
    pub fn shutdown(mut self) {
        self.workers.stop_all(&mut |name| step("stopped", name));
        if let Some(mut broker) = self.broker.take() {
            broker.stop();
            step("stopped", "broker");
        }
        if let Some(mut postgres) = self.postgres.take() {
            postgres.stop();
            step("stopped", "postgres");
        }
        self.write_registry();
        StackFile::remove(&self.settings.state_dir);
    }
}

impl Stack {
    fn has_worker(&self, name: &str) -> bool {
        self.workers.has(name)
    }
}

/// Starts a child process again once its backoff delay has passed after it
/// died (`exited`), and keeps the registry's state for it. True when it was
/// restarted now.
fn keep_process_alive(
    name: &str,
    exited: Option<std::process::ExitStatus>,
    schedule: &mut RestartSchedule,
    backoff: &Backoff,
    registry: &Registry,
    now: Instant,
    restart: impl FnOnce() -> Result<(), String>,
) -> bool {
    let Some(status) = exited else {
        return false;
    };
    if !schedule.is_pending() {
        let delay = schedule.failed(now, backoff);
        let error = format!("exited ({status})");
        tracing::error!(component = name, %error, delay_ms = delay.as_millis() as u64, "stopped; restarting it with backoff");
        registry.restarting(name, &error, schedule.attempt, delay);
        return false;
    }
    if !schedule.due(now) {
        return false;
    }
    registry.count_restart(name);
    match restart() {
        Ok(()) => {
            tracing::info!(component = name, "restarted");
            schedule.started(now);
            registry.set_state(
                name,
                ComponentState::Running {
                    since: chrono::Utc::now(),
                },
            );
            true
        }
        Err(e) => {
            let delay = schedule.failed(now, backoff);
            tracing::error!(component = name, error = %e, delay_ms = delay.as_millis() as u64, "did not restart; trying again with backoff");
            registry.restarting(name, &e, schedule.attempt, delay);
            false
        }
    }
}

const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

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
    let api_port = ApiArgs::from_env().listen.port();
    if !ports::is_free(api_port) {
        return Err(LocalError::PortTaken {
            component: "api",
            port: api_port,
            hint: "LAKEHOUSE_API_LISTEN (address:port)",
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
