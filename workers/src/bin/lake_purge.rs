//! `lake-purge`: enforces the lake's retention, once or on a schedule.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use lakehouse::{ConfigArgs, ConfigFileArg, LakeDirArg, LogDirArg};
use lakehouse_workers::purge::PurgeArgs;

/// Removes whole ingestion_date= partitions older than the retention (never today's).
#[derive(Debug, Parser)]
#[command(name = "lake-purge", version)]
struct Cli {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    lake: LakeDirArg,
    #[command(flatten)]
    log: LogDirArg,
    #[command(flatten)]
    purge: PurgeArgs,
    #[command(flatten)]
    metrics: lakehouse_workers::metrics_http::MetricsArgs,
    /// Run once and exit (otherwise every --interval-minutes).
    #[arg(long, env = "LAKEHOUSE_PURGE_ONCE")]
    once: bool,
    /// Minutes between two runs on the schedule.
    #[arg(long, env = "LAKEHOUSE_PURGE_INTERVAL_MINUTES", default_value_t = 60)]
    interval_minutes: u64,
}

fn main() {
    let cli = Cli::parse();
    if cli.once {
        lakehouse_workers::cli::exit_quietly_on_closed_pipe();
    }
    lakehouse_workers::cli::exit_on_error(run(cli));
}

fn run(cli: Cli) -> Result<()> {
    let settings = ConfigArgs {
        file: cli.file.clone(),
        lake: cli.lake.clone(),
        log: cli.log.clone(),
        ..Default::default()
    }
    .resolve()?;
    let _logs = lakehouse::logging::init("purge", &settings.log_dir, None);
    let interval = (!cli.once).then(|| Duration::from_secs(cli.interval_minutes.max(1) * 60));
    let job = lakehouse_workers::jobs::purge(&settings, &cli.purge, interval)?;
    if cli.once {
        // One run: a failure is reported, not retried.
        return (job.body)(&AtomicBool::new(false)).map_err(anyhow::Error::from);
    }
    lakehouse_workers::cli::supervise(job, &cli.metrics)
}
