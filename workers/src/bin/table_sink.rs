//! `table-sink`: keeps one PostgreSQL table per stream-SQL table, exactly once.

use anyhow::{Context, Result};
use clap::Parser;
use lakehouse::{ConfigArgs, ConfigFileArg, KafkaArgs, LogDirArg, PostgresArgs, StateDirArg};
use lakehouse_workers::cli::SqlFileArg;
use lakehouse_workers::warehouse::TableSinkArgs;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Table sink: every table of the SQL file into the PostgreSQL warehouse,
/// rows and consumed offsets committed together.
#[derive(Debug, Parser)]
#[command(name = "table-sink", version)]
struct Cli {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    log: LogDirArg,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    sql: SqlFileArg,
    #[command(flatten)]
    sink: TableSinkArgs,
    #[command(flatten)]
    metrics: lakehouse_workers::metrics_http::MetricsArgs,
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let settings = ConfigArgs {
        file: cli.file.clone(),
        state: cli.state.clone(),
        log: cli.log.clone(),
        kafka: cli.kafka.clone(),
        postgres: cli.postgres.clone(),
        ..Default::default()
    }
    .resolve()?;
    let _logs = lakehouse::logging::init("table-sink", &settings.log_dir, None);
    let url = settings.warehouse_url().context(
        "no PostgreSQL: set --postgres-url / LAKEHOUSE_POSTGRES_URL, or run `lakectl up` first",
    )?;
    // A table added to the file gets its warehouse table without a restart.
    // The first start connects on its first run (a PostgreSQL that is not
    // up yet is waited out); a changed file migrates the schema before it
    // replaces the running sink, so that a conflict refuses the change.
    lakehouse_workers::cli::supervise_following(
        &cli.sql.path,
        |plan, changed| {
            lakehouse_workers::jobs::table_sink(&settings, &plan, &cli.sink, &url, changed)
                .map_err(anyhow::Error::msg)
        },
        &cli.metrics,
    )
}
