//! `lake-purge`: enforces the lake's retention, once or on a schedule.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use lakehouse::ConfigArgs;
use lakehouse_workers::purge::{self, PurgeArgs};

/// Removes whole ingestion_date= partitions older than the retention (never today's).
#[derive(Debug, Parser)]
#[command(name = "lake-purge", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    purge: PurgeArgs,
    /// Run once and exit (otherwise every --interval-minutes).
    #[arg(long, env = "LAKEHOUSE_PURGE_ONCE")]
    once: bool,
    #[arg(long, env = "LAKEHOUSE_PURGE_INTERVAL_MINUTES", default_value_t = 60)]
    interval_minutes: u64,
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let settings = cli.config.resolve()?;
    let _logs = lakehouse::logging::init("purge", &settings.log_dir, None);
    let policy = cli.purge.policy()?;
    let stop = lakehouse_workers::cli::stop_on_signals()?;
    loop {
        let report = purge::run_and_record(
            &settings.data_lake_dir,
            &settings.log_dir,
            &policy,
            cli.purge.dry_run,
        )?;
        print!("{}", purge::render(&report));
        if cli.once {
            return Ok(());
        }
        let next = Instant::now() + Duration::from_secs(cli.interval_minutes.max(1) * 60);
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
