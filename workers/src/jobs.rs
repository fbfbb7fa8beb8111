//! Every worker built from its settings in one place, for its binary and for
//! `lakectl up` alike: the result is a [`Job`] that a [`Supervisor`] (or
//! [`run_one`]) keeps running, with counters that feed the registry.
//!
//! [`Supervisor`]: crate::supervisor::Supervisor
//! [`run_one`]: crate::supervisor::run_one

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lakehouse::postgres::redact_url;
use lakehouse::Settings;
use lakehouse_streamsql::runtime::{self, RuntimeStats};
use lakehouse_streamsql::Plan;

use crate::lake::{landed_topics, LakeSink, LakeSinkArgs, LakeSinkStats};
use crate::purge::{self, PurgeArgs};
use crate::registry::Counters;
use crate::sink::runner::{self, Assignment, RunnerConfig, RunnerStats};
use crate::sink::SinkError;
use crate::stream_sql::StreamSqlArgs;
use crate::supervisor::{Failure, Job};
use crate::warehouse::{warehouse_tables, TableSink, TableSinkArgs, TableSinkStats};

/// Why a worker cannot be built at all (its settings are wrong).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// The consumer settings of a sink worker.
pub fn runner_config(
    settings: &Settings,
    group_id: &str,
    session_timeout_ms: u64,
    assignment: Assignment,
) -> RunnerConfig {
    let mut config = RunnerConfig::new(settings.kafka_bootstrap(), group_id);
    config.session_timeout = Duration::from_millis(session_timeout_ms);
    config.assignment = assignment;
    config
}

fn sink_failure(error: SinkError) -> Failure {
    Failure {
        permanent: error.is_permanent(),
        message: error.to_string(),
    }
}

/// Stream SQL over the statement file's plan.
pub fn stream_sql(settings: &Settings, plan: Arc<Plan>, args: &StreamSqlArgs) -> Job {
    let config = args.config(&settings.kafka_bootstrap(), &settings.state_dir);
    let stats = Arc::new(RuntimeStats::default());
    let summary = format!(
        "{} streams, {} tables; dead letters in {}",
        plan.streams().count(),
        plan.tables().count(),
        config.dlq_topic
    );
    let counters = Arc::clone(&stats);
    let reset_pending = Arc::new(AtomicBool::new(config.reset_state));
    Job {
        name: "stream-sql",
        summary,
        counters: Some(Arc::new(move || Counters {
            records_in: counters.records_in.load(Ordering::Relaxed),
            records_out: counters.records_out.load(Ordering::Relaxed),
            bytes_out: 0,
            dead_letters: counters.dead_letters.load(Ordering::Relaxed),
            ..Counters::default()
        })),
        body: Arc::new(move |stop| {
            // --reset-state forgets the state once: a restart after a
            // failure resumes from what the reset run checkpointed, unless
            // the failure came before the store was reset.
            let mut config = config.clone();
            config.reset_state = reset_pending.load(Ordering::Relaxed);
            let result = runtime::run(Arc::clone(&plan), &config, stop, &stats);
            if stats.state_reset.load(Ordering::Relaxed) {
                reset_pending.store(false, Ordering::Relaxed);
            }
            result.map(drop).map_err(|e| Failure {
                permanent: e.is_permanent(),
                message: e.to_string(),
            })
        }),
    }
}

/// The lake sink over the plan's streams and their source topics.
pub fn lake_sink(settings: &Settings, plan: &Plan, args: &LakeSinkArgs) -> Result<Job, BuildError> {
    let config = args.config(&settings.data_lake_dir).map_err(BuildError)?;
    let topics = landed_topics(plan);
    let runner_config = runner_config(
        settings,
        &args.group_id,
        args.session_timeout_ms,
        Assignment::Group,
    );
    let stats = Arc::new(LakeSinkStats::default());
    let runner_stats = Arc::new(RunnerStats::new());
    let summary = format!(
        "{} topics into {} (group {})",
        topics.len(),
        settings.data_lake_dir.display(),
        args.group_id
    );
    let (counters, consumed) = (Arc::clone(&stats), Arc::clone(&runner_stats));
    Ok(Job {
        name: "lake-sink",
        summary,
        counters: Some(Arc::new(move || Counters {
            records_in: consumed.consumed.load(Ordering::Relaxed),
            records_out: counters.landed_rows.load(Ordering::Relaxed),
            bytes_out: counters.bytes_written.load(Ordering::Relaxed),
            dead_letters: counters.dead_lettered.load(Ordering::Relaxed),
            lag: consumed.lag(),
            latency_ms: consumed.latency_ms(),
            latency_p95_ms: consumed.latency_p95_ms(),
        })),
        body: Arc::new(move |stop| {
            let sink = LakeSink::new(config.clone(), topics.clone(), Arc::clone(&stats));
            runner::run(sink, &runner_config, stop, Arc::clone(&runner_stats)).map_err(sink_failure)
        }),
    })
}

