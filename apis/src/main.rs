//! `lakehouse-api`: the HTTP server of API 1 and API 2.

use anyhow::Context;
use clap::Parser;
use lakehouse::{
    ConfigArgs, ConfigFileArg, KafkaArgs, LakeDirArg, LogDirArg, PostgresArgs, StateDirArg,
};
use lakehouse_api::{ApiArgs, ApiSettings};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The lakehouse API server: products (API 1), the data lake and the
/// warehouse (API 2), with OpenAPI at /openapi.json and docs at /docs.
#[derive(Debug, Parser)]
#[command(name = "lakehouse-api", version)]
struct Cli {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    lake: LakeDirArg,
    #[command(flatten)]
    log: LogDirArg,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    metrics: lakehouse_workers::metrics_http::MetricsArgs,
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = ConfigArgs {
        file: cli.file.clone(),
        state: cli.state.clone(),
        lake: cli.lake.clone(),
        log: cli.log.clone(),
        kafka: cli.kafka.clone(),
        postgres: cli.postgres.clone(),
        ..Default::default()
    }
    .resolve()?;
    let _logs = lakehouse::logging::init("api", &settings.log_dir, None);
    let url = settings.warehouse_url().context(
        "no PostgreSQL: set --postgres-url / LAKEHOUSE_POSTGRES_URL, or run `lakectl up` first",
    )?;
    let api = ApiSettings::new(&cli.api, &settings, url);
    // SIGTERM or Ctrl-C: requests in flight finish, the audit queue is written.
    // The API's own GET /metrics covers its requests; this flag adds the
    // supervisor's view (state, restarts) on a port of its own.
    lakehouse_workers::cli::supervise(lakehouse_api::job(api), &cli.metrics)
}
