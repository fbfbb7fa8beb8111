//! `lake-sink`: lands every stream topic of the catalog in the Parquet data lake.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lakehouse::ConfigArgs;
use lakehouse_workers::cli::SqlFileArg;
use lakehouse_workers::lake::{landed_topics, LakeSink, LakeSinkArgs, LakeSinkStats};
use lakehouse_workers::sink::runner::{self, RunnerConfig, RunnerStats};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stream sink: every stream of the SQL file, and its source topics, into
/// data_lake/<TOPIC>/ingestion_date=YYYY-MM-DD/ as Parquet, exactly once.
#[derive(Debug, Parser)]
#[command(name = "lake-sink", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    sql: SqlFileArg,
    #[command(flatten)]
    sink: LakeSinkArgs,
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let settings = cli.config.resolve()?;
    let _logs = lakehouse::logging::init("lake-sink", &settings.log_dir, None);
    let plan = cli.sql.load()?;
    let topics = landed_topics(&plan);
    let config = cli
        .sink
        .config(&settings.data_lake_dir)
        .map_err(anyhow::Error::msg)?;
    let stop = lakehouse_workers::cli::stop_on_signals()?;
    let bootstrap = settings.kafka_bootstrap();
    tracing::info!(
        "landing {} topics from {bootstrap} in {}",
        topics.len(),
        settings.data_lake_dir.display()
    );
    let stats = Arc::new(LakeSinkStats::default());
    let sink = LakeSink::new(config, topics, Arc::clone(&stats));
    let mut runner_config = RunnerConfig::new(bootstrap, cli.sink.group_id);
    runner_config.session_timeout = Duration::from_millis(cli.sink.session_timeout_ms);
    runner::run(
        sink,
        &runner_config,
        &stop,
        Arc::new(RunnerStats::default()),
    )
    .context("lake sink stopped")?;
    tracing::info!(?stats, "lake sink stopped");
    Ok(())
}