/// The table sink over the plan's tables, into `postgres_url`. Connecting
/// migrates the warehouse schema; `connect_now` does it before the job is
/// returned, so that a schema conflict is reported at once (its message
/// names the table and column) instead of from the first run.
pub fn table_sink(
    settings: &Settings,
    plan: &Plan,
    args: &TableSinkArgs,
    postgres_url: &str,
    connect_now: bool,
) -> Result<Job, Failure> {
    let config = args.config(postgres_url);
    let tables = warehouse_tables(plan);
    let runner_config = runner_config(
        settings,
        &args.group_id,
        args.session_timeout_ms,
        args.assignment,
    );
    let stats = Arc::new(TableSinkStats::default());
    let runner_stats = Arc::new(RunnerStats::new());
    let summary = format!(
        "{} tables into {} (group {})",
        tables.len(),
        redact_url(postgres_url),
        args.group_id
    );
    // Connecting migrates the warehouse schema and logs what it changed.
    let connect = move |stats: &Arc<TableSinkStats>| {
        let (sink, changes) = TableSink::connect(config.clone(), tables.clone(), Arc::clone(stats))
            .map_err(sink_failure)?;
        for change in &changes {
            tracing::info!(%change, "warehouse schema changed");
        }
        Ok::<_, Failure>(sink)
    };
    let first_run = if connect_now {
        Some(connect(&stats)?)
    } else {
        None
    };
    let first_run = Mutex::new(first_run);
    let (counters, consumed) = (Arc::clone(&stats), Arc::clone(&runner_stats));
    Ok(Job {
        name: "table-sink",
        summary,
        counters: Some(Arc::new(move || Counters {
            records_in: consumed.consumed.load(Ordering::Relaxed),
            records_out: counters.rows_written.load(Ordering::Relaxed),
            bytes_out: 0,
            dead_letters: counters.dead_lettered.load(Ordering::Relaxed),
            lag: consumed.lag(),
            latency_ms: consumed.latency_ms(),
            latency_p95_ms: consumed.latency_p95_ms(),
        })),
        body: Arc::new(move |stop| {
            let connected = first_run.lock().ok().and_then(|mut s| s.take());
            let sink = match connected {
                Some(sink) => sink,
                // A restart after a failure connects afresh.
                None => connect(&stats)?,
            };
            runner::run(sink, &runner_config, stop, Arc::clone(&runner_stats)).map_err(sink_failure)
        }),
    })
}

/// The lake's retention, applied every `interval` (once when `None`).
pub fn purge(
    settings: &Settings,
    args: &PurgeArgs,
    interval: Option<Duration>,
) -> Result<Job, BuildError> {
    let policy = args.policy().map_err(|e| BuildError(e.to_string()))?;
    let (lake, log): (PathBuf, PathBuf) =
        (settings.data_lake_dir.clone(), settings.log_dir.clone());
    let dry_run = args.dry_run;
    // A topic may land later, so the schedule runs anyway; but say it.
    for topic in policy.unknown_topics(&lake) {
        tracing::warn!(%topic, "LAKEHOUSE_RETENTION_OVERRIDES names a topic the lake does not hold (yet)");
    }
    let summary = format!(
        "{}, keeping {} days (records in {})",
        match interval {
            Some(i) => format!("every {} min", i.as_secs() / 60),
            None => "once".to_string(),
        },
        policy.default_days,
        purge::runs_path(&log).display()
    );
    Ok(Job {
        name: "purge",
        summary,
        counters: None,
        body: Arc::new(move |stop: &AtomicBool| loop {
            let report = purge::run_and_record(&lake, &log, &policy, dry_run)
                .map_err(|e| Failure::transient(e.to_string()))?;
            let Some(interval) = interval else {
                print!("{}", purge::render(&report));
                return Ok(());
            };
            let next = Instant::now() + interval;
            while Instant::now() < next {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }),
    })
}
