//! `lakehouse-api`: the HTTP server of API 1 and API 2.

use anyhow::Context;
use clap::Parser;
use lakehouse::ConfigArgs;
use lakehouse_api::{ApiArgs, ApiSettings};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The lakehouse API server: products (API 1), the data lake and the
/// warehouse (API 2), with OpenAPI at /openapi.json and docs at /docs.
#[derive(Debug, Parser)]
#[command(name = "lakehouse-api", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    api: ApiArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = cli.config.resolve()?;
    let _logs = lakehouse::logging::init("api", &settings.log_dir, None);
    let url = settings.warehouse_url().context(
        "no PostgreSQL: set --postgres-url / LAKEHOUSE_POSTGRES_URL, or run `lakectl up` first",
    )?;
    let api = ApiSettings::new(&cli.api, &settings, url);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lakehouse_api::run(api, shutdown_signal()))
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
