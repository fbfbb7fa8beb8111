//! `lake-sink`: lands every stream topic of the catalog in the Parquet data lake.

use anyhow::Result;
use clap::Parser;
use lakehouse::{ConfigArgs, ConfigFileArg, KafkaArgs, LakeDirArg, LogDirArg};
use lakehouse_workers::cli::SqlFileArg;
use lakehouse_workers::lake::LakeSinkArgs;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stream sink: every stream of the SQL file, and its source topics, into
/// data_lake/<TOPIC>/ingestion_date=YYYY-MM-DD/ as Parquet, exactly once.
#[derive(Debug, Parser)]
#[command(name = "lake-sink", version)]
struct Cli {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    lake: LakeDirArg,
    #[command(flatten)]
    log: LogDirArg,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    sql: SqlFileArg,
    #[command(flatten)]
    sink: LakeSinkArgs,
    #[command(flatten)]
    metrics: lakehouse_workers::metrics_http::MetricsArgs,
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let settings = ConfigArgs {
        file: cli.file.clone(),
        lake: cli.lake.clone(),
        log: cli.log.clone(),
        kafka: cli.kafka.clone(),
        ..Default::default()
    }
    .resolve()?;
    let _logs = lakehouse::logging::init("lake-sink", &settings.log_dir, None);
    // A stream added to the file gets its lake folder without a restart.
    lakehouse_workers::cli::supervise_following(
        &cli.sql.path,
        |plan, _| {
            Ok(lakehouse_workers::jobs::lake_sink(
                &settings, &plan, &cli.sink,
            )?)
        },
        &cli.metrics,
    )
}
