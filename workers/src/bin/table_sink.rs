//! `table-sink`: keeps one PostgreSQL table per stream-SQL table, exactly once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lakehouse::ConfigArgs;
use lakehouse_workers::cli::SqlFileArg;
use lakehouse_workers::sink::runner::{self, RunnerConfig, RunnerStats};
use lakehouse_workers::warehouse::{warehouse_tables, TableSink, TableSinkArgs, TableSinkStats};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Table sink: every table of the SQL file into the PostgreSQL warehouse,
/// rows and consumed offsets committed together.
#[derive(Debug, Parser)]
#[command(name = "table-sink", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    sql: SqlFileArg,
    #[command(flatten)]
    sink: TableSinkArgs,
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let settings = cli.config.resolve()?;
    let _logs = lakehouse::logging::init("table-sink", &settings.log_dir, None);
    let plan = cli.sql.load()?;
    let url = settings.warehouse_url().context(
        "no PostgreSQL: set --postgres-url / LAKEHOUSE_POSTGRES_URL, or run `lakectl up` first",
    )?;
    let stats = Arc::new(TableSinkStats::default());
    let (sink, changes) = TableSink::connect(
        cli.sink.config(&url),
        warehouse_tables(&plan),
        Arc::clone(&stats),
    )?;
    for change in changes {
        tracing::info!("{change}");
    }
    let stop = lakehouse_workers::cli::stop_on_signals()?;
    let mut runner_config = RunnerConfig::new(settings.kafka_bootstrap(), cli.sink.group_id);
    runner_config.session_timeout = Duration::from_millis(cli.sink.session_timeout_ms);
    runner_config.assignment = cli.sink.assignment;
    tracing::info!(
        "keeping {} tables in {}",
        sink.tables().len(),
        lakehouse::postgres::redact_url(&url)
    );
    runner::run(
        sink,
        &runner_config,
        &stop,
        Arc::new(RunnerStats::default()),
    )
    .context("table sink stopped")?;
    tracing::info!(?stats, "table sink stopped");
    Ok(())
}
